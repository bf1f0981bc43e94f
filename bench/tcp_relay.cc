// maas-tcp-relay: the cheapest possible proxy process, for bench/gateway_overhead.py.
//
// One thread, one epoll set: every accepted connection gets its own connection to the target, and
// bytes are copied both ways as they arrive (no parsing, no HTTP/2, no routing), with TCP_NODELAY
// on both sides as the gateway has. What it costs on a machine (CPU per call, added latency, lost
// throughput) is what any process in the path costs there: the kernel's loopback TCP, the wake-ups
// and the context switches. The gateway's figures are read against it.
//
//   maas-tcp-relay <listen port (0 = any)> <target IPv4 address> <target port>
// prints "maas-tcp-relay: serving on port N" on stderr and serves until killed.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

// One direction's socket; `peer` is where its bytes go, `pending` what the peer did not take yet
// (while it is non-empty this side is not read: back pressure instead of buffering).
struct Side {
  int fd = -1;
  Side* peer = nullptr;
  std::string pending;
  bool closed = false;
};

void Watch(int epoll_fd, Side* side, uint32_t events, int op) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = side;
  epoll_ctl(epoll_fd, op, side->fd, &ev);
}

void CloseBoth(int epoll_fd, Side* side) {
  for (Side* s : {side, side->peer}) {
    if (s->closed) continue;
    s->closed = true;
    epoll_ctl(epoll_fd, EPOLL_CTL_DEL, s->fd, nullptr);
    close(s->fd);
  }
}

// Sends what `to` still owes its socket; false when the socket would block.
bool Drain(Side* to) {
  while (!to->pending.empty()) {
    const ssize_t n = send(to->fd, to->pending.data(), to->pending.size(), MSG_NOSIGNAL);
    if (n < 0) return false;
    to->pending.erase(0, static_cast<size_t>(n));
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: maas-tcp-relay <listen port> <target IPv4> <target port>\n");
    return 2;
  }
  sockaddr_in listen_addr{};
  listen_addr.sin_family = AF_INET;
  listen_addr.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[1])));
  listen_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sockaddr_in target{};
  target.sin_family = AF_INET;
  target.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[3])));
  if (inet_pton(AF_INET, argv[2], &target.sin_addr) != 1) {
    std::fprintf(stderr, "maas-tcp-relay: bad target address %s\n", argv[2]);
    return 2;
  }
  const int listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int one = 1;
  setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(listen_fd, reinterpret_cast<sockaddr*>(&listen_addr), sizeof(listen_addr)) != 0 ||
      listen(listen_fd, 128) != 0) {
    std::perror("maas-tcp-relay: bind/listen");
    return 1;
  }
  socklen_t len = sizeof(listen_addr);
  getsockname(listen_fd, reinterpret_cast<sockaddr*>(&listen_addr), &len);
  std::fprintf(stderr, "maas-tcp-relay: serving on port %d\n", ntohs(listen_addr.sin_port));

  const int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  epoll_event lev{};
  lev.events = EPOLLIN;
  lev.data.ptr = nullptr;
  epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listen_fd, &lev);
  std::vector<char> buf(256 << 10);
  std::vector<epoll_event> events(64);
  std::vector<Side*> closed;  // freed after each round: a later event of the round may name them
  for (;;) {
    const int n = epoll_wait(epoll_fd, events.data(), static_cast<int>(events.size()), -1);
    if (n < 0 && errno != EINTR) return 1;
    for (int i = 0; i < n; ++i) {
      auto* side = static_cast<Side*>(events[i].data.ptr);
      if (side == nullptr) {
        const int client = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (client < 0) continue;
        const int backend = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (connect(backend, reinterpret_cast<sockaddr*>(&target), sizeof(target)) != 0) {
          close(client);
          close(backend);
          continue;
        }
        auto* a = new Side;
        auto* b = new Side;
        a->fd = client;
        b->fd = backend;
        a->peer = b;
        b->peer = a;
        for (Side* s : {a, b}) {
          setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
          fcntl(s->fd, F_SETFL, O_NONBLOCK);
          Watch(epoll_fd, s, EPOLLIN, EPOLL_CTL_ADD);
        }
        continue;
      }
      if (side->closed) continue;
      if (events[i].events & EPOLLOUT) {
        if (!Drain(side)) {
          if (errno != EAGAIN) {
            CloseBoth(epoll_fd, side);
            closed.push_back(side);
          }
          continue;
        }
        Watch(epoll_fd, side, EPOLLIN, EPOLL_CTL_MOD);
        Watch(epoll_fd, side->peer, EPOLLIN, EPOLL_CTL_MOD);  // read the other side again
        continue;
      }
      const ssize_t got = recv(side->fd, buf.data(), buf.size(), 0);
      if (got <= 0) {
        if (got < 0 && errno == EAGAIN) continue;
        CloseBoth(epoll_fd, side);
        closed.push_back(side);
        continue;
      }
      Side* to = side->peer;
      to->pending.append(buf.data(), static_cast<size_t>(got));
      if (!Drain(to)) {
        if (errno != EAGAIN) {
          CloseBoth(epoll_fd, side);
          closed.push_back(side);
          continue;
        }
        Watch(epoll_fd, to, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
        Watch(epoll_fd, side, 0, EPOLL_CTL_MOD);  // stop reading until `to` drained
      }
    }
    for (Side* s : closed) {
      delete s->peer;
      delete s;
    }
    closed.clear();
  }
}
