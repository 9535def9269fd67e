#include "serve/connection.h"

#include <dirent.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>

namespace solar::serve {

// The numeric host and port of an address, as httplib's get_remote_ip_and_port writes them.
static bool numeric(const sockaddr_storage& a, socklen_t n, std::string* host, int* port) {
  char h[NI_MAXHOST], p[NI_MAXSERV];
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&a), n, h, sizeof h, p, sizeof p, NI_NUMERICHOST | NI_NUMERICSERV)) return false;
  *host = h;
  *port = atoi(p);
  return true;
}

int find_socket(const std::string& remote_addr, int remote_port, int local_port) {
  DIR* d = opendir("/proc/self/fd");
  if (!d) return -1;
  int found = -1;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    const long fd = strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end || fd == dirfd(d)) continue;
    struct stat st;
    if (fstat(int(fd), &st) || !S_ISSOCK(st.st_mode)) continue;
    sockaddr_storage a{};
    socklen_t n = sizeof a;
    std::string host;
    int port = 0;
    if (getpeername(int(fd), reinterpret_cast<sockaddr*>(&a), &n) || !numeric(a, n, &host, &port)) continue;
    if (port != remote_port || host != remote_addr) continue;
    n = sizeof a;
    if (getsockname(int(fd), reinterpret_cast<sockaddr*>(&a), &n) || !numeric(a, n, &host, &port) || port != local_port) continue;
    found = int(fd);
    break;
  }
  closedir(d);
  return found;
}

bool peer_closed(int fd) {
  pollfd p{fd, POLLIN | POLLRDHUP, 0};
  if (poll(&p, 1, 0) <= 0) return false;
  if (p.revents & (POLLHUP | POLLERR | POLLRDHUP | POLLNVAL)) return true;
  // Readable: either the next pipelined request (alive) or the end of the stream.
  char c;
  const ssize_t r = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

}  // namespace solar::serve
