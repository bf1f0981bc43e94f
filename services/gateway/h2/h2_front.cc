#include "services/gateway/h2/h2_front.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/adapter/deadline_counted.h"
#include "services/gateway/h2/grpc_framing.h"
#include "services/gateway/h2/tls_handshaker.h"

namespace maas::gateway::h2 {

struct Conn;
struct Route;

namespace {

constexpr size_t kReadBuffer = 256 * 1024;
// Bytes read from one connection per round of events: a client that floods frames kept the only
// event thread reading it (1 MiB of 10-byte frames is ~30 ms of parsing), every other client
// waiting. A client's 64 KiB keeps a round short; a backend connection, which carries many
// clients' responses, reads 1 MiB.
constexpr size_t kClientRoundBytes = 64 * 1024;
constexpr size_t kBackendRoundBytes = 4 * kReadBuffer;
constexpr size_t kMaxPendingOut = 1 << 20;
// Transparent retries of one call (the backend never saw it; any method, see BackendFailed).
constexpr int kMaxTransparentRetries = 2;
// nghttp2's default max_send_header_block_length: the largest header block a session sends.
constexpr size_t kMaxHeaderBlock = 64 * 1024;
constexpr int kStatusCancelled = 1;
constexpr int kStatusUnknown = 2;
constexpr int kStatusInvalidArgument = 3;
constexpr int kStatusDeadlineExceeded = 4;
constexpr int kStatusResourceExhausted = 8;
constexpr int kStatusUnimplemented = 12;
constexpr int kStatusInternal = 13;
constexpr int kStatusUnavailable = 14;

// Whether a -bin header value is base64 that gRPC's HPACK parser decodes: the standard alphabet,
// unpadded (a length that is not 4n + 1) or padded to a multiple of 4 with one or two '='. gRPC
// fails the whole HTTP/2 connection on a value it cannot decode (every call on it), so the front
// forwards only these (a strict subset of what gRPC takes: "QQ=", say, is refused too).
bool IsGrpcBase64(absl::string_view value) {
  size_t padding = 0;
  while (padding < value.size() && value[value.size() - 1 - padding] == '=') ++padding;
  const size_t body = value.size() - padding;
  if (padding > 2 || body % 4 == 1 || (padding > 0 && value.size() % 4 != 0)) return false;
  for (char ch : value.substr(0, body)) {
    const bool alphabet = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                          (ch >= '0' && ch <= '9') || ch == '+' || ch == '/';
    if (!alphabet) return false;
  }
  return true;
}

// A grpc-timeout header value (1 to 8 digits and a unit: H, M, S, m, u, n) in nanoseconds, at most
// INT64_MAX (99999999H is ~1.6 times that); 0 when it is not one.
int64_t GrpcTimeoutNs(absl::string_view value) {
  if (value.size() < 2 || value.size() > 9) return 0;
  int64_t amount = 0;
  for (char ch : value.substr(0, value.size() - 1)) {
    if (ch < '0' || ch > '9') return 0;
    amount = amount * 10 + (ch - '0');
  }
  int64_t unit_ns = 0;
  switch (value.back()) {
    case 'H':
      unit_ns = 3'600'000'000'000;
      break;
    case 'M':
      unit_ns = 60'000'000'000;
      break;
    case 'S':
      unit_ns = 1'000'000'000;
      break;
    case 'm':
      unit_ns = 1'000'000;
      break;
    case 'u':
      unit_ns = 1'000;
      break;
    case 'n':
      unit_ns = 1;
      break;
    default:
      return 0;
  }
  const int64_t max = std::numeric_limits<int64_t>::max();
  return amount > max / unit_ns ? max : amount * unit_ns;
}

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// One header field, owned.
struct Header {
  std::string name;
  std::string value;
};

// A byte FIFO: appended at the end, taken from the front. While `retain` is set, taken bytes stay
// (a retry rewinds to the start); `base` is the absolute position of data[0].
struct ByteQueue {
  std::string data;
  size_t off = 0;
  uint64_t base = 0;
  bool retain = false;
  size_t size() const { return data.size() - off; }
  uint64_t taken_abs() const { return base + off; }
  void Append(const uint8_t* p, size_t n) {
    Compact();
    data.append(reinterpret_cast<const char*>(p), n);
  }
  size_t Take(uint8_t* out, size_t n) {
    n = std::min(n, size());
    std::memcpy(out, data.data() + off, n);
    off += n;
    Compact();
    return n;
  }
  void Compact() {
    if (retain || off == 0) return;
    if (off == data.size()) {
      base += off;
      data.clear();
      off = 0;
    } else if (off > (64 << 10) && off * 2 > data.size()) {
      data.erase(0, off);
      base += off;
      off = 0;
    }
  }
  void Rewind() { off = 0; }
  void Release() {
    retain = false;
    Compact();
  }
};

}  // namespace

// One replica of a route and its persistent connections.
struct Replica {
  Route* route = nullptr;
  sockaddr_in addr{};
  std::vector<Conn*> conns;
  size_t next = 0;
  int64_t failed_until_ns = 0;
};

struct Route {
  std::string service;
  std::string target;     // immutable (read by the resolver thread)
  std::string authority;  // TargetAuthority(target): the :authority of the calls sent
  bool dns = false;
  int64_t resolve_requested_ns = 0;
  std::vector<std::unique_ptr<Replica>> replicas;
  // Replicas gone from the last DNS answer whose connections still run calls.
  std::vector<std::unique_ptr<Replica>> retired;
  size_t next = 0;
  absl::flat_hash_set<std::string> non_idempotent;
  absl::flat_hash_set<std::string> single_response;
};

// One proxied call: a client stream paired with (the current attempt's) backend stream.
struct Call {
  explicit Call(uint32_t max_message_bytes)
      : req_scan(max_message_bytes), resp_scan(max_message_bytes) {}
  Conn* client = nullptr;  // null once the client stream is closed
  int32_t client_sid = 0;
  Conn* backend = nullptr;  // null once the backend stream is closed (or never opened)
  int32_t backend_sid = 0;
  Route* route = nullptr;
  Replica* replica = nullptr;  // of the current (or last) attempt
  int attempts = 0;
  int transparent_retries = 0;  // attempts repeated because the backend never saw the call
  // Bytes the current attempt's backend connection had serialized before this call's first frame:
  // while the connection has sent no more than that, no frame of this attempt left the gateway.
  uint64_t attempt_mark = 0;
  bool retryable = false;           // idempotent, request still fully buffered, no response yet
  std::vector<Header> headers;      // headers being received (request, response or trailers)
  size_t header_bytes = 0;          // of the block being received, as HTTP/2 counts them
  bool header_overflow = false;     // the request's block passed kMaxHeaderListBytes
  std::vector<Header> req_headers;  // kept for a retry until the response starts
  std::vector<Header> trailers;
  ByteQueue req;  // client -> backend bytes not yet handed to the backend session
  ByteQueue resp;
  MessageScanner req_scan;  // message sizes, checked against max_message_bytes
  MessageScanner resp_scan;
  uint64_t req_consumed = 0;  // absolute request bytes acknowledged to the client
  size_t retained = 0;        // bytes of `req` counted against retry_buffer_total_bytes
  bool req_eof = false;       // client sent END_STREAM
  bool req_deferred = false;
  bool resp_eof = false;     // backend sent END_STREAM (trailers or trailers-only)
  bool front_reset = false;  // the front reset the client's stream (code and message say why)
  bool resp_deferred = false;
  bool resp_started = false;  // response HEADERS submitted to the client
  // A retryable single-response call whose client has ended its request: response headers that
  // come alone are held (non-empty `held_headers`: a response block always has :status) until the
  // message or the trailers, so that a backend that dies in between (a client-streaming reactor
  // sends its headers when the request ends, then computes the answer) costs a retry, not the
  // call. Each new attempt drops them.
  bool single_response = false;
  std::vector<Header> held_headers;
  bool counted = false;  // in active_calls_
  // Call log.
  int64_t start_ns = 0;
  int64_t timeout_ns = 0;  // the client's grpc-timeout; 0 = none
  std::string method;
  std::string request_id;
  bool generated_id = false;
  int code = -1;
  std::string message;
  std::string model;
  int64_t model_version = 0;
  int64_t documents = 0;  // the backend's maas-documents / maas-samples trailers
  int64_t samples = 0;
  bool started = false;  // on_call_start ran for it
};

// The frames a client connection sends, counted from its raw bytes (nghttp2 drops some without a
// callback: unknown types, frames of closed streams, padding) against a token bucket. A frame costs
// one token, and so does each KiB of header the front decodes for it (HPACK: a 1-byte index can
// stand for a 4 KB field). The bucket starts at kInitial, holds at most kBurst and refills
// kRefillPerSecond; the connection earns its token back for DATA that reaches a call with at least
// kFreeDataBytes (a gRPC message prefix), one per DATA frame the front sends it and per KiB of
// data either way (a client's WINDOW_UPDATEs and BDP PINGs follow what it receives), and
// kPerStream per call it opens. Frames that carry nothing (WINDOW_UPDATE +1, PING ACKs, unknown
// types, empty, padding-only or 1-byte DATA, DATA of reset streams: hundreds of millions in 10 s
// took 95 % of the front's thread) and header bombs run it dry; gRPC traffic, however many calls
// or small messages, does not.
class FrameMeter {
 public:
  static constexpr double kBurst = 10000;
  static constexpr double kInitial = 1000;  // a new connection's: reconnecting earns no burst
  static constexpr double kRefillPerSecond = 1000;
  static constexpr double kPerStream = 10;
  // DATA that reaches a call with this many bytes of data or more (a gRPC message prefix) is free;
  // smaller pays the rest of its token.
  static constexpr double kFreeDataBytes = 5;

  // Counts the frames of the next bytes the client sent, up to and including the first frame
  // header that completes in `n` bytes (charged then), and returns how many bytes that is (all `n`
  // when none completes): the caller hands those to nghttp2, whose callbacks credit what the
  // frames carried, then asks ok(), so a frame is judged after what came before it.
  size_t Feed(const uint8_t* p, size_t n, int64_t now_ns) {
    if (last_ns_ != 0) Credit(static_cast<double>(now_ns - last_ns_) * 1e-9 * kRefillPerSecond);
    last_ns_ = now_ns;
    const size_t total = n;
    while (n > 0) {
      if (skip_ > 0) {  // the client preface, then each frame's payload
        const size_t k = std::min<uint64_t>(skip_, n);
        skip_ -= k;
        p += k;
        n -= k;
        continue;
      }
      const size_t k = std::min(n, sizeof(header_) - header_len_);
      std::memcpy(header_ + header_len_, p, k);
      header_len_ += k;
      p += k;
      n -= k;
      if (header_len_ < sizeof(header_)) break;
      header_len_ = 0;
      skip_ = (uint64_t{header_[0]} << 16) | (uint64_t{header_[1]} << 8) | header_[2];
      tokens_ -= 1;
      // A header block's own bytes pay for as much of its decoded header (charged per KiB as it
      // is decoded): what is charged is what HPACK's references add.
      if (header_[3] == NGHTTP2_HEADERS || header_[3] == NGHTTP2_CONTINUATION) {
        Credit(static_cast<double>(skip_) / 1024);
      }
      return total - n;
    }
    return total;
  }
  // Whether the client has not spent more than it had.
  bool ok() const { return tokens_ >= 0; }
  void Credit(double tokens) { tokens_ = std::min(kBurst, tokens_ + tokens); }
  // Work the client made the front do beyond its frames (e.g. decoded header bytes, per KiB);
  // false once it spent more than it had.
  bool Charge(double tokens) {
    tokens_ -= tokens;
    return tokens_ >= 0;
  }
  // The front sends the client a DATA frame of `bytes`.
  void Sent(size_t bytes) { Credit(1 + static_cast<double>(bytes) / 1024); }
  // `bytes` of data the client sent reach a call (nghttp2 reports no padding, nor DATA of closed
  // streams): traffic, not a flood.
  void Forwarded(size_t bytes) {
    const double b = static_cast<double>(bytes);
    Credit(std::min(1.0, b / kFreeDataBytes) + b / 1024);
  }

 private:
  uint64_t skip_ = 24;  // NGHTTP2_CLIENT_MAGIC_LEN
  uint8_t header_[9] = {};
  size_t header_len_ = 0;
  double tokens_ = kInitial;
  int64_t last_ns_ = 0;
};

struct Conn {
  H2Front::Impl* front = nullptr;
  int fd = -1;
  bool is_backend = false;
  Replica* replica = nullptr;
  nghttp2_session* session = nullptr;
  std::string out;
  size_t out_off = 0;
  uint64_t serialized = 0;            // bytes appended to `out` since the connection opened
  uint64_t sent = 0;                  // bytes of them the kernel accepted
  SSL* ssl = nullptr;                 // TLS client connections
  bool tls_write_wants_read = false;  // SSL_write waits for the peer (handshake): no EPOLLOUT
  bool connecting = false;
  bool received = false;  // a backend connection got bytes (it did connect)
  bool epollout = false;
  bool dirty = false;
  bool dead = false;
  bool goaway = false;
  int64_t created_ns = 0;
  int64_t goaway_ns = 0;
  int64_t last_recv_ns = 0;
  int64_t ping_sent_ns = 0;   // 0 = no keepalive PING outstanding
  int64_t idle_since_ns = 0;  // a client connection: when its last call ended (or it opened)
  bool settled = false;       // a client connection sent its SETTINGS (handshake done)
  bool read_again = false;    // in read_again_: its last read round stopped at the cap
  FrameMeter meter;           // a client connection's frames against what they carry
  std::string peer;
  absl::flat_hash_set<Call*> calls;
};

namespace {

// Values that differ on every call: indexing them in the peer's HPACK table only makes the peer
// insert and evict an entry per call (gRPC's own encoder sends them without indexing too).
bool UniquePerCall(const std::string& name) {
  return name == "x-request-id" || name == "grpc-message";
}

// Fills `nv` (cleared first; its capacity is reused from call to call) with views of `headers`.
void ToNv(const std::vector<Header>& headers, std::vector<nghttp2_nv>* nv) {
  nv->clear();
  for (const Header& h : headers) {
    nv->push_back(nghttp2_nv{
        reinterpret_cast<uint8_t*>(const_cast<char*>(h.name.data())),
        reinterpret_cast<uint8_t*>(const_cast<char*>(h.value.data())), h.name.size(),
        h.value.size(), UniquePerCall(h.name) ? NGHTTP2_NV_FLAG_NO_INDEX : NGHTTP2_NV_FLAG_NONE});
  }
}

// gRPC's mapping of an HTTP/2 RST_STREAM code to a status code (doc/PROTOCOL-HTTP2.md).
int GrpcStatusOfRst(uint32_t code) {
  switch (code) {
    case NGHTTP2_REFUSED_STREAM:
      return kStatusUnavailable;
    case NGHTTP2_CANCEL:
      return kStatusCancelled;
    case NGHTTP2_ENHANCE_YOUR_CALM:
      return 8;
    case NGHTTP2_INADEQUATE_SECURITY:
      return 7;
    default:
      return kStatusInternal;
  }
}

// grpc-message is percent-encoded (gRPC's PROTOCOL-HTTP2.md): everything outside 0x20..0x7e and
// '%'.
std::string PercentEncode(absl::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c <= 0x7e && c != '%') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppend(&out, "%", absl::Hex(c, absl::kZeroPad2));
    }
  }
  return out;
}

std::string PercentDecode(absl::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    int v = 0;
    if (s[i] == '%' && i + 2 < s.size() && absl::SimpleHexAtoi(s.substr(i + 1, 2), &v)) {
      out.push_back(static_cast<char>(v));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// The method a liveness or readiness probe calls.
constexpr absl::string_view kHealthCheckPath = "/grpc.health.v1.Health/Check";
// Header fields a gRPC call's header block rarely exceeds (request: ~10, response: ~5).
constexpr size_t kHeadersReserved = 16;
// Largest header block (name + value + 32 per field, RFC 9113 SETTINGS_MAX_HEADER_LIST_SIZE) the
// front keeps for one stream, advertised to clients: HPACK lets a 1-byte index repeat a 4 KB
// field, so without it 128 KB on the wire became ~500 MB of stored headers. 64 KiB, as nghttpx;
// gRPC servers take 8-16 KiB of metadata.
constexpr size_t kMaxHeaderListBytes = 64 << 10;

void SetNoDelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

}  // namespace

absl::StatusOr<std::vector<ReplicaAddress>> ResolveTarget(absl::string_view target) {
  std::vector<ReplicaAddress> out;
  auto parse_hostport = [](absl::string_view hp, std::string* host, int* port) {
    const size_t colon = hp.rfind(':');
    if (colon == absl::string_view::npos || colon == 0) return false;
    *host = std::string(hp.substr(0, colon));
    return absl::SimpleAtoi(hp.substr(colon + 1), port) && *port >= 1 && *port <= 65535;
  };
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("backend target '", target, "': ", why,
                     " (expected ipv4:<a>:<port>[,<b>:<port>...], dns:///<host>:<port> or "
                     "<host>:<port>)"));
  };
  const bool ipv4 = absl::ConsumePrefix(&target, "ipv4:");
  const bool dns =
      !ipv4 && (absl::ConsumePrefix(&target, "dns:///") || absl::ConsumePrefix(&target, "dns:"));
  if (target.empty()) return bad("no address");
  std::vector<absl::string_view> parts =
      ipv4 ? absl::StrSplit(target, ',') : std::vector<absl::string_view>{target};
  for (absl::string_view part : parts) {
    std::string host;
    int port = 0;
    if (!parse_hostport(part, &host, &port)) return bad(absl::StrCat("bad address '", part, "'"));
    in_addr a{};
    if (inet_pton(AF_INET, host.c_str(), &a) == 1) {
      out.push_back({ntohl(a.s_addr), port});
      continue;
    }
    if (ipv4) return bad(absl::StrCat("'", host, "' is not an IPv4 address"));
    (void)dns;
    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
    if (rc != 0 || res == nullptr) {
      return absl::UnavailableError(absl::StrCat("backend target '", target, "': cannot resolve ",
                                                 host, ": ", gai_strerror(rc)));
    }
    for (addrinfo* p = res; p != nullptr; p = p->ai_next) {
      const ReplicaAddress r{ntohl(reinterpret_cast<sockaddr_in*>(p->ai_addr)->sin_addr.s_addr),
                             port};
      if (std::find(out.begin(), out.end(), r) == out.end()) out.push_back(r);
    }
    freeaddrinfo(res);
  }
  return out;
}

bool TargetNeedsDns(absl::string_view target) {
  if (absl::ConsumePrefix(&target, "ipv4:")) return false;
  if (!absl::ConsumePrefix(&target, "dns:///")) absl::ConsumePrefix(&target, "dns:");
  const size_t colon = target.rfind(':');
  in_addr a{};
  return inet_pton(AF_INET, std::string(target.substr(0, colon)).c_str(), &a) != 1;
}

std::string TargetAuthority(absl::string_view target) {
  if (absl::ConsumePrefix(&target, "ipv4:")) return std::string(target.substr(0, target.find(',')));
  if (!absl::ConsumePrefix(&target, "dns:///")) absl::ConsumePrefix(&target, "dns:");
  return std::string(target);
}

class H2Front::Impl {
 public:
  explicit Impl(FrontOptions options) : options_(std::move(options)) {}
  ~Impl();

  absl::Status Init();
  void Run();
  void Shutdown(absl::Duration grace) {
    {
      absl::MutexLock lock(&mu_);
      if (shutdown_requested_) return;
      shutdown_requested_ = true;
      shutdown_grace_ = grace;
    }
    Wake();
  }
  void Wake() {
    uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
  }
  int port() const { return port_; }
  int active_calls() const { return active_calls_.load(std::memory_order_relaxed); }

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
  absl::StatusOr<std::unique_ptr<Route>> MakeRoute(const FrontRoute& r);
  void Accept();
  // A connection on `fd`; a client's with `ssl` when its TLS handshake is done (created_ns: when
  // it was accepted; 0 = now).
  Conn* NewConn(int fd, bool backend, Replica* replica, SSL* ssl = nullptr, int64_t created_ns = 0);
  // Client connections whose TLS handshake completed on handshaker_'s thread join the loop.
  void AdoptHandshaken();
  Replica* PickReplica(Route* route, const Replica* avoid);
  Conn* ConnectionTo(Replica* replica);
  absl::Status InitTls();
  // Reads at most `max` bytes (<= kReadBuffer) into rbuf_: their count, -1 when none are ready,
  // 0 at the end, -2 on an error.
  ssize_t Read(Conn* c, size_t max);
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
  void Tick();
  void BeginDrain();
  void OnWake();
  void RequestResolve(Route* route);
  void ResolverLoop();
  void Reconcile(Route* route, const std::vector<ReplicaAddress>& addresses);
  std::unique_ptr<Replica> MakeReplica(Route* route, const ReplicaAddress& a);
  void Goaway(Conn* c);
  void StartCall(Call* call);
  bool Attempt(Call* call, const Replica* avoid);
  void DetachBackend(Call* call, bool reset);
  void BackendFailed(Call* call, int code, const std::string& message, bool unprocessed);
  void FailCall(Call* call, int code, const std::string& message);
  void ReplyStatus(Call* call, int code, absl::string_view message);
  // Answers the client with `headers` ending the stream (gRPC's trailers-only form), split in two
  // blocks when the front generated the call's x-request-id.
  void SubmitEndedResponse(Call* call, const std::vector<Header>& headers);
  void ResetClient(Call* call, uint32_t code);
  void NoteStatus(Call* call, const std::vector<Header>& headers);
  bool RetryUnavailable(Call* call, const std::vector<Header>& headers);
  void StartResponse(Call* call);
  void CommitResponse(Call* call, std::vector<Header> headers);
  void CommitHeldResponse(Call* call) {
    if (call->held_headers.empty()) return;
    CommitResponse(call, std::exchange(call->held_headers, {}));
  }
  void ClientClosed(Call* call, uint32_t code);
  void DeliverEndedCalls();
  void MaybeDelete(Call* call) {
    if (call->client == nullptr && call->backend == nullptr) {
      ForgetRetained(call);
      delete call;
    }
  }
  // Slots of max_concurrent_calls only the default route's calls may take: 1/16 of them, at
  // most 64 (none below 16).
  int DefaultRouteReserve() const { return std::min(64, options_.max_concurrent_calls / 16); }
  // Of those, the slots only health checks (unary Check) may take: other default-route calls
  // (Watch, ListModels) held open could fill the rest. 1/64, at most 16.
  int HealthCheckReserve() const { return std::min(16, options_.max_concurrent_calls / 64); }
  // The call's request bytes no longer count against retry_buffer_total_bytes.
  void ForgetRetained(Call* call) {
    retained_bytes_ -= static_cast<int64_t>(call->retained);
    call->retained = 0;
  }
  // The call will not be retried: its bytes are not kept once forwarded.
  void StopRetaining(Call* call) {
    call->req.Release();
    ForgetRetained(call);
  }
  std::string UnavailableMessage(const Route* route) const {
    return absl::StrCat("no backend of route ", route->service,
                        " is reachable through the gateway right now; retry later "
                        "(maas.gateway.v1.Gateway/GetBackends shows each route's health)");
  }

  FrontOptions options_;
  int listen_fd_ = -1;
  // Bounds the HPACK size of a request's headers, as the sessions measure it against the 64 KiB
  // they send at most in one header block (nghttp2's max_send_header_block_length).
  nghttp2_hd_deflater* header_bound_ = nullptr;
  // While set, the listening socket is out of epoll until then (accept failed for want of file
  // descriptors: level-triggered, it would wake the loop at once, forever).
  int64_t accept_paused_until_ns_ = 0;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  int port_ = 0;
  std::vector<std::unique_ptr<Route>> routes_;
  std::unique_ptr<Route> default_route_;
  absl::flat_hash_map<std::string, Route*> by_service_;
  nghttp2_session_callbacks* callbacks_ = nullptr;
  nghttp2_option* option_ = nullptr;
  SSL_CTX* tls_ctx_ = nullptr;  // null: plaintext
  // With TLS: runs the client connections' handshakes off this thread.
  std::unique_ptr<TlsHandshaker> handshaker_;
  std::vector<Conn*> dirty_;
  // Connections whose reads stopped at their round budget with bytes possibly left in OpenSSL,
  // which epoll would not report: read again next round.
  std::vector<Conn*> read_again_;
  int handshaking_ = 0;         // client connections not yet settled
  int64_t retained_bytes_ = 0;  // request bytes kept for retries, over all calls
  std::vector<Conn*> graveyard_;
  // Calls that ended this round, reported to on_call_end after the round's output went out.
  struct EndedCall {
    std::string method;
    int code = 0;
    std::string message;
    absl::Duration duration;
    std::string peer;
    std::string model;
    int64_t model_version = 0;
    int64_t documents = 0;
    int64_t samples = 0;
    std::string request_id;
    bool default_route = false;
    bool started = false;
  };
  std::vector<EndedCall> ended_;
  std::vector<nghttp2_nv> nv_;  // scratch of ToNv: the header views of one submit
  size_t ended_count_ = 0;
  absl::flat_hash_set<Conn*> conns_;
  std::vector<uint8_t> rbuf_ = std::vector<uint8_t>(kReadBuffer);
  std::atomic<int> active_calls_{0};
  uint64_t next_request_id_ = 1;
  int client_conns_ = 0;
  bool draining_ = false;
  // The drain's deadline passed: the front closes the client connections it still has.
  bool grace_over_ = false;
  int64_t next_tick_ns_ = 0;
  int64_t drain_deadline_ns_ = 0;
  absl::Mutex mu_;
  bool shutdown_requested_ ABSL_GUARDED_BY(mu_) = false;
  absl::Duration shutdown_grace_ ABSL_GUARDED_BY(mu_);
  // The resolver thread (only when some route has a DNS target).
  std::thread resolver_;
  bool stop_resolver_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Route*> resolve_requests_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<Route*, std::vector<ReplicaAddress>>> resolved_ ABSL_GUARDED_BY(mu_);
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

std::unique_ptr<Replica> H2Front::Impl::MakeReplica(Route* route, const ReplicaAddress& a) {
  auto replica = std::make_unique<Replica>();
  replica->route = route;
  replica->addr.sin_family = AF_INET;
  replica->addr.sin_addr.s_addr = htonl(a.ipv4);
  replica->addr.sin_port = htons(static_cast<uint16_t>(a.port));
  replica->conns.assign(options_.backend_connections, nullptr);
  return replica;
}

absl::StatusOr<std::unique_ptr<Route>> H2Front::Impl::MakeRoute(const FrontRoute& r) {
  absl::StatusOr<std::vector<ReplicaAddress>> addresses = ResolveTarget(r.target);
  // A name that does not resolve yet is not an error: the resolver keeps trying.
  if (!addresses.ok() && !(absl::IsUnavailable(addresses.status()) && TargetNeedsDns(r.target))) {
    return addresses.status();
  }
  auto route = std::make_unique<Route>();
  route->service = r.service;
  route->target = r.target;
  route->authority = TargetAuthority(r.target);
  route->dns = TargetNeedsDns(r.target);
  for (const std::string& m : r.non_idempotent_methods) route->non_idempotent.insert(m);
  for (const std::string& m : r.single_response_methods) route->single_response.insert(m);
  if (addresses.ok()) {
    for (const ReplicaAddress& a : *addresses) {
      route->replicas.push_back(MakeReplica(route.get(), a));
    }
  }
  return route;
}

void H2Front::Impl::RequestResolve(Route* route) {
  if (!route->dns) return;
  const int64_t now = NowNs();
  if (now - route->resolve_requested_ns < 1000000000) return;
  route->resolve_requested_ns = now;
  absl::MutexLock lock(&mu_);
  resolve_requests_.push_back(route);
}

void H2Front::Impl::ResolverLoop() {
  std::vector<Route*> dns_routes;
  for (auto& r : routes_) {
    if (r->dns) dns_routes.push_back(r.get());
  }
  if (default_route_ != nullptr && default_route_->dns) dns_routes.push_back(default_route_.get());
  for (;;) {
    std::vector<Route*> todo;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return stop_resolver_ || !resolve_requests_.empty();
      };
      const bool woken = mu_.AwaitWithTimeout(absl::Condition(&ready),
                                              absl::Milliseconds(options_.dns_refresh_ms));
      if (stop_resolver_) return;
      todo = woken ? std::move(resolve_requests_) : dns_routes;
      resolve_requests_.clear();
    }
    for (Route* route : todo) {
      absl::StatusOr<std::vector<ReplicaAddress>> addresses = ResolveTarget(route->target);
      if (!addresses.ok() || addresses->empty()) continue;  // keep the last good answer
      absl::MutexLock lock(&mu_);
      resolved_.emplace_back(route, *std::move(addresses));
    }
    Wake();
  }
}

void H2Front::Impl::Reconcile(Route* route, const std::vector<ReplicaAddress>& addresses) {
  std::vector<std::unique_ptr<Replica>> next;
  for (const ReplicaAddress& a : addresses) {
    std::unique_ptr<Replica> kept;
    for (auto& r : route->replicas) {
      if (r != nullptr && ntohl(r->addr.sin_addr.s_addr) == a.ipv4 &&
          ntohs(r->addr.sin_port) == a.port) {
        kept = std::move(r);
        break;
      }
    }
    next.push_back(kept != nullptr ? std::move(kept) : MakeReplica(route, a));
  }
  for (auto& r : route->replicas) {
    if (r != nullptr) route->retired.push_back(std::move(r));
  }
  route->replicas = std::move(next);
  // Retired replicas: idle connections close now, busy ones when a later answer finds them idle.
  std::vector<std::unique_ptr<Replica>> still;
  for (auto& r : route->retired) {
    bool busy = false;
    for (Conn* c : std::vector<Conn*>(r->conns)) {
      if (c == nullptr) continue;
      if (c->calls.empty()) {
        Close(c);
      } else {
        busy = true;
      }
    }
    if (busy) still.push_back(std::move(r));
  }
  route->retired = std::move(still);
}

void H2Front::Impl::OnWake() {
  uint64_t v;
  (void)!read(wake_fd_, &v, sizeof(v));
  std::vector<std::pair<Route*, std::vector<ReplicaAddress>>> resolved;
  bool shutdown;
  {
    absl::MutexLock lock(&mu_);
    resolved.swap(resolved_);
    shutdown = shutdown_requested_;
  }
  for (const auto& [route, addresses] : resolved) Reconcile(route, addresses);
  if (handshaker_ != nullptr) AdoptHandshaken();
  if (shutdown && !draining_) BeginDrain();
}

void H2Front::Impl::AdoptHandshaken() {
  for (const TlsHandshaker::Done& d : handshaker_->Take()) {
    Conn* c = NewConn(d.fd, false, nullptr, d.ssl, d.accepted_ns);
    // The client's first bytes (its preface) may already sit decrypted in OpenSSL, which epoll
    // does not report.
    c->read_again = true;
    read_again_.push_back(c);
    // Draining: like every client connected when the drain began, it gets GOAWAY (no call of it
    // was processed: the client retries elsewhere), not a reset.
    if (draining_) Goaway(c);
  }
}

namespace {

// INVALID_ARGUMENT naming the first option of `o` out of its range (documented in FrontOptions).
absl::Status ValidateOptions(const FrontOptions& o) {
  struct Range {
    const char* name;
    int64_t value;
    int64_t min;
    int64_t max;
  };
  constexpr int64_t kIntMax = 0x7fffffff;
  const Range ranges[] = {
      {"backend_connections", o.backend_connections, 1, kIntMax},
      {"max_streams_per_connection", o.max_streams_per_connection, 1, kIntMax},
      {"max_concurrent_calls", o.max_concurrent_calls, 1, kIntMax},
      {"max_message_bytes", o.max_message_bytes, 1, 0xffffffff},
      {"stream_window_bytes", o.stream_window_bytes, 65535, kIntMax},
      {"connection_window_bytes", o.connection_window_bytes, o.stream_window_bytes, kIntMax},
      {"retry_max_attempts", o.retry_max_attempts, 1, 5},
      {"retry_buffer_bytes", o.retry_buffer_bytes, 0, kIntMax},
      {"retry_buffer_total_bytes", o.retry_buffer_total_bytes, 0, int64_t{1} << 62},
      {"keepalive_time_ms", o.keepalive_time_ms, 0, kIntMax},
      {"keepalive_timeout_ms", o.keepalive_timeout_ms, 1, kIntMax},
      {"dns_refresh_ms", o.dns_refresh_ms, 100, kIntMax},
      {"handshake_timeout_ms", o.handshake_timeout_ms, 1, kIntMax},
      {"idle_timeout_ms", o.idle_timeout_ms, 0, kIntMax},
      {"reconnect_backoff_ms", o.reconnect_backoff_ms, 1, kIntMax},
      {"max_connection_age_ms", o.max_connection_age_ms, 0, kIntMax},
      {"client_reset_burst", o.client_reset_burst, 1, kIntMax},
      {"client_reset_rate_per_s", o.client_reset_rate_per_s, 1, kIntMax},
  };
  for (const Range& r : ranges) {
    if (r.value < r.min || r.value > r.max) {
      return absl::InvalidArgumentError(absl::StrCat("h2 front option ", r.name, " is ", r.value,
                                                     "; it must be in [", r.min, ", ", r.max, "]"));
    }
  }
  if (o.max_connection_age_grace < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("h2 front option max_connection_age_grace is negative");
  }
  return absl::OkStatus();
}

}  // namespace

namespace {

// The last OpenSSL error, for messages.
std::string OpenSslError() {
  const unsigned long e = ERR_get_error();  // NOLINT(runtime/int): OpenSSL's type
  ERR_clear_error();
  if (e == 0) return "unknown error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

// ALPN: "h2" when the client offers it (gRPC clients do and insist on it), else the handshake
// fails.
int SelectAlpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
               unsigned int inlen, void*) {
  static const unsigned char kH2[] = {2, 'h', '2'};
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, kH2, sizeof(kH2), in, inlen) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

absl::Status H2Front::Impl::InitTls() {
  const FrontOptions& o = options_;
  if (o.tls_cert_file.empty() != o.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "tls_cert_file and tls_key_file must be given together (both empty = plaintext)");
  }
  if (o.tls_cert_file.empty()) {
    if (!o.tls_client_ca_file.empty()) {
      return absl::InvalidArgumentError(
          "tls_client_ca_file (mutual TLS) needs tls_cert_file and tls_key_file");
    }
    return absl::OkStatus();
  }
  tls_ctx_ = SSL_CTX_new(TLS_server_method());
  if (tls_ctx_ == nullptr) return absl::InternalError("SSL_CTX_new: " + OpenSslError());
  SSL_CTX_set_min_proto_version(tls_ctx_, TLS1_2_VERSION);
  SSL_CTX_set_options(tls_ctx_, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(tls_ctx_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                 SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_use_certificate_chain_file(tls_ctx_, o.tls_cert_file.c_str()) != 1) {
    return absl::FailedPreconditionError(absl::StrCat("tls_cert_file ", o.tls_cert_file,
                                                      " holds no readable PEM certificate (",
                                                      OpenSslError(), ")"));
  }
  const auto key_mismatch = [&o] {
    return absl::FailedPreconditionError(absl::StrCat(
        "tls_key_file ", o.tls_key_file, " is not the private key of the certificate in ",
        "tls_cert_file ", o.tls_cert_file, "; give the key the certificate was issued for"));
  };
  if (SSL_CTX_use_PrivateKey_file(tls_ctx_, o.tls_key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    const std::string why = OpenSslError();
    if (why.find("key values mismatch") != std::string::npos) return key_mismatch();
    return absl::FailedPreconditionError(
        absl::StrCat("tls_key_file ", o.tls_key_file,
                     " holds no readable (unencrypted) PEM private key (", why, ")"));
  }
  if (SSL_CTX_check_private_key(tls_ctx_) != 1) {
    ERR_clear_error();
    return key_mismatch();
  }
  if (!o.tls_client_ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(tls_ctx_, o.tls_client_ca_file.c_str(), nullptr) != 1) {
      return absl::FailedPreconditionError(absl::StrCat("tls_client_ca_file ", o.tls_client_ca_file,
                                                        " holds no readable PEM certificate (",
                                                        OpenSslError(), ")"));
    }
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(o.tls_client_ca_file.c_str());
    if (names != nullptr) SSL_CTX_set_client_CA_list(tls_ctx_, names);
    SSL_CTX_set_verify(tls_ctx_, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    // Sessions of a context that verifies clients are resumed only within this context's id:
    // without one OpenSSL answered every resumption (curl, Envoy, Go's session cache) with a fatal
    // internal_error alert.
    static const unsigned char kSessionContext[] = "maas-h2-front";
    SSL_CTX_set_session_id_context(tls_ctx_, kSessionContext, sizeof(kSessionContext) - 1);
  }
  SSL_CTX_set_alpn_select_cb(tls_ctx_, SelectAlpn, nullptr);
  ERR_clear_error();
  return absl::OkStatus();
}

absl::Status H2Front::Impl::Init() {
  if (absl::Status s = ValidateOptions(options_); !s.ok()) return s;
  if (absl::Status s = InitTls(); !s.ok()) return s;
  for (const FrontRoute& r : options_.routes) {
    absl::StatusOr<std::unique_ptr<Route>> route = MakeRoute(r);
    if (!route.ok()) return route.status();
    if (!by_service_.emplace(r.service, route->get()).second) {
      return absl::InvalidArgumentError(absl::StrCat("two routes for service ", r.service));
    }
    routes_.push_back(*std::move(route));
  }
  if (!options_.default_target.empty()) {
    absl::StatusOr<std::unique_ptr<Route>> route =
        MakeRoute(FrontRoute{"(default)", options_.default_target, {}, {}});
    if (!route.ok()) return route.status();
    default_route_ = *std::move(route);
  }
  callbacks_ = MakeCallbacks();
  nghttp2_hd_deflate_new(&header_bound_, 4096);
  nghttp2_option_new(&option_);
  nghttp2_option_set_no_auto_window_update(option_, 1);
  nghttp2_option_set_stream_reset_rate_limit(option_, options_.client_reset_burst,
                                             options_.client_reset_rate_per_s);
  // Header values pass as gRPC passes them: RFC 9113 forbids leading and trailing whitespace, but
  // gRPC servers and clients accept it (e.g. "authorization: Bearer " must reach the backend and be
  // answered PERMISSION_DENIED there, not reset with PROTOCOL_ERROR by the front).
  nghttp2_option_set_no_rfc9113_leading_and_trailing_ws_validation(option_, 1);
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
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
  ev.data.ptr = &wake_fd_;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
  if (tls_ctx_ != nullptr) {
    absl::StatusOr<std::unique_ptr<TlsHandshaker>> handshaker = TlsHandshaker::Start(
        tls_ctx_, absl::Milliseconds(options_.handshake_timeout_ms), [this] { Wake(); },
        options_.on_tls_handshake_step);
    if (!handshaker.ok()) return handshaker.status();
    handshaker_ = *std::move(handshaker);
  }
  bool dns = default_route_ != nullptr && default_route_->dns;
  for (const auto& r : routes_) dns = dns || r->dns;
  if (dns) resolver_ = std::thread([this] { ResolverLoop(); });
  return absl::OkStatus();
}

H2Front::Impl::~Impl() {
  handshaker_.reset();  // its thread wakes this loop and uses tls_ctx_
  if (resolver_.joinable()) {
    {
      absl::MutexLock lock(&mu_);
      stop_resolver_ = true;
    }
    resolver_.join();
  }
  for (Conn* c : std::vector<Conn*>(conns_.begin(), conns_.end())) Close(c);
  for (Conn* c : graveyard_) delete c;
  if (listen_fd_ >= 0) close(listen_fd_);
  if (epoll_fd_ >= 0) close(epoll_fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
  if (callbacks_ != nullptr) nghttp2_session_callbacks_del(callbacks_);
  if (option_ != nullptr) nghttp2_option_del(option_);
  if (header_bound_ != nullptr) nghttp2_hd_deflate_del(header_bound_);
  if (tls_ctx_ != nullptr) SSL_CTX_free(tls_ctx_);
}

Conn* H2Front::Impl::NewConn(int fd, bool backend, Replica* replica, SSL* ssl, int64_t created_ns) {
  auto* c = new Conn;
  c->front = this;
  c->fd = fd;
  c->is_backend = backend;
  c->replica = replica;
  c->ssl = ssl;
  c->created_ns = created_ns != 0 ? created_ns : NowNs();
  c->last_recv_ns = c->created_ns;
  c->idle_since_ns = c->created_ns;
  if (backend) {
    nghttp2_session_client_new2(&c->session, callbacks_, c, option_);
  } else {
    nghttp2_session_server_new2(&c->session, callbacks_, c, option_);
    ++client_conns_;
    ++handshaking_;
    sockaddr_in peer{};
    socklen_t len = sizeof(peer);
    char ip[INET_ADDRSTRLEN] = "?";
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) == 0) {
      inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof(ip));
    }
    c->peer = absl::StrCat("ipv4:", ip, ":", ntohs(peer.sin_port));
  }
  nghttp2_settings_entry iv[4];
  size_t n = 0;
  iv[n++] = {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<uint32_t>(kMaxHeaderListBytes)};
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

Replica* H2Front::Impl::PickReplica(Route* route, const Replica* avoid) {
  const size_t n = route->replicas.size();
  if (n == 0) {
    RequestResolve(route);
    return nullptr;
  }
  const int64_t now = NowNs();
  for (size_t k = 0; k < n; ++k) {
    Replica* r = route->replicas[(route->next + k) % n].get();
    if ((r == avoid && n > 1) || r->failed_until_ns > now) continue;
    route->next = (route->next + k + 1) % n;
    return r;
  }
  // Every replica failed recently: ask DNS again, and try the one that is not `avoid` anyway.
  RequestResolve(route);
  Replica* r = route->replicas[route->next % n].get();
  if (r == avoid && n > 1) r = route->replicas[(route->next + 1) % n].get();
  route->next = (route->next + 1) % n;
  return r;
}

Conn* H2Front::Impl::ConnectionTo(Replica* replica) {
  const size_t i = replica->next++ % replica->conns.size();
  Conn*& slot = replica->conns[i];
  if (slot != nullptr && !slot->dead) {
    if (nghttp2_session_check_request_allowed(slot->session)) return slot;
    slot = nullptr;  // GOAWAY received: it finishes its streams, new calls get a new connection
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return nullptr;
  SetNoDelay(fd);
  bool connecting = false;
  if (connect(fd, reinterpret_cast<sockaddr*>(&replica->addr), sizeof(replica->addr)) != 0) {
    if (errno != EINPROGRESS) {
      close(fd);
      replica->failed_until_ns = NowNs() + int64_t{options_.reconnect_backoff_ms} * 1000000;
      return nullptr;
    }
    connecting = true;
  }
  slot = NewConn(fd, true, replica);
  slot->connecting = connecting;
  if (connecting) SetEpollOut(slot, true);
  return slot;
}

void H2Front::Impl::Accept() {
  for (;;) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // The pending connection stays in the backlog; try again in 100 ms, as gRPC does.
        epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listen_fd_, nullptr);
        accept_paused_until_ns_ = NowNs() + 100'000'000;
      }
      return;
    }
    SetNoDelay(fd);
    if (handshaker_ != nullptr) {
      handshaker_->Add(fd, NowNs());  // joins the loop once its TLS handshake is done
    } else {
      NewConn(fd, false, nullptr);
    }
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

void H2Front::Impl::Goaway(Conn* c) {
  if (c->goaway || c->dead) return;
  c->goaway = true;
  c->goaway_ns = NowNs();
  nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(c->session), NGHTTP2_NO_ERROR,
                        nullptr, 0);
  MarkDirty(c);
}

void H2Front::Impl::BeginDrain() {
  absl::Duration grace;
  {
    absl::MutexLock lock(&mu_);
    grace = shutdown_grace_;
  }
  draining_ = true;
  drain_deadline_ns_ = NowNs() + absl::ToInt64Nanoseconds(grace);
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listen_fd_, nullptr);
  close(listen_fd_);
  listen_fd_ = -1;
  for (Conn* c : conns_) {
    if (!c->is_backend) Goaway(c);
  }
}

void H2Front::Impl::Tick() {
  const int64_t now = NowNs();
  if (options_.max_connection_age_ms > 0) {
    const int64_t age = int64_t{options_.max_connection_age_ms} * 1000000;
    const int64_t grace = absl::ToInt64Nanoseconds(options_.max_connection_age_grace);
    std::vector<Conn*> expired;
    for (Conn* c : conns_) {
      if (c->is_backend) continue;
      if (!c->goaway && now - c->created_ns >= age) Goaway(c);
      // After the GOAWAY no new call can come: close once the calls finished (a second for the
      // GOAWAY to reach the client first), or at the end of the grace.
      if (c->goaway && (now - c->goaway_ns >= grace ||
                        (c->calls.empty() && now - c->goaway_ns >= 1'000'000'000))) {
        expired.push_back(c);
      }
    }
    for (Conn* c : expired) Close(c);
  }
  if (options_.keepalive_time_ms > 0) {
    const int64_t idle = int64_t{options_.keepalive_time_ms} * 1000000;
    const int64_t timeout = int64_t{options_.keepalive_timeout_ms} * 1000000;
    std::vector<Conn*> silent;
    for (Conn* c : conns_) {
      if (!c->is_backend || c->connecting) continue;
      if (c->ping_sent_ns != 0 && c->last_recv_ns > c->ping_sent_ns) c->ping_sent_ns = 0;
      if (c->ping_sent_ns != 0) {
        if (now - c->ping_sent_ns >= timeout) silent.push_back(c);
      } else if (!c->calls.empty() && now - c->last_recv_ns >= idle) {
        nghttp2_submit_ping(c->session, NGHTTP2_FLAG_NONE, nullptr);
        c->ping_sent_ns = now;
        MarkDirty(c);
      }
    }
    for (Conn* c : silent) Close(c);
  }
  if (client_conns_ > 0) {
    // Client connections that never finish a handshake or a header block are closed; idle ones
    // get GOAWAY, and are closed a second later (a call may have crossed it).
    const int64_t limit = int64_t{options_.handshake_timeout_ms} * 1000000;
    const int64_t idle = int64_t{options_.idle_timeout_ms} * 1000000;
    std::vector<Conn*> closing;
    for (Conn* c : conns_) {
      if (c->is_backend) continue;
      if (!c->settled) {
        if (now - c->created_ns >= limit) closing.push_back(c);
        continue;
      }
      const bool stuck = std::any_of(c->calls.begin(), c->calls.end(), [&](const Call* call) {
        return call->route == nullptr && !call->resp_started && now - call->start_ns >= limit;
      });
      if (stuck) {
        closing.push_back(c);
      } else if (idle > 0 && c->calls.empty()) {
        if (!c->goaway && now - c->idle_since_ns >= idle) {
          Goaway(c);
        } else if (c->goaway && now - c->goaway_ns >= 1'000'000'000) {
          closing.push_back(c);
        }
      }
    }
    for (Conn* c : closing) Close(c);
  }
  if (draining_ && now >= drain_deadline_ns_) {
    grace_over_ = true;  // the calls still open end because the gateway stops, not their clients
    for (Conn* c : std::vector<Conn*>(conns_.begin(), conns_.end())) {
      if (!c->is_backend) Close(c);
    }
  }
}

void H2Front::Impl::Run() {
  // OpenSSL writes with write(2): a peer that closed mid-handshake must be EPIPE, not SIGPIPE
  // (thread-directed, so blocking it here keeps it off the rest of the process).
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
  std::vector<epoll_event> events(128);
  for (;;) {
    // Tick() runs the drain deadline, the connection-age timer, while clients are connected their
    // handshake, header and idle timers and, while calls are open (only connections with calls
    // are pinged), the keepalive one; otherwise the loop sleeps.
    const bool timed =
        draining_ || options_.max_connection_age_ms > 0 || accept_paused_until_ns_ != 0 ||
        client_conns_ > 0 ||
        (options_.keepalive_time_ms > 0 && active_calls_.load(std::memory_order_relaxed) > 0);
    const int n = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()),
                             !read_again_.empty() ? 0 : (timed ? 100 : -1));
    if (n < 0 && errno != EINTR) return;
    for (int i = 0; i < n; ++i) {
      void* p = events[i].data.ptr;
      if (p == nullptr) {
        if (listen_fd_ >= 0) Accept();
      } else if (p == &wake_fd_) {
        OnWake();
      } else {
        OnEvent(static_cast<Conn*>(p), events[i].events);
      }
    }
    if (!read_again_.empty()) {
      std::vector<Conn*> again;
      again.swap(read_again_);
      for (Conn* c : again) c->read_again = false;
      for (Conn* c : again) {
        if (!c->dead) OnEvent(c, EPOLLIN);
      }
    }
    if (accept_paused_until_ns_ != 0 && NowNs() >= accept_paused_until_ns_) {
      accept_paused_until_ns_ = 0;
      if (listen_fd_ >= 0) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.ptr = nullptr;
        epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
      }
    }
    if (timed && NowNs() >= next_tick_ns_) {
      next_tick_ns_ = NowNs() + 50000000;  // timers have a resolution of 50 ms
      Tick();
    }
    // Flush every session something was submitted to; flushing one may dirty another (consume).
    for (size_t i = 0; i < dirty_.size(); ++i) {
      Conn* c = dirty_[i];
      c->dirty = false;
      Flush(c);
    }
    dirty_.clear();
    DeliverEndedCalls();
    if (options_.on_round_end) options_.on_round_end();
    for (Conn* c : graveyard_) delete c;
    graveyard_.clear();
    // Handshakes still in progress when the drain began join and get GOAWAY too (until the
    // grace is over, when the handshaker closes them).
    if (draining_ && client_conns_ == 0 &&
        (handshaker_ == nullptr || handshaker_->pending() == 0 || grace_over_)) {
      // Close the backend connections too: a server behind the front (the gateway's own gRPC
      // server) waits for its connections to go before its shutdown completes.
      for (Conn* c : std::vector<Conn*>(conns_.begin(), conns_.end())) Close(c);
      for (Conn* c : graveyard_) delete c;
      graveyard_.clear();
      return;
    }
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
    } else if (c->tls_write_wants_read) {
      SetEpollOut(c, false);  // the handshake waits for the client: EPOLLIN resumes it
    }
    if (c->dead) return;
  }
  // TLS: OpenSSL may hold decrypted bytes the socket no longer signals, and a handshake step may
  // need a write: read until it reports that it needs more from the socket.
  if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) || c->ssl != nullptr) {
    for (size_t budget = c->is_backend ? kBackendRoundBytes : kClientRoundBytes;;) {
      if (budget == 0) {
        // Level-triggered epoll reports a socket with bytes left; OpenSSL's buffer it does not.
        if (c->ssl != nullptr && !c->read_again) {
          c->read_again = true;
          read_again_.push_back(c);
        }
        break;
      }
      const size_t want = std::min(budget, rbuf_.size());
      const ssize_t n = Read(c, want);
      if (n > 0) {
        budget -= static_cast<size_t>(n);
        c->received = true;
        c->last_recv_ns = NowNs();
        // A client's bytes go to nghttp2 frame by frame, each frame judged by the meter after
        // what its predecessors carried; a backend's all at once.
        bool flood = false;
        for (size_t off = 0; off < static_cast<size_t>(n);) {
          const size_t piece = c->is_backend
                                   ? static_cast<size_t>(n)
                                   : c->meter.Feed(rbuf_.data() + off, n - off, c->last_recv_ns);
          if (nghttp2_session_mem_recv(c->session, rbuf_.data() + off, piece) < 0) {
            Close(c);
            return;
          }
          off += piece;
          if (!c->is_backend && !c->meter.ok()) {
            flood = true;
            break;
          }
        }
        MarkDirty(c);
        if (flood) {
          // GOAWAY ENHANCE_YOUR_CALM, the calls end, the connection closes once it is sent.
          nghttp2_session_terminate_session(c->session, NGHTTP2_ENHANCE_YOUR_CALM);
          break;
        }
        if (c->ssl == nullptr && static_cast<size_t>(n) < want) break;
        continue;
      }
      if (n == -1) break;
      Close(c);
      return;
    }
    if (c->tls_write_wants_read) MarkDirty(c);  // a handshake step may have unblocked the output
  }
}

ssize_t H2Front::Impl::Read(Conn* c, size_t max) {
  if (c->ssl == nullptr) {
    for (;;) {
      const ssize_t n = recv(c->fd, rbuf_.data(), max, 0);
      if (n >= 0) return n;
      if (errno == EINTR) continue;
      return errno == EAGAIN ? -1 : -2;
    }
  }
  ERR_clear_error();
  const int n = SSL_read(c->ssl, rbuf_.data(), static_cast<int>(max));
  if (n > 0) return n;
  switch (SSL_get_error(c->ssl, n)) {
    case SSL_ERROR_WANT_READ:
      return -1;
    case SSL_ERROR_WANT_WRITE:
      SetEpollOut(c, true);
      return -1;
    case SSL_ERROR_ZERO_RETURN:
      return 0;
    default:  // a failed handshake (no client certificate, no h2), a reset, a bad record
      ERR_clear_error();
      return -2;
  }
}

bool H2Front::Impl::SendOut(Conn* c) {
  c->tls_write_wants_read = false;
  while (c->out_off < c->out.size()) {
    ssize_t n;
    if (c->ssl != nullptr) {
      // A retry after WANT_* passes the same bytes, possibly more (the buffer only grows at its
      // end).
      ERR_clear_error();
      const int r =
          SSL_write(c->ssl, c->out.data() + c->out_off,
                    static_cast<int>(std::min<size_t>(c->out.size() - c->out_off, 1 << 30)));
      if (r <= 0) {
        const int err = SSL_get_error(c->ssl, r);
        if (err == SSL_ERROR_WANT_READ) {
          c->tls_write_wants_read = true;
        } else if (err != SSL_ERROR_WANT_WRITE) {
          ERR_clear_error();
          Close(c);
        }
        return false;
      }
      n = r;
    } else {
      n = send(c->fd, c->out.data() + c->out_off, c->out.size() - c->out_off, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN) Close(c);
        return false;
      }
    }
    c->out_off += n;
    c->sent += n;
  }
  c->out.clear();
  c->out_off = 0;
  return true;
}

void H2Front::Impl::Flush(Conn* c) {
  if (c->dead) return;
  if (c->connecting) return;  // EPOLLOUT tells when it connected
  if (c->out_off < c->out.size() && !SendOut(c)) {
    // Nothing more is generated while output is pending (back pressure).
    if (!c->dead && !c->tls_write_wants_read) SetEpollOut(c, true);
    return;
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
      c->serialized += n;
      if (c->out.size() >= kMaxPendingOut) {
        more = true;
        break;
      }
    }
    if (!SendOut(c)) {
      if (!c->dead && !c->tls_write_wants_read) SetEpollOut(c, true);
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
  if (c->ssl != nullptr) {
    SSL_free(c->ssl);
    c->ssl = nullptr;
  }
  close(c->fd);
  conns_.erase(c);
  if (!c->is_backend) --client_conns_;
  if (!c->is_backend && !c->settled) --handshaking_;
  if (c->read_again) {
    read_again_.erase(std::find(read_again_.begin(), read_again_.end(), c));
    c->read_again = false;
  }
  if (c->replica != nullptr) {
    for (Conn*& slot : c->replica->conns) {
      if (slot == c) slot = nullptr;
    }
    if (!c->received) {
      // Never connected (refused, or closed at once): skip this replica for a while.
      c->replica->failed_until_ns = NowNs() + int64_t{options_.reconnect_backoff_ms} * 1000000;
    }
  }
  std::vector<Call*> calls(c->calls.begin(), c->calls.end());
  c->calls.clear();
  for (Call* call : calls) {
    if (c->is_backend) {
      call->backend = nullptr;
      const bool unprocessed = c->sent <= call->attempt_mark;
      // A call the backend saw may have taken effect: "no backend is reachable" would say it did
      // not.
      BackendFailed(call, kStatusUnavailable,
                    unprocessed
                        ? ""
                        : "the backend connection was lost before the call's answer (the "
                          "backend may have processed it: check before retrying a call that "
                          "is not idempotent)",
                    unprocessed);
    } else {
      ClientClosed(call, NGHTTP2_CANCEL);
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
  auto* call = new Call(static_cast<uint32_t>(options_.max_message_bytes));
  c->meter.Credit(FrameMeter::kPerStream);
  call->client = c;
  call->client_sid = frame->hd.stream_id;
  call->start_ns = NowNs();
  c->calls.insert(call);
  nghttp2_session_set_stream_user_data(c->session, frame->hd.stream_id, call);
  return 0;
}

int H2Front::Impl::OnHeader(Conn* c, const nghttp2_frame* frame, absl::string_view name,
                            absl::string_view value) {
  auto* call =
      static_cast<Call*>(nghttp2_session_get_stream_user_data(c->session, frame->hd.stream_id));
  if (call == nullptr) return 0;
  if (!c->is_backend &&
      ((!options_.client_peer_header.empty() && name == options_.client_peer_header) ||
       (!options_.front_key_header.empty() && name == options_.front_key_header))) {
    return 0;  // only the front says who the client is, and only the front holds the key
  }
  if (call->headers.empty() && !call->header_overflow) call->header_bytes = 0;
  const size_t field = name.size() + value.size() + 32;
  call->header_bytes += field;
  // HPACK lets a 1-byte index stand for a 4 KB field: what the front decodes (and nghttp2
  // validates, byte by byte) is charged to the client per KiB, beyond the frames it sent (a
  // 131 KB block cost ~150 ms of the front's thread, and the calls it opened paid for it).
  if (!c->is_backend && !c->meter.Charge(static_cast<double>(field) / 1024)) {
    nghttp2_session_terminate_session(c->session, NGHTTP2_ENHANCE_YOUR_CALM);
    MarkDirty(c);
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }
  if (call->header_bytes > 2 * kMaxHeaderListBytes) {
    // Far beyond the cap: the stream is reset, and nghttp2 stops validating its fields.
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }
  if (call->header_bytes > kMaxHeaderListBytes) {
    // A backend's block resets its stream (nghttp2 sends RST_STREAM INTERNAL_ERROR); a request
    // keeps what it has (pseudo-headers come first: the call log names the method) and is
    // answered RESOURCE_EXHAUSTED when its block ends.
    if (c->is_backend) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    call->header_overflow = true;
    return 0;
  }
  // One allocation per header block instead of the vector growing 1, 2, 4, 8, 16.
  if (call->headers.capacity() == 0) call->headers.reserve(kHeadersReserved);
  call->headers.push_back(Header{std::string(name), std::string(value)});
  return 0;
}

void H2Front::Impl::ReplyStatus(Call* call, int code, absl::string_view message) {
  call->resp_started = true;
  call->resp_eof = true;
  call->code = code;
  call->message = std::string(message);
  SubmitEndedResponse(call, {{":status", "200"},
                             {"content-type", "application/grpc"},
                             {"grpc-status", std::to_string(code)},
                             {"grpc-message", PercentEncode(message)}});
}

void H2Front::Impl::SubmitEndedResponse(Call* call, const std::vector<Header>& headers) {
  Conn* c = call->client;
  if (!call->generated_id) {
    ToNv(headers, &nv_);
    nghttp2_submit_response(c->session, call->client_sid, nv_.data(), nv_.size(), nullptr);
    MarkDirty(c);
    return;
  }
  // gRPC reads everything of a trailers-only response as trailing metadata: the generated id goes
  // in a headers block of its own, the status in the trailers after it, so the client finds
  // x-request-id in the initial metadata, as from a backend called directly.
  std::vector<Header> initial;
  std::vector<Header> trailers;
  for (const Header& h : headers) {
    (absl::StartsWith(h.name, ":") || h.name == "content-type" ? initial : trailers).push_back(h);
  }
  initial.push_back({"x-request-id", call->request_id});
  ToNv(initial, &nv_);
  nghttp2_submit_headers(c->session, NGHTTP2_FLAG_NONE, call->client_sid, nullptr, nv_.data(),
                         nv_.size(), nullptr);
  ToNv(trailers, &nv_);
  nghttp2_submit_headers(c->session, NGHTTP2_FLAG_END_STREAM, call->client_sid, nullptr, nv_.data(),
                         nv_.size(), nullptr);
  MarkDirty(c);
}

void H2Front::Impl::ResetClient(Call* call, uint32_t code) {
  nghttp2_submit_rst_stream(call->client->session, NGHTTP2_FLAG_NONE, call->client_sid, code);
  MarkDirty(call->client);
}

void H2Front::Impl::NoteStatus(Call* call, const std::vector<Header>& headers) {
  if (!options_.on_call_end) return;
  for (const Header& h : headers) {
    if (h.name == "grpc-status") {
      if (!absl::SimpleAtoi(h.value, &call->code)) call->code = kStatusUnknown;
    } else if (h.name == "grpc-message") {
      call->message = PercentDecode(h.value);
    } else if (h.name == "maas-model-name") {
      call->model = h.value.substr(0, 128);
    } else if (h.name == "maas-model-version") {
      if (!absl::SimpleAtoi(h.value, &call->model_version)) call->model_version = 0;
    } else if (h.name == "maas-documents") {
      if (!absl::SimpleAtoi(h.value, &call->documents)) call->documents = 0;
    } else if (h.name == "maas-samples") {
      if (!absl::SimpleAtoi(h.value, &call->samples)) call->samples = 0;
    }
  }
}

void H2Front::Impl::StartCall(Call* call) {
  absl::string_view path;
  absl::string_view request_id;
  for (const Header& h : call->headers) {
    if (h.name == ":path") path = h.value;
    if (h.name == "x-request-id") request_id = h.value;
    if (h.name == "grpc-timeout") call->timeout_ns = GrpcTimeoutNs(h.value);
  }
  if (options_.on_call_end) {
    call->method = std::string(path.substr(0, 256));
    for (char ch : request_id.substr(0, 128)) {
      if (ch > 0x20 && ch < 0x7f) call->request_id.push_back(ch);
    }
    if (call->request_id.empty() && options_.generate_request_ids) {
      call->request_id = absl::StrCat(options_.request_id_prefix, "-", next_request_id_++);
      call->generated_id = true;  // added to the backend request below
    }
  }
  Route* route = default_route_.get();
  absl::string_view method;
  if (path.size() > 1 && path[0] == '/') {
    const size_t slash = path.find('/', 1);
    if (slash != absl::string_view::npos) {
      auto it = by_service_.find(path.substr(1, slash - 1));
      if (it != by_service_.end()) {
        route = it->second;
        method = path.substr(slash + 1);
      }
    }
  }
  if (route == nullptr) {
    ReplyStatus(call, kStatusUnimplemented,
                absl::StrCat("no route for method ", path.substr(0, 256)));
    call->headers.clear();
    return;
  }
  for (const Header& h : call->headers) {
    if (absl::EndsWith(h.name, "-bin") && !IsGrpcBase64(h.value)) {
      ReplyStatus(
          call, kStatusInvalidArgument,
          absl::StrCat("request header '", h.name.substr(0, 64),
                       "' is not base64 (RFC 4648's standard alphabet, padded or not), "
                       "as gRPC requires of a -bin value, so the gateway cannot forward it"));
      call->headers.clear();
      return;
    }
  }
  // The default route (health checks, the gateway's own service) keeps a few slots that calls of
  // the backend routes cannot take: calls that never end filled all 4096 and the kubelet's gRPC
  // probes of the gateway were refused with the rest, which restarts a gateway under load.
  const int reserve = route != default_route_.get() ? DefaultRouteReserve()
                      : path == kHealthCheckPath    ? 0
                                                    : HealthCheckReserve();
  if (active_calls_.load(std::memory_order_relaxed) >= options_.max_concurrent_calls - reserve) {
    ReplyStatus(
        call, kStatusResourceExhausted,
        absl::StrCat("the gateway already proxies ", options_.max_concurrent_calls - reserve,
                     " concurrent calls of its backends (--max_concurrent_streams",
                     reserve > 0 ? absl::StrCat(", less ", reserve, " kept for health checks")
                                 : std::string(),
                     "); retry later or raise it"));
    call->headers.clear();
    return;
  }
  active_calls_.fetch_add(1, std::memory_order_relaxed);
  call->counted = true;
  call->route = route;
  if (options_.on_call_start && route != default_route_.get()) {
    options_.on_call_start();
    call->started = true;
  }
  call->retryable = route != default_route_.get() && options_.retry_max_attempts > 1 &&
                    !route->non_idempotent.contains(method);
  if (route->single_response.contains(method)) {
    call->single_response = true;
    call->resp_scan.set_max_messages(1);
  }
  call->req.retain = call->retryable;
  // Last: `path` and `method` point into call->headers, which this may reallocate.
  if (call->generated_id) call->headers.push_back({"x-request-id", call->request_id});
  if (route == default_route_.get() && !options_.client_peer_header.empty()) {
    call->headers.push_back({options_.client_peer_header, call->client->peer});
  }
  if (route == default_route_.get() && !options_.front_key.empty()) {
    call->headers.push_back({options_.front_key_header, options_.front_key});
  }
  // The backend's name, not the gateway's: a mesh sidecar routes (and authorizes) by it.
  for (Header& h : call->headers) {
    if (h.name == ":authority" || h.name == "host") h.value = route->authority;
  }
  call->req_headers = std::move(call->headers);
  call->headers.clear();
  // A header block the backend session would refuse to send: nghttp2 then closes the stream as
  // REFUSED_STREAM, which read as "no backend reachable" and was retried. The client's mistake.
  ToNv(call->req_headers, &nv_);
  const size_t header_bytes = nghttp2_hd_deflate_bound(header_bound_, nv_.data(), nv_.size());
  if (call->header_overflow) {
    ReplyStatus(call, kStatusResourceExhausted,
                absl::StrCat("the request's metadata is above the ", kMaxHeaderListBytes,
                             " bytes the gateway takes in one HTTP/2 header block "
                             "(SETTINGS_MAX_HEADER_LIST_SIZE); send less"));
    return;
  }
  if (header_bytes > kMaxHeaderBlock) {
    ReplyStatus(call, kStatusResourceExhausted,
                absl::StrCat("the request's metadata takes up to ", header_bytes,
                             " bytes, above the ", kMaxHeaderBlock,
                             " the gateway forwards in one HTTP/2 header block; send less"));
    return;
  }
  if (!Attempt(call, nullptr)) {
    ReplyStatus(call, kStatusUnavailable, UnavailableMessage(route));
  }
}

bool H2Front::Impl::Attempt(Call* call, const Replica* avoid) {
  Replica* replica = PickReplica(call->route, avoid);
  Conn* b = replica == nullptr ? nullptr : ConnectionTo(replica);
  if (b == nullptr && replica != nullptr && call->route->replicas.size() > 1) {
    b = ConnectionTo(PickReplica(call->route, replica));
  }
  if (b == nullptr) return false;
  ToNv(call->req_headers, &nv_);
  nghttp2_data_provider prd;
  prd.source.ptr = call;
  prd.read_callback = CbReadRequest;
  const int32_t sid =
      nghttp2_submit_request(b->session, nullptr, nv_.data(), nv_.size(), &prd, call);
  if (sid < 0) return false;
  ++call->attempts;
  call->replica = b->replica;
  call->backend = b;
  call->backend_sid = sid;
  call->attempt_mark = b->serialized;
  call->req_deferred = false;
  call->held_headers.clear();  // the last attempt's, never sent
  b->calls.insert(call);
  MarkDirty(b);
  return true;
}

void H2Front::Impl::DetachBackend(Call* call, bool reset) {
  Conn* b = call->backend;
  if (b == nullptr) return;
  b->calls.erase(call);
  nghttp2_session_set_stream_user_data(b->session, call->backend_sid, nullptr);
  if (reset) {
    nghttp2_submit_rst_stream(b->session, NGHTTP2_FLAG_NONE, call->backend_sid, NGHTTP2_CANCEL);
    MarkDirty(b);
  }
  call->backend = nullptr;  // the connection's window was given back as the bytes arrived
}

// The current attempt failed before the response started (or after: then the call ends
// UNAVAILABLE after what was received). Retries on another replica when allowed, else answers
// `code`. `unprocessed`: the backend never saw the call (no byte of it left the gateway, or the
// backend refused the stream): like gRPC's transparent retry, any method is then tried again, once
// per replica up to kMaxTransparentRetries, when the request is still whole in the gateway.
void H2Front::Impl::BackendFailed(Call* call, int code, const std::string& message,
                                  bool unprocessed) {
  if (call->client == nullptr || call->resp_eof) return;
  if (call->resp_started) {
    // Committed (the client has the response headers): what was received is forwarded, then the
    // call ends UNAVAILABLE, as a gRPC proxy ends it.
    FailCall(call, kStatusUnavailable, "the backend connection was lost during the call");
    return;
  }
  const bool policy_retry = call->retryable && call->attempts < options_.retry_max_attempts;
  const bool transparent_retry =
      !policy_retry && unprocessed && call->transparent_retries < kMaxTransparentRetries &&
      !call->req_headers.empty() && (call->req.retain || call->req.taken_abs() == 0);
  if (policy_retry || transparent_retry) {
    if (transparent_retry) ++call->transparent_retries;
    call->req.Rewind();
    call->resp = ByteQueue();
    if (Attempt(call, call->replica)) return;
  }
  ReplyStatus(call, code, message.empty() ? UnavailableMessage(call->route) : message);
}

// Ends the call with `code`: trailers-only before the response started, else trailers after what
// was received. No-op when the response already ended.
void H2Front::Impl::FailCall(Call* call, int code, const std::string& message) {
  if (call->client == nullptr || call->resp_eof) return;
  if (!call->resp_started) {
    ReplyStatus(call, code, message);
    return;
  }
  call->code = code;
  call->message = message;
  call->trailers = {{"grpc-status", std::to_string(code)},
                    {"grpc-message", PercentEncode(message)}};
  call->resp_eof = true;
  if (call->resp_deferred) {
    call->resp_deferred = false;
    nghttp2_session_resume_data(call->client->session, call->client_sid);
  }
  MarkDirty(call->client);
}

int H2Front::Impl::OnFrameRecv(Conn* c, const nghttp2_frame* frame) {
  if (!c->is_backend) {
    if (!c->settled && frame->hd.type == NGHTTP2_SETTINGS) {
      c->settled = true;  // the preface and SETTINGS arrived (after TLS): no handshake timeout
      --handshaking_;
    }
  }
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
      if (call->client != nullptr) CommitHeldResponse(call);  // no trailers: the client sees why
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
    std::vector<Header> headers = std::move(call->headers);
    call->headers.clear();
    if (end_stream) {
      // Trailers-only: an UNAVAILABLE answer of an idempotent call is retried elsewhere.
      if (RetryUnavailable(call, headers)) return 0;
      StartResponse(call);
      call->resp_eof = true;
      NoteStatus(call, headers);
      SubmitEndedResponse(call, headers);
    } else if (call->retryable && call->single_response && call->req_eof) {
      // The answer is still to come: the call stays retryable until it does.
      call->held_headers = std::move(headers);
    } else {
      CommitResponse(call, std::move(headers));
    }
  } else {
    if (!call->held_headers.empty()) {
      // Headers, then trailers without a message: an UNAVAILABLE one is retried as trailers-only.
      if (RetryUnavailable(call, call->headers)) {
        call->headers.clear();
        return 0;
      }
      CommitHeldResponse(call);
    }
    call->trailers = std::move(call->headers);
    call->headers.clear();
    NoteStatus(call, call->trailers);
    if (end_stream) call->resp_eof = true;
    if (call->resp_deferred) {
      call->resp_deferred = false;
      nghttp2_session_resume_data(call->client->session, call->client_sid);
      MarkDirty(call->client);
    }
  }
  return 0;
}

// An UNAVAILABLE status (`headers` holds grpc-status) before any response message of a call still
// retryable: the attempt is dropped and the call tried again on another replica. False when not.
bool H2Front::Impl::RetryUnavailable(Call* call, const std::vector<Header>& headers) {
  if (!call->retryable || call->attempts >= options_.retry_max_attempts) return false;
  const bool unavailable = std::any_of(headers.begin(), headers.end(), [](const Header& h) {
    return h.name == "grpc-status" && h.value == "14";
  });
  if (!unavailable) return false;
  DetachBackend(call, true);
  call->req.Rewind();
  return Attempt(call, call->replica);  // when none starts, the status goes to the client
}

// The response starts: the call is no longer retried, and what was kept for a retry is let go.
void H2Front::Impl::StartResponse(Call* call) {
  call->retryable = false;
  StopRetaining(call);
  call->req_headers.clear();
  call->resp_started = true;
}

// The response starts with `headers`, sent to the client; its body follows from `resp`.
void H2Front::Impl::CommitResponse(Call* call, std::vector<Header> headers) {
  StartResponse(call);
  if (call->generated_id) headers.push_back({"x-request-id", call->request_id});
  ToNv(headers, &nv_);
  nghttp2_data_provider prd;
  prd.source.ptr = call;
  prd.read_callback = CbReadResponse;
  nghttp2_submit_response(call->client->session, call->client_sid, nv_.data(), nv_.size(), &prd);
  MarkDirty(call->client);
}

int H2Front::Impl::OnDataChunk(Conn* c, int32_t sid, const uint8_t* data, size_t len) {
  auto* call = static_cast<Call*>(nghttp2_session_get_stream_user_data(c->session, sid));
  if (!c->is_backend) {
    if (call == nullptr || (call->backend == nullptr && !call->retryable) || call->resp_eof) {
      nghttp2_session_consume(c->session, sid, len);  // nobody to forward to: drop
      return 0;
    }
    c->meter.Forwarded(len);
    if (!call->req_scan.Feed(data, len)) {
      nghttp2_session_consume(c->session, sid, len);
      call->retryable = false;
      if (call->backend != nullptr) DetachBackend(call, true);
      FailCall(call, kStatusResourceExhausted,
               absl::StrCat("a request message of ", call->req_scan.too_large(),
                            " bytes is larger than the gateway's --max_message_bytes (",
                            options_.max_message_bytes, ")"));
      return 0;
    }
    call->req.Append(data, len);
    if (call->req.retain) {
      if (call->req.data.size() > static_cast<size_t>(options_.retry_buffer_bytes) ||
          retained_bytes_ + static_cast<int64_t>(len) > options_.retry_buffer_total_bytes) {
        call->retryable = false;  // too much to keep for a retry, for the call or in all
        StopRetaining(call);
      } else {
        retained_bytes_ += static_cast<int64_t>(len);
        call->retained += len;
      }
    }
    if (call->backend == nullptr) return 0;
    if (call->req_deferred) {
      call->req_deferred = false;
      nghttp2_session_resume_data(call->backend->session, call->backend_sid);
    }
    MarkDirty(call->backend);
    return 0;
  }
  // A backend connection carries many clients' calls: its window is given back as bytes arrive,
  // and each stream's only as its client takes them, so a client that does not read holds its own
  // streams' windows (at most --stream_window_bytes each in the front), never the connection's (a
  // client with ~140 unread Sample streams stalled every other client's generative calls).
  nghttp2_session_consume_connection(c->session, len);
  if (call == nullptr || call->client == nullptr) {
    nghttp2_session_consume_stream(c->session, sid, len);
    return 0;
  }
  CommitHeldResponse(call);  // the message comes: the response starts
  if (!call->resp_scan.Feed(data, len)) {
    if (call->resp_scan.too_many()) {
      // A second response message to a method with one: a broken backend. The first message is
      // forwarded whole, then the call ends INTERNAL (DetachBackend acknowledges the kept bytes).
      const size_t keep = call->resp_scan.taken_before_stop();
      call->resp.Append(data, keep);
      nghttp2_session_consume_stream(c->session, sid, len - keep);
      DetachBackend(call, true);
      FailCall(call, kStatusInternal,
               absl::StrCat("the backend of route ", call->route->service,
                            " sent more than one response message to a method with one"));
      return 0;
    }
    // The complete messages before the oversized one are forwarded, then the call ends.
    const size_t keep = call->resp_scan.taken_before_stop();
    call->resp.Append(data, keep);
    nghttp2_session_consume_stream(c->session, sid, len - keep);
    DetachBackend(call, true);
    FailCall(call, kStatusResourceExhausted,
             absl::StrCat("the backend answered a message of ", call->resp_scan.too_large(),
                          " bytes, larger than the gateway's --max_message_bytes (",
                          options_.max_message_bytes, ")"));
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
  const uint64_t taken = call->req.taken_abs();
  if (taken > call->req_consumed && call->client != nullptr) {
    // Acknowledge to the client only bytes handed over for the first time (a retry replays).
    nghttp2_session_consume(call->client->session, call->client_sid, taken - call->req_consumed);
    call->req_consumed = taken;
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
  call->client->meter.Sent(n);  // its WINDOW_UPDATEs and PINGs will follow
  if (n > 0 && call->backend != nullptr) {
    nghttp2_session_consume_stream(call->backend->session, call->backend_sid, n);
    MarkDirty(call->backend);
  }
  if (call->resp.size() == 0) {
    if (call->resp_eof) {
      if (!call->trailers.empty()) {
        ToNv(call->trailers, &nv_);
        nghttp2_submit_trailer(call->client->session, call->client_sid, nv_.data(), nv_.size());
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
  if (!c->is_backend && frame->hd.type == NGHTTP2_RST_STREAM &&
      frame->rst_stream.error_code != NGHTTP2_NO_ERROR) {
    // The front reset a client's request (nghttp2 refused it: a header HTTP/2 forbids, a bad
    // pseudo-header...): the call ends for that, not because the client cancelled. Its client
    // reads the reset as INTERNAL (REFUSED_STREAM as UNAVAILABLE), as gRPC clients do.
    auto* call =
        static_cast<Call*>(nghttp2_session_get_stream_user_data(c->session, frame->hd.stream_id));
    if (call != nullptr && call->code < 0) {
      call->front_reset = true;
      const uint32_t error = frame->rst_stream.error_code;
      call->code = error == NGHTTP2_REFUSED_STREAM ? kStatusUnavailable : kStatusInternal;
      call->message = absl::StrCat(
          "the gateway reset the request (", nghttp2_http2_strerror(error),
          error == NGHTTP2_PROTOCOL_ERROR
              ? "): it breaks HTTP/2's rules for requests (e.g. a connection-specific or "
                "uppercase header, a missing or repeated pseudo-header)"
              : ")");
    }
    return 0;
  }
  // The response ended while the client is still sending: end the stream (gRPC servers do too).
  if (c->is_backend || (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) == 0) return 0;
  auto* call =
      static_cast<Call*>(nghttp2_session_get_stream_user_data(c->session, frame->hd.stream_id));
  if (call != nullptr && !call->req_eof) {
    nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_NO_ERROR);
  }
  return 0;
}

void H2Front::Impl::ClientClosed(Call* call, uint32_t code) {
  Conn* c = call->client;
  if (c != nullptr && c->session != nullptr) {
    // Bytes received but never forwarded still count against the connection window.
    const uint64_t received = call->req.base + call->req.data.size();
    if (received > call->req_consumed) {
      nghttp2_session_consume_connection(c->session, received - call->req_consumed);
    }
  }
  ForgetRetained(call);
  call->req = ByteQueue();
  call->client = nullptr;
  // The client is gone (done, cancelled, deadline): a backend stream still open is cancelled.
  if (call->backend != nullptr) DetachBackend(call, true);
  if (call->counted) {
    call->counted = false;
    active_calls_.fetch_sub(1, std::memory_order_relaxed);
  }
  if (options_.on_call_end && c != nullptr) {
    if (!call->front_reset && (call->code < 0 || (code != NGHTTP2_NO_ERROR && !call->resp_eof))) {
      if (grace_over_) {
        call->code = kStatusUnavailable;
        if (call->message.empty()) {
          call->message =
              "the gateway shut down before the call finished (SIGTERM: --drain_delay_ms, then "
              "--shutdown_grace_ms for calls in flight)";
        }
      } else if (code != NGHTTP2_NO_ERROR && call->timeout_ns > 0 &&
                 adapter::DeadlineCounted(
                     absl::FromUnixNanos(call->start_ns) + absl::Nanoseconds(call->timeout_ns),
                     absl::FromUnixNanos(call->start_ns), absl::FromUnixNanos(NowNs()))) {
        // A client resets the stream when its deadline passes: near the grpc-timeout it sent
        // (rounded up, and sent a moment before), it did (the services' rule; only differences of
        // the front's clock enter it).
        call->code = kStatusDeadlineExceeded;
        if (call->message.empty()) call->message = "the client's deadline passed";
      } else {
        call->code = code == NGHTTP2_NO_ERROR ? kStatusUnknown : kStatusCancelled;
        if (call->message.empty()) call->message = "the client cancelled the call";
      }
    }
    // Reported after the round's output has gone out (DeliverEndedCalls): a client stream closes
    // while its trailers are serialized, before they are sent, and the call log line and metrics
    // must not delay them. The slots are reused, so their strings keep their capacity.
    if (ended_count_ == ended_.size()) ended_.emplace_back();
    EndedCall& e = ended_[ended_count_++];
    e.method = call->method;
    e.code = call->code;
    e.message = call->message;
    e.duration = absl::Nanoseconds(NowNs() - call->start_ns);
    e.peer = c->peer;
    e.model = call->model;
    e.model_version = call->model_version;
    e.documents = call->documents;
    e.samples = call->samples;
    e.request_id = call->request_id;
    e.default_route = call->route != nullptr && call->route == default_route_.get();
    e.started = call->started;
  }
}

void H2Front::Impl::DeliverEndedCalls() {
  for (size_t i = 0; i < ended_count_; ++i) {
    const EndedCall& e = ended_[i];
    FrontCallRecord record;
    record.method = e.method;
    record.code = e.code;
    record.message = e.message;
    record.duration = e.duration;
    record.peer = e.peer;
    record.model = e.model;
    record.model_version = e.model_version;
    record.documents = e.documents;
    record.samples = e.samples;
    record.request_id = e.request_id;
    record.default_route = e.default_route;
    record.started = e.started;
    options_.on_call_end(record);
  }
  ended_count_ = 0;
}

int H2Front::Impl::OnStreamClose(Conn* c, int32_t sid, uint32_t code) {
  auto* call = static_cast<Call*>(nghttp2_session_get_stream_user_data(c->session, sid));
  if (call == nullptr) return 0;
  c->calls.erase(call);
  if (!c->is_backend) {
    if (c->calls.empty()) c->idle_since_ns = NowNs();
    ClientClosed(call, code);
  } else {
    call->backend = nullptr;  // the connection's window was given back as the bytes arrived
    if (call->client != nullptr && !call->resp_eof) {
      if (call->resp_started) {
        ResetClient(
            call, code == NGHTTP2_NO_ERROR ? static_cast<uint32_t>(NGHTTP2_INTERNAL_ERROR) : code);
      } else if (code == NGHTTP2_REFUSED_STREAM) {
        // RFC 9113 8.7: a refused stream was not processed (also the streams a GOAWAY cut off).
        BackendFailed(call, kStatusUnavailable, "", /*unprocessed=*/true);
      } else {
        ReplyStatus(call, GrpcStatusOfRst(code),
                    absl::StrCat("the backend reset the stream (HTTP/2 error ", code, ")"));
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
void H2Front::Shutdown(absl::Duration grace) { impl_->Shutdown(grace); }
int H2Front::active_calls() const { return impl_->active_calls(); }

}  // namespace maas::gateway::h2
