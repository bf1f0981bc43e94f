// An HTTP/2 frame-forwarding data plane for the gateway (h2c, or h2 over TLS / mutual TLS).
//
// One epoll thread (and with TLS one more that runs the clients' TLS handshakes: TlsHandshaker);
// every client connection is an nghttp2 server session, every backend connection an nghttp2
// client session kept open across calls. A call (HTTP/2 stream) is routed by the service
// part of its :path header, exactly like Router: "/<service>/<method>" -> the route of <service>;
// a call of any other service goes to the default route (in maas-gateway: its own gRPC server on a
// loopback port, which answers health, reflection, maas.gateway.v1.Gateway and UNIMPLEMENTED).
// Request headers, DATA and END_STREAM are forwarded to a stream on a backend connection, the
// response headers, DATA and trailers back; RST_STREAM crosses in both directions. No gRPC library
// on this path and no payload parsing: DATA bytes are copied, never decoded.
//
// Flow control is manual (nghttp2_session_consume): bytes received on one side are acknowledged to
// their sender only when the other side has handed them to its connection, so a stalled reader
// stalls its writer and a stream holds at most one window in the front. A backend connection's
// own window is given back as bytes arrive (its streams' only as their clients take them), so a
// client that stops reading holds its streams, not the connection other clients' calls share.
// A request's header list is kept up to 64 KiB (advertised as SETTINGS_MAX_HEADER_LIST_SIZE);
// beyond it the call is answered RESOURCE_EXHAUSTED.
//
// Hostile clients: a client connection is read at most 64 KiB per round of events; every frame a
// client sends is counted against what its connection carries (GOAWAY ENHANCE_YOUR_CALM to a
// flood of frames that carry nothing); connections that do not finish the handshake or a header
// block within handshake_timeout_ms are closed, idle ones after idle_timeout_ms; the default
// route keeps a share of max_concurrent_calls; request bytes kept for retries are capped in all.
//
// Replicas: a route's target is "ipv4:a:p[,b:p...]", "dns:///host:port" or "host:port" (names are
// resolved on a resolver thread, at start and every dns_refresh_ms; a name that does not resolve
// yet leaves the route without replicas: UNAVAILABLE); calls go round robin over its replicas,
// skipping one whose connection
// failed within the reconnect backoff. Idempotent calls are retried on another replica when the
// attempt fails before the response starts (connection refused or lost, RST_STREAM
// REFUSED_STREAM, or a trailers-only UNAVAILABLE answer), while their request bytes so far fit in
// retry_buffer_bytes (kept until the response starts). A response starts with its headers, except
// for a single-response method whose client has ended its request: headers that come alone wait
// for the message or the trailers (an UNAVAILABLE then is retried too).
//
//   MAAS_ASSIGN_OR_RETURN(auto front, H2Front::Create(options));
//   std::thread t([&] { front->Run(); });   // until Shutdown() has drained
//   front->Shutdown(absl::Seconds(10));     // GOAWAY to clients, calls finish, Run() returns
#ifndef MAAS_SERVICES_GATEWAY_H2_H2_FRONT_H_
#define MAAS_SERVICES_GATEWAY_H2_H2_FRONT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace maas::gateway::h2 {

// One route: every method of `service` goes to the replicas of `target`.
struct FrontRoute {
  // Fully qualified gRPC service name, e.g. "maas.discriminative.v1.DiscriminativeService".
  std::string service;
  // "ipv4:127.0.0.1:50053,127.0.0.1:50063", "dns:///discriminative:50053" or "127.0.0.1:50053".
  std::string target;
  // Short names of methods never retried (e.g. "Train"); every other method is idempotent.
  std::vector<std::string> non_idempotent_methods;
  // Short names of methods whose server sends exactly one message (unary and client streaming),
  // e.g. from the service's descriptor: a second response message ends the call INTERNAL, as the
  // gRPC proxy and gRPC clients do. Unlisted methods are forwarded as streams, unchecked.
  std::vector<std::string> single_response_methods;
};

// IPv4 address and port of one replica.
struct ReplicaAddress {
  uint32_t ipv4 = 0;  // host byte order
  int port = 0;
  bool operator==(const ReplicaAddress& o) const { return ipv4 == o.ipv4 && port == o.port; }
};

// Parses and resolves a target (see FrontRoute::target) into replica addresses. INVALID_ARGUMENT
// for a malformed target, UNAVAILABLE when a DNS name does not resolve to an IPv4 address.
absl::StatusOr<std::vector<ReplicaAddress>> ResolveTarget(absl::string_view target);

// True when `target` names a host to resolve (not only IPv4 literals). Assumes a well-formed
// target.
bool TargetNeedsDns(absl::string_view target);

// The :authority of the calls sent to `target`, as a gRPC channel to it sends them: the host:port
// of dns:///<host>:<port>, dns:<host>:<port> and <host>:<port>, the first address of ipv4:<a>,...
// A service mesh's sidecar routes by it (the client's own :authority names the gateway). Assumes
// a well-formed target.
std::string TargetAuthority(absl::string_view target);

// One finished call, for the call log.
struct FrontCallRecord {
  absl::string_view method;  // the :path
  int code = 2;              // gRPC status code (answered by the backend, or by the front)
  absl::string_view message;
  absl::Duration duration;
  absl::string_view peer;  // "ipv4:<ip>:<port>" of the client
  absl::string_view model;
  int64_t model_version = 0;
  // Texts classified / samples produced, as the backend's maas-documents / maas-samples trailers
  // say.
  int64_t documents = 0;
  int64_t samples = 0;
  absl::string_view request_id;
  // True for a call of the default route (FrontOptions::default_target).
  bool default_route = false;
  // True when on_call_start ran for the call; false for one refused before it was routed (no
  // route, --max_concurrent_streams).
  bool started = false;
};

struct FrontOptions {
  // Address to listen on (IPv4 literal) and port (0 = any free port).
  std::string listen_host = "0.0.0.0";
  int listen_port = 0;
  std::vector<FrontRoute> routes;
  // Where calls of any other service go; empty: they are answered UNIMPLEMENTED by the front.
  std::string default_target;
  // Persistent connections per replica; calls are spread over them round robin. >= 1.
  int backend_connections = 2;
  // SETTINGS_MAX_CONCURRENT_STREAMS announced to each client connection. >= 1.
  int max_streams_per_connection = 256;
  // Calls in flight over all client connections (default route included); more are answered
  // RESOURCE_EXHAUSTED. >= 1. Calls of the backend routes may take all but 1/16 of them (at most
  // 64 kept), so that health checks and the gateway's own service are answered when they are
  // full; other calls of the default route all but 1/64 (at most 16), kept for health Check.
  int max_concurrent_calls = 4096;
  // Largest gRPC message, bytes, in [1, 2^32 - 1], in both directions (read from the 5-byte message
  // prefixes, payloads are not parsed): a larger request message ends the call RESOURCE_EXHAUSTED
  // before it reaches the backend, a larger response message ends it RESOURCE_EXHAUSTED too.
  int64_t max_message_bytes = 4 << 20;
  // Per-stream flow-control window towards clients and towards backends, bytes, >= 65535.
  int stream_window_bytes = 256 * 1024;
  // Connection-level window, bytes, >= stream_window_bytes.
  int connection_window_bytes = 16 << 20;
  // Attempts of an idempotent call, in [1, 5] (1 = no retry).
  int retry_max_attempts = 3;
  // Request bytes kept per call for a retry until the response starts; a call that sends
  // more before that is not retried. >= 0.
  int retry_buffer_bytes = 256 * 1024;
  // Request bytes kept for retries over all calls at once; a call whose bytes would pass it is not
  // retried (its bytes are not kept). >= 0. Without it 4096 calls could keep 1 GiB.
  int64_t retry_buffer_total_bytes = 64 << 20;
  // A backend connection with calls that received nothing for keepalive_time_ms gets a PING; one
  // that then stays silent for keepalive_timeout_ms is closed (its calls fail over or end
  // UNAVAILABLE). 0 = no keepalive.
  int keepalive_time_ms = 60000;
  int keepalive_timeout_ms = 20000;
  // DNS targets are resolved again this often, ms, >= 100 (and at once, at most once a second, when
  // every replica of a route has failed); replicas gone from the answer get no new calls.
  int dns_refresh_ms = 30000;
  // RST_STREAM frames a client connection may send: a token bucket of `client_reset_burst` tokens
  // refilled at `client_reset_rate_per_s`, both >= 1; a client that exceeds it gets GOAWAY
  // (nghttp2's rapid-reset defence, CVE-2023-44487). nghttp2's defaults (1000, 33/s) tear down a
  // gRPC client that cancels a few thousand queued calls at once: each cancel of a running call
  // lets the next queued one start, which is then reset too.
  int client_reset_burst = 10000;
  int client_reset_rate_per_s = 1000;
  // A client connection that has not completed its handshake (TLS, then the HTTP/2 preface and
  // SETTINGS) this long after it was accepted is closed, ms, >= 1: silent sockets would otherwise
  // hold file descriptors until the front has none left for real clients. gRPC's own servers
  // allow 120 s; a client sends its preface at once.
  int handshake_timeout_ms = 20000;
  // A client connection without calls for this long gets GOAWAY and is closed a second later
  // (gRPC clients reconnect on their next call), ms; 0 = never. A call whose request headers have
  // not all arrived handshake_timeout_ms after they began closes its connection. Sockets that
  // finished the handshake, then sat idle or left a header block open, held descriptors and
  // ~80 KB each for good. One hour, Envoy's default.
  int idle_timeout_ms = 3600000;
  // A replica whose connection failed is skipped for this long, ms, >= 1.
  int reconnect_backoff_ms = 1000;
  // Client connections get GOAWAY after this age, so clients re-resolve and rebalance; 0 = never.
  // The calls in flight finish; the connection is closed `max_connection_age_grace` after the
  // GOAWAY (infinite: never, while calls run) or once it has had no call for a second.
  int max_connection_age_ms = 0;
  absl::Duration max_connection_age_grace = absl::InfiniteDuration();
  // TLS towards clients; both empty: plaintext (h2c). PEM certificate chain and private key; ALPN
  // selects "h2". With tls_client_ca_file as well, clients must present a certificate signed by
  // that CA (mutual TLS). Backend connections stay plaintext.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
  // Called on the front's thread once per finished call, after the output of the round of events
  // in which it ended has been handed to the kernel (null = none: call log, metrics). When
  // set and generate_request_ids, a call without an x-request-id header gets one
  // ("<request_id_prefix>-<n>"), forwarded to the backend and returned in the response headers.
  std::function<void(const FrontCallRecord&)> on_call_end;
  // Called when a call of a backend route (not the default route) starts (e.g. metrics). May be
  // null.
  std::function<void()> on_call_start;
  // Give calls without an x-request-id one (needs on_call_end to be of use).
  bool generate_request_ids = true;
  std::string request_id_prefix = "h2";
  // When non-empty, calls of the default route carry the client's address ("ipv4:<ip>:<port>", as
  // in FrontCallRecord::peer) in a request header of this name, so the server behind it can log
  // the client rather than the front's loopback connection; a client's own header of that name is
  // dropped on every route, so no client can claim another address.
  std::string client_peer_header;
  // When front_key is non-empty, calls of the default route carry it in a request header named
  // front_key_header (the server behind the front serves only calls that do: Proxy::Options), and
  // a client's own header of that name is dropped on every route.
  std::string front_key_header;
  std::string front_key;
  // Called on the front's thread after each round of events (e.g. to write the call log lines
  // on_call_end collected in one write). May be null.
  std::function<void()> on_round_end;
  // With TLS: called before each step of a client's TLS handshake, on the thread that runs the
  // handshakes (a test holds a handshake with it). May be null.
  std::function<void()> on_tls_handshake_step;
};

class H2Front {
 public:
  // Binds the listening socket, loads the TLS files and resolves the targets. INVALID_ARGUMENT
  // naming the option for an option out of its range (see FrontOptions) or TLS files given without
  // their pair, FAILED_PRECONDITION naming the file for a TLS file that cannot be loaded (or a key
  // that is not the certificate's), UNAVAILABLE when bind or a DNS resolution fails.
  static absl::StatusOr<std::unique_ptr<H2Front>> Create(const FrontOptions& options);
  ~H2Front();

  // The bound port.
  int port() const;
  // Serves until Shutdown() has drained; call from one thread only. Blocks SIGPIPE on that thread
  // (a TLS client that goes away mid-write is then an error of its connection, not the process's).
  void Run();
  // Thread-safe: stops accepting connections, sends GOAWAY to every client, lets running calls
  // finish for up to `grace`, then closes everything and makes Run() return.
  void Shutdown(absl::Duration grace);
  // Calls in flight (thread-safe, approximate).
  int active_calls() const;

  class Impl;

 private:
  explicit H2Front(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace maas::gateway::h2

#endif  // MAAS_SERVICES_GATEWAY_H2_H2_FRONT_H_
