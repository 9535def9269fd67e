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

// Calls f(fd) for each socket this process holds until f returns true; that fd, or -1.
template <class F>
static int each_socket(F&& f) {
  DIR* d = opendir("/proc/self/fd");
  if (!d) return -1;
  int found = -1;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    const long fd = strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end || fd == dirfd(d)) continue;
    struct stat st;
    if (fstat(int(fd), &st) || !S_ISSOCK(st.st_mode)) continue;
    if (f(int(fd))) {
      found = int(fd);
      break;
    }
  }
  closedir(d);
  return found;
}

static bool local_port_is(int fd, int local_port) {
  sockaddr_storage a{};
  socklen_t n = sizeof a;
  std::string host;
  int port = 0;
  return !getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n) && numeric(a, n, &host, &port) && port == local_port;
}

int find_socket(const std::string& remote_addr, int remote_port, int local_port) {
  return each_socket([&](int fd) {
    sockaddr_storage a{};
    socklen_t n = sizeof a;
    std::string host;
    int port = 0;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&a), &n) || !numeric(a, n, &host, &port)) return false;
    return port == remote_port && host == remote_addr && local_port_is(fd, local_port);
  });
}

bool widen_backlog(int local_port, int backlog) {
  return each_socket([&](int fd) {
    int listening = 0;
    socklen_t n = sizeof listening;
    return !getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &n) && listening && local_port_is(fd, local_port) &&
           listen(fd, backlog) == 0;
  }) >= 0;
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
