// Raw HTTP/2 endpoints for testing the h2 front in process: a client (what a gRPC client sends the
// front) and a fake backend (what a gRPC server answers), both nghttp2 sessions on non-blocking
// sockets pumped by the test's thread, so a test decides every frame and sees every frame. The
// front runs on its own thread (FrontThread).
//
//   FakeBackend backend;
//   FrontThread front(OptionsFor(backend));
//   Loop loop;
//   Peer client = Peer::Connect(front.port());
//   loop.Add(&client); loop.Add(&backend);
//   const int32_t sid = client.Submit(RequestHeaders("/a.B/M"), GrpcMessage("x"), /*end=*/true);
//   REQUIRE(loop.RunUntil([&] { return backend.stream_count() == 1; }));
#ifndef MAAS_TESTS_SERVICES_GATEWAY_H2_PEER_H_
#define MAAS_TESTS_SERVICES_GATEWAY_H2_PEER_H_

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "services/gateway/h2/h2_front.h"

namespace maas::gateway::h2::testing {

using Headers = std::vector<std::pair<std::string, std::string>>;

// One gRPC message: the 5-byte prefix (uncompressed, big-endian length) and the payload.
inline std::string GrpcMessage(absl::string_view payload) {
  std::string out(5, '\0');
  const uint32_t n = static_cast<uint32_t>(payload.size());
  out[1] = static_cast<char>(n >> 24);
  out[2] = static_cast<char>(n >> 16);
  out[3] = static_cast<char>(n >> 8);
  out[4] = static_cast<char>(n);
  out.append(payload.data(), payload.size());
  return out;
}

inline Headers RequestHeaders(absl::string_view path) {
  return {{":method", "POST"},
          {":scheme", "http"},
          {":path", std::string(path)},
          {":authority", "front"},
          {"content-type", "application/grpc"},
          {"te", "trailers"}};
}

inline Headers ResponseHeaders() {
  return {{":status", "200"}, {"content-type", "application/grpc"}};
}

inline Headers OkTrailers() { return {{"grpc-status", "0"}}; }

// The value of header `name` in `h`, or "" when absent.
inline std::string Find(const Headers& h, absl::string_view name) {
  for (const auto& [k, v] : h) {
    if (k == name) return v;
  }
  return "";
}

// What one endpoint saw and sends on one stream.
struct PeerStream {
  Headers headers;   // the first header block received (request or response headers)
  Headers trailers;  // a later header block (trailers)
  int header_blocks = 0;
  std::string data;         // DATA payload received
  bool end_stream = false;  // the other side sent END_STREAM
  bool closed = false;
  uint32_t close_code = 0;
  bool got_rst = false;
  uint32_t rst_code = 0;
  // Outgoing DATA, handed to nghttp2 as its window allows; `out_eof` ends the stream after it
  // (with `out_trailers` when set).
  std::string out;
  size_t out_off = 0;
  bool out_eof = false;
  Headers out_trailers;
  bool provider = false;  // a data provider is attached
  bool deferred = false;
  size_t sent = 0;  // DATA bytes handed to nghttp2
};

struct PeerOptions {
  // SETTINGS_INITIAL_WINDOW_SIZE announced, and the connection window.
  uint32_t stream_window = 65535;
  int32_t connection_window = 65535;
  // Acknowledge received DATA at once (WINDOW_UPDATE); false: only through Consume().
  bool auto_consume = true;
  // Server sessions: SETTINGS_MAX_CONCURRENT_STREAMS (0 = none announced).
  uint32_t max_concurrent_streams = 0;
  // Client sessions: TLS with this context (its ALPN offering "h2"); null = plaintext. The context
  // needs SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER (ClientTlsContext).
  SSL_CTX* tls = nullptr;
};

// A TLS client context for Peer: ALPN "h2", any server certificate accepted. SSL_CTX_free it.
inline SSL_CTX* ClientTlsContext() {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  static const unsigned char kH2[] = {2, 'h', '2'};
  SSL_CTX_set_alpn_protos(ctx, kH2, sizeof(kH2));
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  return ctx;
}

class Peer {
 public:
  Peer(int fd, bool server, PeerOptions options = {})
      : fd_(fd), server_(server), options_(options) {
    fcntl(fd_, F_SETFL, fcntl(fd_, F_GETFL) | O_NONBLOCK);
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    nghttp2_session_callbacks* cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, &Peer::OnBeginHeaders);
    nghttp2_session_callbacks_set_on_header_callback(cbs, &Peer::OnHeader);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &Peer::OnFrameRecv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &Peer::OnDataChunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &Peer::OnStreamClose);
    nghttp2_option* opt;
    nghttp2_option_new(&opt);
    nghttp2_option_set_no_auto_window_update(opt, 1);
    // A gRPC server does not limit the client's RST_STREAM rate (the front resets many streams).
    nghttp2_option_set_stream_reset_rate_limit(opt, 1 << 30, 1 << 30);
    // gRPC accepts header values with leading or trailing whitespace ("authorization: Bearer ").
    nghttp2_option_set_no_rfc9113_leading_and_trailing_ws_validation(opt, 1);
    // Any client may send a header block above nghttp2's 64 KiB default (the front must cope).
    nghttp2_option_set_max_send_header_block_length(opt, 1 << 20);
    if (server) {
      nghttp2_session_server_new2(&session_, cbs, this, opt);
    } else {
      nghttp2_session_client_new2(&session_, cbs, this, opt);
    }
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    std::vector<nghttp2_settings_entry> iv = {
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, options_.stream_window}};
    if (server && options_.max_concurrent_streams > 0) {
      iv.push_back({NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, options_.max_concurrent_streams});
    }
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, iv.data(), iv.size());
    nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                          options_.connection_window);
    if (options_.tls != nullptr && !server) {
      ssl_ = SSL_new(options_.tls);
      SSL_set_fd(ssl_, fd_);
      SSL_set_connect_state(ssl_);  // the handshake runs within the first reads and writes
    }
  }
  Peer(const Peer&) = delete;
  Peer& operator=(const Peer&) = delete;
  ~Peer() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    nghttp2_session_del(session_);
    if (fd_ >= 0) close(fd_);
  }

  // A client connected to 127.0.0.1:port.
  static std::unique_ptr<Peer> Connect(int port, PeerOptions options = {}) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      close(fd);
      return nullptr;
    }
    return std::make_unique<Peer>(fd, false, options);
  }

  int fd() const { return fd_; }
  bool dead() const { return dead_; }
  bool wants_out() const { return out_off_ < out_.size(); }
  nghttp2_session* session() { return session_; }

  // Reads what arrived, lets nghttp2 answer, writes what it can. False once the connection ended.
  bool Pump() {
    if (dead_) return false;
    if (frozen_) return true;
    for (;;) {
      uint8_t buf[64 * 1024];
      const ssize_t n = Receive(buf, sizeof(buf));
      if (n > 0) {
        bytes_received_ += n;
        if (nghttp2_session_mem_recv(session_, buf, n) < 0) return Kill();
        continue;
      }
      if (n == 0 || (errno != EAGAIN && errno != EINTR)) return Kill();
      if (errno == EAGAIN) break;
    }
    while (out_.size() - out_off_ < (1 << 20)) {
      const uint8_t* data;
      const ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n < 0) return Kill();
      if (n == 0) break;
      out_.append(reinterpret_cast<const char*>(data), n);
    }
    while (out_off_ < out_.size()) {
      const ssize_t n = SendSome(out_.data() + out_off_, out_.size() - out_off_);
      if (n < 0) {
        if (errno == EAGAIN) break;
        if (errno == EINTR) continue;
        return Kill();
      }
      out_off_ += n;
    }
    if (out_off_ == out_.size()) {
      out_.clear();
      out_off_ = 0;
    }
    return true;
  }

  // recv(2), or SSL_read: a TLS step waiting for the peer is EAGAIN.
  ssize_t Receive(uint8_t* buf, size_t size) {
    if (ssl_ == nullptr) return recv(fd_, buf, size, 0);
    ERR_clear_error();  // SSL_get_error reads the thread's queue: no earlier failure's entries
    const int n = SSL_read(ssl_, buf, static_cast<int>(size));
    return n > 0 ? n : TlsFailure(n);
  }
  // send(2), or SSL_write likewise.
  ssize_t SendSome(const char* data, size_t size) {
    if (ssl_ == nullptr) return send(fd_, data, size, MSG_NOSIGNAL);
    ERR_clear_error();
    const int n = SSL_write(ssl_, data, static_cast<int>(size));
    return n > 0 ? n : TlsFailure(n);
  }
  ssize_t TlsFailure(int n) {
    const int err = SSL_get_error(ssl_, n);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      errno = EAGAIN;
      return -1;
    }
    if (err == SSL_ERROR_ZERO_RETURN) return 0;
    errno = ECONNRESET;
    return -1;
  }

  // Client: a request (HEADERS, then `body` as DATA; END_STREAM after it when `end`).
  int32_t Submit(const Headers& headers, std::string body, bool end) {
    std::vector<nghttp2_nv> nv = ToNv(headers);
    nghttp2_data_provider prd;
    prd.source.ptr = nullptr;
    prd.read_callback = &Peer::ReadData;
    const int32_t sid = nghttp2_submit_request(session_, nullptr, nv.data(), nv.size(), &prd, this);
    if (sid > 0) {
      PeerStream& s = streams_[sid];
      s.out = std::move(body);
      s.out_eof = end;
      s.provider = true;
    }
    return sid;
  }
  // Server: response headers; the body follows through Write() (trailers-only when `end`).
  void Respond(int32_t sid, const Headers& headers, bool end = false) {
    PeerStream& s = streams_[sid];
    std::vector<nghttp2_nv> nv = ToNv(headers);
    if (end) {
      nghttp2_submit_response(session_, sid, nv.data(), nv.size(), nullptr);
      return;
    }
    nghttp2_data_provider prd;
    prd.source.ptr = nullptr;
    prd.read_callback = &Peer::ReadData;
    s.provider = true;
    nghttp2_submit_response(session_, sid, nv.data(), nv.size(), &prd);
  }
  // More DATA on a stream with a provider; `end` ends the stream after it (server: with
  // `trailers`, when given).
  void Write(int32_t sid, absl::string_view bytes, bool end = false, Headers trailers = {}) {
    PeerStream& s = streams_[sid];
    s.out.append(bytes.data(), bytes.size());
    if (end) {
      s.out_eof = true;
      s.out_trailers = std::move(trailers);
    }
    if (s.deferred) {
      s.deferred = false;
      nghttp2_session_resume_data(session_, sid);
    }
  }
  void Reset(int32_t sid, uint32_t code) {
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, sid, code);
  }
  void Consume(int32_t sid, size_t n) { nghttp2_session_consume(session_, sid, n); }
  void Goaway(uint32_t code) {
    nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(session_), code, nullptr, 0);
  }
  // Stops reading and writing with the socket left open (a process that hangs: SIGSTOP, a
  // deadlock): nothing the other side sends is answered, PINGs included.
  void Freeze() { frozen_ = true; }
  bool frozen() const { return frozen_; }
  // Closes the socket at once (a process that died).
  void Abort() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    dead_ = true;
  }

  std::map<int32_t, PeerStream>& streams() { return streams_; }
  PeerStream& stream(int32_t sid) { return streams_[sid]; }
  bool got_goaway() const { return got_goaway_; }
  uint32_t goaway_code() const { return goaway_code_; }
  int32_t goaway_last_stream() const { return goaway_last_stream_; }
  uint64_t bytes_received() const { return bytes_received_; }
  // Server: the streams opened by the other side, in order.
  const std::vector<int32_t>& opened() const { return opened_; }

 private:
  bool Kill() {
    dead_ = true;
    return false;
  }
  static std::vector<nghttp2_nv> ToNv(const Headers& headers) {
    std::vector<nghttp2_nv> nv;
    for (const auto& [k, v] : headers) {
      nv.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(k.data())),
                    reinterpret_cast<uint8_t*>(const_cast<char*>(v.data())), k.size(), v.size(),
                    NGHTTP2_NV_FLAG_NONE});
    }
    return nv;
  }
  static int OnBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* ud) {
    auto* self = static_cast<Peer*>(ud);
    if (self->server_ && frame->hd.type == NGHTTP2_HEADERS &&
        frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
      self->streams_[frame->hd.stream_id];
      self->opened_.push_back(frame->hd.stream_id);
    }
    return 0;
  }
  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void* ud) {
    PeerStream& s = static_cast<Peer*>(ud)->streams_[frame->hd.stream_id];
    (s.header_blocks == 0 ? s.headers : s.trailers)
        .emplace_back(std::string(reinterpret_cast<const char*>(name), namelen),
                      std::string(reinterpret_cast<const char*>(value), valuelen));
    return 0;
  }
  static int OnFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* ud) {
    auto* self = static_cast<Peer*>(ud);
    if (frame->hd.type == NGHTTP2_GOAWAY) {
      self->got_goaway_ = true;
      self->goaway_code_ = frame->goaway.error_code;
      self->goaway_last_stream_ = frame->goaway.last_stream_id;
      return 0;
    }
    if (frame->hd.stream_id == 0) return 0;
    PeerStream& s = self->streams_[frame->hd.stream_id];
    if (frame->hd.type == NGHTTP2_HEADERS) ++s.header_blocks;
    if (frame->hd.type == NGHTTP2_RST_STREAM) {
      s.got_rst = true;
      s.rst_code = frame->rst_stream.error_code;
    }
    if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
      s.end_stream = true;
    }
    return 0;
  }
  static int OnDataChunk(nghttp2_session* session, uint8_t, int32_t sid, const uint8_t* data,
                         size_t len, void* ud) {
    auto* self = static_cast<Peer*>(ud);
    self->streams_[sid].data.append(reinterpret_cast<const char*>(data), len);
    if (self->options_.auto_consume) nghttp2_session_consume(session, sid, len);
    return 0;
  }
  static int OnStreamClose(nghttp2_session*, int32_t sid, uint32_t code, void* ud) {
    PeerStream& s = static_cast<Peer*>(ud)->streams_[sid];
    s.closed = true;
    s.close_code = code;
    return 0;
  }
  static ssize_t ReadData(nghttp2_session* session, int32_t sid, uint8_t* buf, size_t length,
                          uint32_t* flags, nghttp2_data_source*, void* ud) {
    auto* self = static_cast<Peer*>(ud);
    PeerStream& s = self->streams_[sid];
    const size_t n = std::min(length, s.out.size() - s.out_off);
    std::memcpy(buf, s.out.data() + s.out_off, n);
    s.out_off += n;
    s.sent += n;
    if (s.out_off == s.out.size()) {
      s.out.clear();
      s.out_off = 0;
      if (s.out_eof) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (!s.out_trailers.empty()) {
          std::vector<nghttp2_nv> nv = ToNv(s.out_trailers);
          nghttp2_submit_trailer(session, sid, nv.data(), nv.size());
          *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        }
      } else if (n == 0) {
        s.deferred = true;
        return NGHTTP2_ERR_DEFERRED;
      }
    }
    return static_cast<ssize_t>(n);
  }

  int fd_;
  bool server_;
  PeerOptions options_;
  SSL* ssl_ = nullptr;  // a TLS client's
  nghttp2_session* session_ = nullptr;
  std::string out_;
  size_t out_off_ = 0;
  bool dead_ = false;
  bool frozen_ = false;
  bool got_goaway_ = false;
  uint32_t goaway_code_ = 0;
  int32_t goaway_last_stream_ = 0;
  uint64_t bytes_received_ = 0;
  std::map<int32_t, PeerStream> streams_;
  std::vector<int32_t> opened_;
};

// A fake gRPC backend: accepts connections on a loopback port; each is a server Peer.
class FakeBackend {
 public:
  explicit FakeBackend(PeerOptions options = {}) : options_(options) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    listen(listen_fd_, 64);
    socklen_t len = sizeof(addr);
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~FakeBackend() {
    if (listen_fd_ >= 0) close(listen_fd_);
  }
  int port() const { return port_; }
  std::string target() const { return "ipv4:127.0.0.1:" + std::to_string(port_); }
  int listen_fd() const { return listen_fd_; }
  void Accept() {
    for (;;) {
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      conns_.push_back(std::make_unique<Peer>(fd, true, options_));
    }
  }
  std::vector<std::unique_ptr<Peer>>& conns() { return conns_; }
  // Every request stream of every connection, as (connection, stream id), in arrival order per
  // connection.
  std::vector<std::pair<Peer*, int32_t>> requests() {
    std::vector<std::pair<Peer*, int32_t>> out;
    for (auto& c : conns_) {
      for (int32_t sid : c->opened()) out.emplace_back(c.get(), sid);
    }
    return out;
  }

 private:
  PeerOptions options_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::vector<std::unique_ptr<Peer>> conns_;
};

// Pumps clients and backends on the test's thread.
class Loop {
 public:
  void Add(Peer* p) { peers_.push_back(p); }
  void Add(FakeBackend* b) { backends_.push_back(b); }
  // Runs until `done` holds (true) or `timeout` passes (false).
  bool RunUntil(const std::function<bool()>& done, absl::Duration timeout = absl::Seconds(20)) {
    const absl::Time deadline = absl::Now() + timeout;
    for (;;) {
      Step();
      if (done()) return true;
      if (absl::Now() >= deadline) return false;
    }
  }
  // Runs for `d` (to let frames that should not come have a chance to come).
  void RunFor(absl::Duration d) {
    RunUntil([] { return false; }, d);
  }

 private:
  void Step() {
    std::vector<pollfd> fds;
    std::vector<Peer*> all;
    for (Peer* p : peers_) all.push_back(p);
    for (FakeBackend* b : backends_) {
      fds.push_back({b->listen_fd(), POLLIN, 0});
      for (auto& c : b->conns()) all.push_back(c.get());
    }
    for (Peer* p : all) {
      if (!p->dead() && !p->frozen()) {
        fds.push_back({p->fd(), static_cast<short>(POLLIN | (p->wants_out() ? POLLOUT : 0)), 0});
      }
    }
    poll(fds.data(), fds.size(), 2);
    for (FakeBackend* b : backends_) b->Accept();
    for (FakeBackend* b : backends_) {
      for (auto& c : b->conns()) c->Pump();
    }
    for (Peer* p : peers_) p->Pump();
  }
  std::vector<Peer*> peers_;
  std::vector<FakeBackend*> backends_;
};

// The front serving on its own thread; Shutdown(0) and join on destruction.
class FrontThread {
 public:
  explicit FrontThread(const FrontOptions& options) {
    auto front = H2Front::Create(options);
    if (!front.ok()) {
      status_ = front.status();
      return;
    }
    front_ = *std::move(front);
    thread_ = std::thread([this] {
      front_->Run();
      returned_ = true;
    });
  }
  FrontThread(const FrontThread&) = delete;
  FrontThread& operator=(const FrontThread&) = delete;
  ~FrontThread() {
    if (front_ == nullptr) return;
    front_->Shutdown(absl::ZeroDuration());
    thread_.join();
  }
  const absl::Status& status() const { return status_; }
  H2Front* operator->() { return front_.get(); }
  int port() const { return front_->port(); }
  // Run() has returned (after Shutdown and the drain).
  bool returned() const { return returned_; }

 private:
  absl::Status status_;
  std::unique_ptr<H2Front> front_;
  std::thread thread_;
  std::atomic<bool> returned_{false};
};

}  // namespace maas::gateway::h2::testing

#endif  // MAAS_TESTS_SERVICES_GATEWAY_H2_PEER_H_
