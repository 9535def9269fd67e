// solar/serve/connection.h — is the client of a request still there? And
// the listening socket's backlog.
//
// cpp-httplib 0.11 (Debian 12) gives a handler neither its socket nor a way
// to learn that the client went away (is_connection_closed came in 0.12), so
// a non-streaming request would run to its end for nobody. find_socket()
// finds the connection's descriptor by its two addresses (unique while the
// handler runs: httplib closes the socket only after the handler returns);
// peer_closed() polls it without consuming anything.
// Threads: both are safe from any thread.
#pragma once
#include <string>

namespace solar::serve {

// The descriptor of this process's TCP socket whose peer is
// remote_addr:remote_port (numeric, as httplib records them) and whose local
// port is local_port; -1 when there is none.
int find_socket(const std::string& remote_addr, int remote_port, int local_port);
// True once the peer has closed or reset the connection (or shut down its
// sending side: an HTTP client that did so is not waiting for more).
bool peer_closed(int fd);
// Raises the backlog of this process's socket listening on local_port (the
// library listens with 5: a burst of clients connecting at once had SYNs
// dropped and retried a second later). False when there is none.
bool widen_backlog(int local_port, int backlog);

}  // namespace solar::serve
