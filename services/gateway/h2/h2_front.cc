#include "services/gateway/h2/h2_front.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace maas::gateway::h2 {

struct Conn;

namespace {

constexpr size_t kReadBuffer = 256 * 1024;
constexpr size_t kMaxPendingOut = 1 << 20;

// One header field, owned.
struct Header {
  std::string name;
  std::string value;
};

// A byte FIFO: appended at the end, taken from the front.
struct ByteQueue {
  std::string data;
  size_t off = 0;
  size_t size() const { return data.size() - off; }
  void Append(const uint8_t* p, size_t n) {
    if (off > 0 && off == data.size()) {
      data.clear();
      off = 0;
    }
    data.append(reinterpret_cast<const char*>(p), n);
  }
  size_t Take(uint8_t* out, size_t n) {
    n = std::min(n, size());
    std::memcpy(out, data.data() + off, n);
    off += n;
    if (off == data.size()) {
      data.clear();
      off = 0;
    } else if (off > (64 << 10) && off * 2 > data.size()) {
      data.erase(0, off);
      off = 0;
    }
    return n;
  }
};

// One proxied call: a client stream paired with a backend stream.
struct Call {
  Conn* client = nullptr;  // null once the client stream is closed
  int32_t client_sid = 0;
  Conn* backend = nullptr;  // null once the backend stream is closed (or never opened)
  int32_t backend_sid = 0;
  std::vector<Header> headers;  // headers being received (request, response or trailers)
  std::vector<Header> trailers;
  ByteQueue req;  // client -> backend bytes not yet handed to the backend session
  ByteQueue resp;
  bool req_eof = false;  // client sent END_STREAM
  bool req_deferred = false;
  bool resp_eof = false;  // backend sent END_STREAM (trailers or trailers-only)
  bool resp_deferred = false;
  bool resp_started = false;  // response HEADERS submitted to the client
};

std::vector<nghttp2_nv> ToNv(const std::vector<Header>& headers) {
  std::vector<nghttp2_nv> nv;
  nv.reserve(headers.size());
  for (const Header& h : headers) {
    nv.push_back(nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(h.name.data())),
                            reinterpret_cast<uint8_t*>(const_cast<char*>(h.value.data())),
                            h.name.size(), h.value.size(), NGHTTP2_NV_FLAG_NONE});
  }
  return nv;
}

// gRPC's mapping of an HTTP/2 RST_STREAM code to a status code (doc/PROTOCOL-HTTP2.md).
int GrpcStatusOfRst(uint32_t code) {
  switch (code) {
    case NGHTTP2_REFUSED_STREAM:
      return 14;  // UNAVAILABLE
    case NGHTTP2_CANCEL:
      return 1;  // CANCELLED
    case NGHTTP2_ENHANCE_YOUR_CALM:
      return 8;  // RESOURCE_EXHAUSTED
    case NGHTTP2_INADEQUATE_SECURITY:
      return 7;  // PERMISSION_DENIED
    default:
      return 13;  // INTERNAL
  }
}

}  // namespace

struct Route {
  std::string service;
  sockaddr_in addr{};
  std::vector<Conn*> conns;
  size_t next = 0;
};

struct Conn {
  H2Front::Impl* front = nullptr;
  int fd = -1;
  bool is_backend = false;
  Route* route = nullptr;
  nghttp2_session* session = nullptr;
  std::string out;
  size_t out_off = 0;
  bool connecting = false;
  bool epollout = false;
  bool dirty = false;
  bool dead = false;
  absl::flat_hash_set<Call*> calls;
};

class H2Front::Impl {
 public:
  explicit Impl(FrontOptions options) : options_(std::move(options)) {}
  ~Impl();

  absl::Status Init();
  void Run();
  void Stop() {
    uint64_t one = 1;
    (void)!write(stop_fd_, &one, sizeof(one));
  }
  int port() const { return port_; }

  // nghttp2 callbacks (static trampolines below).
  int OnBeginHeaders(Conn* c, const nghttp2_frame* frame);
  int OnHeader(Conn* c, const nghttp2_frame* frame, absl::string_view name,
               absl::string_view value);
  int OnFrameRecv(Conn* c, const nghttp2_frame* frame);
  int OnDataChunk(Conn* c, int32_t sid, const uint8_t* data, size_t len);
  int OnStreamClose(Conn* c, int32_t sid, uint32_t code);
  int OnFrameSend(Conn* c, const nghttp2_frame* frame);
  ssize_t ReadRequest(Call* call, uint8_t* buf, size_t length, uint32_t* flags);
  ssize_t ReadResponse(Call* call, uint8_t* buf, size_t length, uint32_t* flags);

 private:
  nghttp2_session_callbacks* MakeCallbacks();
  void Accept();
  Conn* NewConn(int fd, bool backend, Route* route);
  Conn* BackendFor(Route* route);
  void OnEvent(Conn* c, uint32_t events);
  void Flush(Conn* c);
  bool SendOut(Conn* c);
  void SetEpollOut(Conn* c, bool on);
  void Close(Conn* c);
  void MarkDirty(Conn* c) {
    if (c != nullptr && !c->dirty && !c->dead) {
      c->dirty = true;
      dirty_.push_back(c);
    }
  }
  void StartCall(Call* call);
  void ReplyStatus(Call* call, int code, absl::string_view message);
  void ResetClient(Call* call, uint32_t code);
  void MaybeDelete(Call* call) {
    if (call->client == nullptr && call->backend == nullptr) delete call;
  }

  FrontOptions options_;
  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  int stop_fd_ = -1;
  int port_ = 0;
  std::vector<Route> routes_;
  absl::flat_hash_map<std::string, Route*> by_service_;
  nghttp2_session_callbacks* callbacks_ = nullptr;
  nghttp2_option* option_ = nullptr;
  std::vector<Conn*> dirty_;
  std::vector<Conn*> graveyard_;
  absl::flat_hash_set<Conn*> conns_;
  std::vector<uint8_t> rbuf_ = std::vector<uint8_t>(kReadBuffer);
};

namespace {

H2Front::Impl* FrontOf(void* user_data) { return static_cast<Conn*>(user_data)->front; }

int CbBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* ud) {
  return FrontOf(ud)->OnBeginHeaders(static_cast<Conn*>(ud), frame);
}
int CbHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
             const uint8_t* value, size_t valuelen, uint8_t, void* ud) {
  return FrontOf(ud)->OnHeader(static_cast<Conn*>(ud), frame,
                               absl::string_view(reinterpret_cast<const char*>(name), namelen),
                               absl::string_view(reinterpret_cast<const char*>(value), valuelen));
}
int CbFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* ud) {
  return FrontOf(ud)->OnFrameRecv(static_cast<Conn*>(ud), frame);
}
int CbDataChunk(nghttp2_session*, uint8_t, int32_t sid, const uint8_t* data, size_t len, void* ud) {
  return FrontOf(ud)->OnDataChunk(static_cast<Conn*>(ud), sid, data, len);
}
int CbStreamClose(nghttp2_session*, int32_t sid, uint32_t code, void* ud) {
  return FrontOf(ud)->OnStreamClose(static_cast<Conn*>(ud), sid, code);
}
int CbFrameSend(nghttp2_session*, const nghttp2_frame* frame, void* ud) {
  return FrontOf(ud)->OnFrameSend(static_cast<Conn*>(ud), frame);
}
ssize_t CbReadRequest(nghttp2_session*, int32_t, uint8_t* buf, size_t length, uint32_t* flags,
                      nghttp2_data_source* source, void* ud) {
  return FrontOf(ud)->ReadRequest(static_cast<Call*>(source->ptr), buf, length, flags);
}
ssize_t CbReadResponse(nghttp2_session*, int32_t, uint8_t* buf, size_t length, uint32_t* flags,
                       nghttp2_data_source* source, void* ud) {
  return FrontOf(ud)->ReadResponse(static_cast<Call*>(source->ptr), buf, length, flags);
}

void SetNonBlockingNoDelay(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

}  // namespace

nghttp2_session_callbacks* H2Front::Impl::MakeCallbacks() {
  nghttp2_session_callbacks* cbs;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, CbBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(cbs, CbHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, CbFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, CbDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, CbStreamClose);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, CbFrameSend);
  return cbs;
}

absl::Status H2Front::Impl::Init() {
  if (options_.backend_connections < 1) {
    return absl::InvalidArgumentError("backend_connections must be >= 1");
  }
  if (options_.stream_window_bytes < 65535 ||
      options_.connection_window_bytes < options_.stream_window_bytes) {
    return absl::InvalidArgumentError(
        "stream_window_bytes must be >= 65535 and <= connection_window_bytes");
  }
  routes_.reserve(options_.routes.size());
  for (const FrontRoute& r : options_.routes) {
    Route route;
    route.service = r.service;
    route.addr.sin_family = AF_INET;
    route.addr.sin_port = htons(static_cast<uint16_t>(r.port));
    if (r.port < 1 || r.port > 65535 ||
        inet_pton(AF_INET, r.host.c_str(), &route.addr.sin_addr) != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("route ", r.service, ": backend '", r.host, ":", r.port,
                       "' is not an IPv4 address with a port in [1, 65535]"));
    }
    route.conns.assign(options_.backend_connections, nullptr);
    routes_.push_back(std::move(route));
  }
  for (Route& r : routes_) {
    if (!by_service_.emplace(r.service, &r).second) {
      return absl::InvalidArgumentError(absl::StrCat("two routes for service ", r.service));
    }
  }
  callbacks_ = MakeCallbacks();
  nghttp2_option_new(&option_);
  nghttp2_option_set_no_auto_window_update(option_, 1);
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(options_.listen_port));
  if (inet_pton(AF_INET, options_.listen_host.c_str(), &addr.sin_addr) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen host '", options_.listen_host, "' is not an IPv4 address"));
  }
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(listen_fd_, 1024) != 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options_.listen_host, ":",
                                               options_.listen_port, ": ", strerror(errno)));
  }
  socklen_t len = sizeof(addr);
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  stop_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
  ev.data.ptr = &stop_fd_;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, stop_fd_, &ev);
  return absl::OkStatus();
}

H2Front::Impl::~Impl() {
  for (Conn* c : std::vector<Conn*>(conns_.begin(), conns_.end())) Close(c);
  for (Conn* c : graveyard_) delete c;
  if (listen_fd_ >= 0) close(listen_fd_);
  if (epoll_fd_ >= 0) close(epoll_fd_);
  if (stop_fd_ >= 0) close(stop_fd_);
  if (callbacks_ != nullptr) nghttp2_session_callbacks_del(callbacks_);
  if (option_ != nullptr) nghttp2_option_del(option_);
}

Conn* H2Front::Impl::NewConn(int fd, bool backend, Route* route) {
  auto* c = new Conn;
  c->front = this;
  c->fd = fd;
  c->is_backend = backend;
  c->route = route;
  if (backend) {
    nghttp2_session_client_new2(&c->session, callbacks_, c, option_);
  } else {
    nghttp2_session_server_new2(&c->session, callbacks_, c, option_);
  }
  nghttp2_settings_entry iv[3];
  size_t n = 0;
  iv[n++] = {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE,
             static_cast<uint32_t>(options_.stream_window_bytes)};
  if (backend) {
    iv[n++] = {NGHTTP2_SETTINGS_ENABLE_PUSH, 0};
  } else {
    iv[n++] = {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
               static_cast<uint32_t>(options_.max_streams_per_connection)};
  }
  nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, n);
  nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0,
                                        options_.connection_window_bytes);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = c;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
  conns_.insert(c);
  MarkDirty(c);
  return c;
}

Conn* H2Front::Impl::BackendFor(Route* route) {
  const size_t i = route->next++ % route->conns.size();
  Conn*& slot = route->conns[i];
  if (slot != nullptr && !slot->dead) {
    if (nghttp2_session_check_request_allowed(slot->session)) return slot;
    slot = nullptr;  // GOAWAY received: it finishes its streams, new calls get a new connection
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return nullptr;
  SetNonBlockingNoDelay(fd);
  bool connecting = false;
  if (connect(fd, reinterpret_cast<sockaddr*>(&route->addr), sizeof(route->addr)) != 0) {
    if (errno != EINPROGRESS) {
      close(fd);
      return nullptr;
    }
    connecting = true;
  }
  slot = NewConn(fd, true, route);
  slot->connecting = connecting;
  if (connecting) SetEpollOut(slot, true);
  return slot;
}

void H2Front::Impl::Accept() {
  for (;;) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    SetNonBlockingNoDelay(fd);
    NewConn(fd, false, nullptr);
  }
}

void H2Front::Impl::SetEpollOut(Conn* c, bool on) {
  if (c->epollout == on) return;
  c->epollout = on;
  epoll_event ev{};
  ev.events = on ? (EPOLLIN | EPOLLOUT) : EPOLLIN;
  ev.data.ptr = c;
  epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c->fd, &ev);
}

void H2Front::Impl::Run() {
  std::vector<epoll_event> events(128);
  for (;;) {
    const int n = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    for (int i = 0; i < n; ++i) {
      void* p = events[i].data.ptr;
      if (p == nullptr) {
        Accept();
      } else if (p == &stop_fd_) {
        return;
      } else {
        OnEvent(static_cast<Conn*>(p), events[i].events);
      }
    }
    // Flush every session something was submitted to; flushing one may dirty another (consume).
    for (size_t i = 0; i < dirty_.size(); ++i) {
      Conn* c = dirty_[i];
      c->dirty = false;
      Flush(c);
    }
    dirty_.clear();
    for (Conn* c : graveyard_) delete c;
    graveyard_.clear();
  }
}

void H2Front::Impl::OnEvent(Conn* c, uint32_t events) {
  if (c->dead) return;
  if (c->connecting && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      Close(c);
      return;
    }
    c->connecting = false;
  }
  if (events & EPOLLOUT) {
    if (SendOut(c)) {
      SetEpollOut(c, false);
      MarkDirty(c);
    }
  }
  if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
    for (;;) {
      const ssize_t n = recv(c->fd, rbuf_.data(), rbuf_.size(), 0);
      if (n > 0) {
        const ssize_t used = nghttp2_session_mem_recv(c->session, rbuf_.data(), n);
        if (used < 0) {
          Close(c);
          return;
        }
        MarkDirty(c);
        if (static_cast<size_t>(n) < rbuf_.size()) break;
        continue;
      }
      if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        Close(c);
        return;
      }
      if (errno == EAGAIN) break;
    }
  }
}

bool H2Front::Impl::SendOut(Conn* c) {
  while (c->out_off < c->out.size()) {
    const ssize_t n =
        send(c->fd, c->out.data() + c->out_off, c->out.size() - c->out_off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) Close(c);
      return false;
    }
    c->out_off += n;
  }
  c->out.clear();
  c->out_off = 0;
  return true;
}

void H2Front::Impl::Flush(Conn* c) {
  if (c->dead) return;
  if (c->connecting || c->out_off < c->out.size()) {
    // Wait for EPOLLOUT; nothing more is generated while output is pending (back pressure).
    if (!c->connecting && !SendOut(c)) {
      if (!c->dead) SetEpollOut(c, true);
      return;
    }
    if (c->connecting) return;
  }
  for (;;) {
    bool more = false;
    for (;;) {
      const uint8_t* data;
      const ssize_t n = nghttp2_session_mem_send(c->session, &data);
      if (n < 0) {
        Close(c);
        return;
      }
      if (n == 0) break;
      c->out.append(reinterpret_cast<const char*>(data), n);
      if (c->out.size() >= kMaxPendingOut) {
        more = true;
        break;
      }
    }
    if (!SendOut(c)) {
      if (!c->dead) SetEpollOut(c, true);
      return;
    }
    if (!more) break;
  }
  if (!nghttp2_session_want_read(c->session) && !nghttp2_session_want_write(c->session)) {
    Close(c);
  }
}

void H2Front::Impl::Close(Conn* c) {
  if (c->dead) return;
  c->dead = true;
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c->fd, nullptr);
  close(c->fd);
  conns_.erase(c);
  if (c->route != nullptr) {
    for (Conn*& slot : c->route->conns) {
      if (slot == c) slot = nullptr;
    }
  }
  std::vector<Call*> calls(c->calls.begin(), c->calls.end());
  c->calls.clear();
  for (Call* call : calls) {
    if (c->is_backend) {
      call->backend = nullptr;
      if (call->client != nullptr && !call->resp_eof) {
        if (!call->resp_started) {
          ReplyStatus(call, 14, "maas-gateway: backend connection closed");
        } else {
          ResetClient(call, NGHTTP2_INTERNAL_ERROR);
        }
      }
    } else {
      call->client = nullptr;
      if (call->backend != nullptr) {
        nghttp2_submit_rst_stream(call->backend->session, NGHTTP2_FLAG_NONE, call->backend_sid,
                                  NGHTTP2_CANCEL);
        MarkDirty(call->backend);
      }
    }
    MaybeDelete(call);
  }
  nghttp2_session_del(c->session);
  c->session = nullptr;
  graveyard_.push_back(c);
}

int H2Front::Impl::OnBeginHeaders(Conn* c, const nghttp2_frame* frame) {
  if (c->is_backend || frame->hd.type != NGHTTP2_HEADERS ||
      frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
    return 0;
  }
  auto* call = new Call;
  call->client = c;
  call->client_sid = frame->hd.stream_id;
  c->calls.insert(call);
  nghttp2_session_set_stream_user_data(c->session, frame->hd.stream_id, call);
  return 0;
}

int H2Front::Impl::OnHeader(Conn* c, const nghttp2_frame* frame, absl::string_view name,
                            absl::string_view value) {
  auto* call =
      static_cast<Call*>(nghttp2_session_get_stream_user_data(c->session, frame->hd.stream_id));
  if (call == nullptr) return 0;
  call->headers.push_back(Header{std::string(name), std::string(value)});
  return 0;
}

void H2Front::Impl::ReplyStatus(Call* call, int code, absl::string_view message) {
  Conn* c = call->client;
  call->resp_started = true;
  call->resp_eof = true;
  const std::string status = std::to_string(code);
  // grpc-message is percent-encoded; our messages are plain ASCII without '%'.
  std::vector<Header> h = {{":status", "200"},
                           {"content-type", "application/grpc"},
                           {"grpc-status", status},
                           {"grpc-message", std::string(message)}};
  std::vector<nghttp2_nv> nv = ToNv(h);
  nghttp2_submit_response(c->session, call->client_sid, nv.data(), nv.size(), nullptr);
  MarkDirty(c);
}

void H2Front::Impl::ResetClient(Call* call, uint32_t code) {
  nghttp2_submit_rst_stream(call->client->session, NGHTTP2_FLAG_NONE, call->client_sid, code);
  MarkDirty(call->client);
}

void H2Front::Impl::StartCall(Call* call) {
  absl::string_view path;
  for (const Header& h : call->headers) {
    if (h.name == ":path") path = h.value;
  }
  Route* route = nullptr;
  if (path.size() > 1 && path[0] == '/') {
    const size_t slash = path.find('/', 1);
    if (slash != absl::string_view::npos) {
      auto it = by_service_.find(path.substr(1, slash - 1));
      if (it != by_service_.end()) route = it->second;
    }
  }
  if (route == nullptr) {
    ReplyStatus(call, 12, absl::StrCat("maas-gateway: no route for method ", path.substr(0, 256)));
    call->headers.clear();
    return;
  }
  Conn* b = BackendFor(route);
  if (b == nullptr) {
    ReplyStatus(call, 14, "maas-gateway: cannot connect to the backend");
    call->headers.clear();
    return;
  }
  std::vector<nghttp2_nv> nv = ToNv(call->headers);
  nghttp2_data_provider prd;
  prd.source.ptr = call;
  prd.read_callback = CbReadRequest;
  const int32_t sid = nghttp2_submit_request(b->session, nullptr, nv.data(), nv.size(), &prd, call);
  call->headers.clear();
  if (sid < 0) {
    ReplyStatus(call, 14, "maas-gateway: backend connection cannot take more streams");
    return;
  }
  call->backend = b;
  call->backend_sid = sid;
  b->calls.insert(call);
  MarkDirty(b);
}

int H2Front::Impl::OnFrameRecv(Conn* c, const nghttp2_frame* frame) {
  const int32_t sid = frame->hd.stream_id;
  if (sid == 0) return 0;
  auto* call = static_cast<Call*>(nghttp2_session_get_stream_user_data(c->session, sid));
  if (call == nullptr) return 0;
  const bool end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  if (!c->is_backend) {
    if (end_stream && (frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS)) {
      call->req_eof = true;
    }
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
      StartCall(call);
    } else if (frame->hd.type == NGHTTP2_HEADERS) {
      call->headers.clear();  // request trailers: gRPC has none; dropped
    }
    if (call->req_eof && call->req_deferred && call->backend != nullptr) {
      call->req_deferred = false;
      nghttp2_session_resume_data(call->backend->session, call->backend_sid);
      MarkDirty(call->backend);
    }
    return 0;
  }
  // Backend side.
  if (frame->hd.type != NGHTTP2_HEADERS) {
    if (frame->hd.type == NGHTTP2_DATA && end_stream) {
      call->resp_eof = true;
      if (call->resp_deferred && call->client != nullptr) {
        call->resp_deferred = false;
        nghttp2_session_resume_data(call->client->session, call->client_sid);
        MarkDirty(call->client);
      }
    }
    return 0;
  }
  if (call->client == nullptr) {
    call->headers.clear();
    return 0;
  }
  if (frame->headers.cat == NGHTTP2_HCAT_RESPONSE) {
    std::vector<nghttp2_nv> nv = ToNv(call->headers);
    call->resp_started = true;
    if (end_stream) {
      call->resp_eof = true;
      nghttp2_submit_response(call->client->session, call->client_sid, nv.data(), nv.size(),
                              nullptr);
    } else {
      nghttp2_data_provider prd;
      prd.source.ptr = call;
      prd.read_callback = CbReadResponse;
      nghttp2_submit_response(call->client->session, call->client_sid, nv.data(), nv.size(), &prd);
    }
    call->headers.clear();
    MarkDirty(call->client);
  } else {
    call->trailers = std::move(call->headers);
    call->headers.clear();
    if (end_stream) call->resp_eof = true;
    if (call->resp_deferred) {
      call->resp_deferred = false;
      nghttp2_session_resume_data(call->client->session, call->client_sid);
      MarkDirty(call->client);
    }
  }
  return 0;
}

int H2Front::Impl::OnDataChunk(Conn* c, int32_t sid, const uint8_t* data, size_t len) {
  auto* call = static_cast<Call*>(nghttp2_session_get_stream_user_data(c->session, sid));
  if (!c->is_backend) {
    if (call == nullptr || call->backend == nullptr) {
      nghttp2_session_consume(c->session, sid, len);  // nobody to forward to: drop
      return 0;
    }
    call->req.Append(data, len);
    if (call->req_deferred) {
      call->req_deferred = false;
      nghttp2_session_resume_data(call->backend->session, call->backend_sid);
    }
    MarkDirty(call->backend);
    return 0;
  }
  if (call == nullptr || call->client == nullptr) {
    nghttp2_session_consume(c->session, sid, len);
    return 0;
  }
  call->resp.Append(data, len);
  if (call->resp_deferred) {
    call->resp_deferred = false;
    nghttp2_session_resume_data(call->client->session, call->client_sid);
  }
  MarkDirty(call->client);
  return 0;
}

ssize_t H2Front::Impl::ReadRequest(Call* call, uint8_t* buf, size_t length, uint32_t* flags) {
  const size_t n = call->req.Take(buf, length);
  if (n > 0 && call->client != nullptr) {
    nghttp2_session_consume(call->client->session, call->client_sid, n);
    MarkDirty(call->client);
  }
  if (call->req.size() == 0) {
    if (call->req_eof) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
    } else if (n == 0) {
      if (call->client == nullptr) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
      call->req_deferred = true;
      return NGHTTP2_ERR_DEFERRED;
    }
  }
  return static_cast<ssize_t>(n);
}

ssize_t H2Front::Impl::ReadResponse(Call* call, uint8_t* buf, size_t length, uint32_t* flags) {
  const size_t n = call->resp.Take(buf, length);
  if (n > 0 && call->backend != nullptr) {
    nghttp2_session_consume(call->backend->session, call->backend_sid, n);
    MarkDirty(call->backend);
  }
  if (call->resp.size() == 0) {
    if (call->resp_eof) {
      if (!call->trailers.empty()) {
        std::vector<nghttp2_nv> nv = ToNv(call->trailers);
        nghttp2_submit_trailer(call->client->session, call->client_sid, nv.data(), nv.size());
        call->trailers.clear();
        *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
      } else {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
      }
    } else if (n == 0) {
      if (call->backend == nullptr) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
      call->resp_deferred = true;
      return NGHTTP2_ERR_DEFERRED;
    }
  }
  return static_cast<ssize_t>(n);
}

int H2Front::Impl::OnFrameSend(Conn* c, const nghttp2_frame* frame) {
  // The response ended while the client is still sending: end the stream (gRPC servers do too).
  if (c->is_backend || (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) == 0) return 0;
  auto* call =
      static_cast<Call*>(nghttp2_session_get_stream_user_data(c->session, frame->hd.stream_id));
  if (call != nullptr && !call->req_eof) {
    nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_NO_ERROR);
  }
  return 0;
}

int H2Front::Impl::OnStreamClose(Conn* c, int32_t sid, uint32_t code) {
  auto* call = static_cast<Call*>(nghttp2_session_get_stream_user_data(c->session, sid));
  if (call == nullptr) return 0;
  c->calls.erase(call);
  if (!c->is_backend) {
    // Bytes received but never forwarded still count against the connection window.
    if (call->req.size() > 0) nghttp2_session_consume_connection(c->session, call->req.size());
    call->req = ByteQueue();
    call->client = nullptr;
    if (call->backend != nullptr) {
      // The client is gone (cancel, deadline, or done): a backend stream still open is cancelled.
      nghttp2_submit_rst_stream(call->backend->session, NGHTTP2_FLAG_NONE, call->backend_sid,
                                NGHTTP2_CANCEL);
      MarkDirty(call->backend);
    }
  } else {
    // The response bytes still queued will not be acknowledged stream by stream any more.
    if (call->resp.size() > 0) nghttp2_session_consume_connection(c->session, call->resp.size());
    call->backend = nullptr;
    if (call->client != nullptr && !call->resp_eof) {
      if (!call->resp_started) {
        ReplyStatus(
            call, GrpcStatusOfRst(code),
            absl::StrCat("maas-gateway: backend reset the stream (HTTP/2 error ", code, ")"));
      } else {
        ResetClient(
            call, code == NGHTTP2_NO_ERROR ? static_cast<uint32_t>(NGHTTP2_INTERNAL_ERROR) : code);
      }
    }
  }
  MaybeDelete(call);
  return 0;
}

absl::StatusOr<std::unique_ptr<H2Front>> H2Front::Create(const FrontOptions& options) {
  auto impl = std::make_unique<Impl>(options);
  absl::Status s = impl->Init();
  if (!s.ok()) return s;
  return std::unique_ptr<H2Front>(new H2Front(std::move(impl)));
}

H2Front::H2Front(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
H2Front::~H2Front() = default;
int H2Front::port() const { return impl_->port(); }
void H2Front::Run() { impl_->Run(); }
void H2Front::Stop() { impl_->Stop(); }

}  // namespace maas::gateway::h2
