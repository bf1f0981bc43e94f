// The server side of TLS handshakes, run on a thread of its own so that the front's event thread,
// which carries every established connection's bytes, never spends its time on one. A handshake
// costs the server an ECDHE exchange and a signature (~0.5 ms with RSA-2048) that a client can
// make it do without any cryptography of its own (by replaying a recorded ClientHello): on the
// event thread, ~1 800 such handshakes a second had cut the calls of every TLS client from
// ~1 700/s to ~130/s.
//
// Sockets come in by Add (accepted, non-blocking), go through SSL_do_handshake step by step on
// the thread's own epoll, and come out by Take with their SSL once the handshake completed (the
// ALPN callback and client certificate checks of the SSL_CTX included); a socket whose handshake
// fails, or has not completed `timeout` after it was accepted, is closed here.
//
//   MAAS_ASSIGN_OR_RETURN(auto handshaker, TlsHandshaker::Start(ctx, timeout, [&] { Wake(); }));
//   handshaker->Add(fd, accepted_ns);               // after accept4
//   for (TlsHandshaker::Done& d : handshaker->Take()) ...  // on the wake-up
#ifndef MAAS_SERVICES_GATEWAY_H2_TLS_HANDSHAKER_H_
#define MAAS_SERVICES_GATEWAY_H2_TLS_HANDSHAKER_H_

#include <openssl/ssl.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace maas::gateway::h2 {

class TlsHandshaker {
 public:
  // A socket whose handshake completed; the SSL is the caller's to SSL_free.
  struct Done {
    int fd = -1;
    SSL* ssl = nullptr;
    int64_t accepted_ns = 0;  // as given to Add
  };

  // Starts the thread. `ctx` must outlive the handshaker. `on_done` is called on the handshaker's
  // thread whenever Take has something new (e.g. to wake the caller's loop); `on_step`, when set,
  // before each handshake step, on the same thread (a test holds a handshake with it).
  static absl::StatusOr<std::unique_ptr<TlsHandshaker>> Start(SSL_CTX* ctx, absl::Duration timeout,
                                                              std::function<void()> on_done,
                                                              std::function<void()> on_step = {});
  // Stops the thread; closes the sockets still in a handshake and those not taken.
  ~TlsHandshaker();
  TlsHandshaker(const TlsHandshaker&) = delete;
  TlsHandshaker& operator=(const TlsHandshaker&) = delete;

  // Takes `fd` (non-blocking, accepted at `accepted_ns` on CLOCK_MONOTONIC) for its handshake.
  // Thread-safe.
  void Add(int fd, int64_t accepted_ns);
  // The sockets whose handshake completed since the last call. Thread-safe.
  std::vector<Done> Take();
  // Sockets added and neither taken nor closed yet (approximate). Thread-safe.
  int pending() const;

  class Impl;

 private:
  explicit TlsHandshaker(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace maas::gateway::h2

#endif  // MAAS_SERVICES_GATEWAY_H2_TLS_HANDSHAKER_H_
