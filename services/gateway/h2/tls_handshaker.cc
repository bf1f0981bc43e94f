#include "services/gateway/h2/tls_handshaker.h"

#include <openssl/err.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace maas::gateway::h2 {
namespace {

int64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// One socket in its handshake.
struct Pending {
  int fd = -1;
  SSL* ssl = nullptr;
  int64_t accepted_ns = 0;
  uint32_t events = EPOLLIN;  // what the handshake waits for
};

}  // namespace

class TlsHandshaker::Impl {
 public:
  Impl(SSL_CTX* ctx, absl::Duration timeout, std::function<void()> on_done,
       std::function<void()> on_step)
      : ctx_(ctx),
        timeout_ns_(absl::ToInt64Nanoseconds(timeout)),
        on_done_(std::move(on_done)),
        on_step_(std::move(on_step)) {}

  ~Impl() {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    Wake();
    if (thread_.joinable()) thread_.join();
    for (auto& [fd, p] : handshaking_) Discard(p);
    for (const Pending& p : inbox_) Discard(p);
    for (const Done& d : done_) Discard(Pending{d.fd, d.ssl, d.accepted_ns});
    if (epoll_fd_ >= 0) close(epoll_fd_);
    if (wake_fd_ >= 0) close(wake_fd_);
  }

  absl::Status Init() {
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (epoll_fd_ < 0 || wake_fd_ < 0) {
      return absl::UnavailableError(
          absl::StrCat("TLS handshake thread: epoll/eventfd: ", strerror(errno)));
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = wake_fd_;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
    thread_ = std::thread([this] { Loop(); });
    return absl::OkStatus();
  }

  void Add(int fd, int64_t accepted_ns) {
    {
      absl::MutexLock lock(&mu_);
      inbox_.push_back(Pending{fd, nullptr, accepted_ns});
    }
    count_.fetch_add(1, std::memory_order_relaxed);
    Wake();
  }

  std::vector<Done> Take() {
    std::vector<Done> out;
    {
      absl::MutexLock lock(&mu_);
      out.swap(done_);
    }
    count_.fetch_sub(static_cast<int>(out.size()), std::memory_order_relaxed);
    return out;
  }

  int pending() const { return count_.load(std::memory_order_relaxed); }

 private:
  void Wake() {
    uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
  }

  // Closes a socket that will not be handed over.
  void Discard(const Pending& p) {
    if (p.ssl != nullptr) SSL_free(p.ssl);
    close(p.fd);
  }

  void Drop(int fd) {
    auto it = handshaking_.find(fd);
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    Discard(it->second);
    handshaking_.erase(it);
    count_.fetch_sub(1, std::memory_order_relaxed);
  }

  // One step of the handshake of `fd`: handed over when complete, closed when it failed, else
  // waits for what OpenSSL asked for.
  void Step(int fd) {
    Pending& p = handshaking_.at(fd);
    if (on_step_) on_step_();
    ERR_clear_error();
    const int r = SSL_do_handshake(p.ssl);
    if (r == 1) {
      epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
      {
        absl::MutexLock lock(&mu_);
        done_.push_back(Done{p.fd, p.ssl, p.accepted_ns});
      }
      handshaking_.erase(fd);
      if (on_done_) on_done_();
      return;
    }
    uint32_t want;
    switch (SSL_get_error(p.ssl, r)) {
      case SSL_ERROR_WANT_READ:
        want = EPOLLIN;
        break;
      case SSL_ERROR_WANT_WRITE:
        want = EPOLLIN | EPOLLOUT;
        break;
      default:  // no h2 in ALPN, no client certificate, a bad record, the peer went away
        ERR_clear_error();
        Drop(fd);
        return;
    }
    if (want != p.events) {
      p.events = want;
      epoll_event ev{};
      ev.events = want;
      ev.data.fd = fd;
      epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev);
    }
  }

  void Loop() {
    // OpenSSL writes with write(2): a peer gone mid-handshake must be EPIPE, not SIGPIPE.
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
    std::vector<epoll_event> events(64);
    int64_t next_sweep_ns = 0;
    for (;;) {
      const int n = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()),
                               handshaking_.empty() ? -1 : 100);
      if (n < 0 && errno != EINTR) return;
      std::vector<int> ready;
      for (int i = 0; i < n; ++i) {
        const int fd = events[i].data.fd;
        if (fd != wake_fd_) {
          ready.push_back(fd);
          continue;
        }
        uint64_t v;
        (void)!read(wake_fd_, &v, sizeof(v));
        std::vector<Pending> added;
        {
          absl::MutexLock lock(&mu_);
          if (stop_) return;
          added.swap(inbox_);
        }
        for (Pending& p : added) {
          p.ssl = SSL_new(ctx_);
          if (p.ssl == nullptr) {
            Discard(p);
            count_.fetch_sub(1, std::memory_order_relaxed);
            continue;
          }
          SSL_set_fd(p.ssl, p.fd);
          SSL_set_accept_state(p.ssl);
          epoll_event ev{};
          ev.events = EPOLLIN;
          ev.data.fd = p.fd;
          epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, p.fd, &ev);
          handshaking_.emplace(p.fd, p);
        }
      }
      for (int fd : ready) {
        if (handshaking_.contains(fd)) Step(fd);
      }
      const int64_t now = MonotonicNs();
      if (now >= next_sweep_ns) {
        next_sweep_ns = now + 50000000;
        std::vector<int> late;
        for (const auto& [fd, p] : handshaking_) {
          if (now - p.accepted_ns >= timeout_ns_) late.push_back(fd);
        }
        for (int fd : late) Drop(fd);
      }
    }
  }

  SSL_CTX* const ctx_;
  const int64_t timeout_ns_;
  const std::function<void()> on_done_;
  const std::function<void()> on_step_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::thread thread_;
  std::atomic<int> count_{0};
  absl::flat_hash_map<int, Pending> handshaking_;  // the thread's own
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Pending> inbox_ ABSL_GUARDED_BY(mu_);
  std::vector<Done> done_ ABSL_GUARDED_BY(mu_);
};

absl::StatusOr<std::unique_ptr<TlsHandshaker>> TlsHandshaker::Start(SSL_CTX* ctx,
                                                                    absl::Duration timeout,
                                                                    std::function<void()> on_done,
                                                                    std::function<void()> on_step) {
  auto impl = std::make_unique<Impl>(ctx, timeout, std::move(on_done), std::move(on_step));
  if (absl::Status s = impl->Init(); !s.ok()) return s;
  return std::unique_ptr<TlsHandshaker>(new TlsHandshaker(std::move(impl)));
}

TlsHandshaker::TlsHandshaker(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TlsHandshaker::~TlsHandshaker() = default;
void TlsHandshaker::Add(int fd, int64_t accepted_ns) { impl_->Add(fd, accepted_ns); }
std::vector<TlsHandshaker::Done> TlsHandshaker::Take() { return impl_->Take(); }
int TlsHandshaker::pending() const { return impl_->pending(); }

}  // namespace maas::gateway::h2
