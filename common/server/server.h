// The shared gRPC server bootstrap every maas binary uses.
//
//   int main(int argc, char** argv) {
//     maas::server::BlockTerminationSignals();          // first, before any thread starts
//     ... parse flags into ServerOptions, build the services ...
//     auto server = maas::server::Server::Start(options, {&generative_service});
//     if (!server.ok()) { std::cerr << server.status() << "\n"; return 1; }
//     maas::server::WaitForTerminationSignal();         // SIGINT / SIGTERM
//     (*server)->Shutdown();                            // graceful
//     (*server)->Wait();
//   }
//
// Every server gets: the listening port (0 = a free one, see port()), message size limits,
// grpc.health.v1
// ("" and each registered service SERVING), server reflection, one JSON log line per finished call
// (never the payload), optional TLS / mutual TLS, and a graceful Shutdown().
#ifndef MAAS_COMMON_SERVER_SERVER_H_
#define MAAS_COMMON_SERVER_SERVER_H_

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/support/server_interceptor.h>

#include <functional>
#include <iostream>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/health/health_board.h"
#include "common/server/metrics.h"

namespace maas::server {

// Largest request metadata a server built here takes (GRPC_ARG_MAX_METADATA_SIZE): above the 64
// KiB header list the gateway's HTTP/2 front forwards.
inline constexpr int kMaxMetadataBytes = 96 * 1024;

struct ServerOptions {
  // Address to listen on ("0.0.0.0", "::", "127.0.0.1", "localhost", ...). IPv6 literals need no
  // brackets.
  std::string host = "0.0.0.0";
  // TCP port, 0..65535. 0 = let the OS pick a free port (read it back with Server::port()).
  int port = 0;
  // Largest message received or sent, in bytes (> 0). Larger requests fail with RESOURCE_EXHAUSTED.
  int max_message_bytes = 64 << 20;
  // Shutdown(): how long in-flight calls may run after the server stops accepting, before being
  // cancelled.
  absl::Duration shutdown_grace = absl::Seconds(10);
  // Shutdown(): how long health reports NOT_SERVING while calls are still accepted, so load
  // balancers and probes can drain the server before it stops accepting. 0 = stop accepting at
  // once.
  absl::Duration drain_delay = absl::ZeroDuration();
  // Name in the log lines, e.g. "generative".
  std::string name;
  // Where the per-call JSON lines go; null = no logging. Not owned; must outlive the server.
  std::ostream* log_stream = &std::cerr;
  // > 0: the lines are written by a thread of their own (server::LineWriter), at most this long
  // after each call ends, so a slow or stalled log output never holds up a call (lines beyond the
  // writer's buffer are dropped and counted on stderr); 0: each line written by the thread that
  // ends the call, before the call's resources are released.
  absl::Duration log_flush_interval = absl::ZeroDuration();
  // Prometheus /metrics over HTTP on this port of `host`: -1 = off, 0 = pick a free port (read it
  // back with Server::metrics_port()).
  int metrics_port = -1;
  // Address /metrics listens on; empty = `host` (maas-gateway --h2_front: the server itself listens
  // on loopback behind the front, its metrics on the public address).
  std::string metrics_host;
  // TLS: PEM files. Both empty = plaintext (insecure). Both set = TLS.
  std::string tls_cert_file;
  std::string tls_key_file;
  // PEM file of the CA that signs client certificates. Set = mutual TLS (clients must present a
  // valid certificate). Requires tls_cert_file and tls_key_file.
  std::string tls_client_ca_file;
  // Connections older than this get GOAWAY, so clients such as the gateway re-resolve DNS and
  // spread over replicas added since; the calls in flight on them finish, however long they run.
  // 0 = never.
  absl::Duration max_connection_age = absl::ZeroDuration();
  // Called on the builder after the kit's own settings, before the server starts: lets a binary add
  // channel arguments (e.g. the gateway's per-connection stream cap and flow-control window) or
  // builder options. Empty = nothing.
  std::function<void(grpc::ServerBuilder&)> configure_builder;
  // True when configure_builder registers the server's generic service itself (e.g. the gateway's
  // proxy on gRPC's asynchronous API): the kit then registers none (gRPC takes only one), so
  // unknown methods are that service's to answer.
  bool generic_service_in_configure_builder = false;
};

// Checks ranges and file combinations (not that the files exist). INVALID_ARGUMENT naming the
// option.
absl::Status ValidateServerOptions(const ServerOptions& options);

// "host:port", with brackets around IPv6 literals.
std::string FormatAddress(std::string_view host, int port);

// One running gRPC server. Thread-safe.
class Server {
 public:
  // Builds and starts a server with `services` (not owned; must outlive the server) and an optional
  // generic service (e.g. the gateway's proxy). INVALID_ARGUMENT for bad options,
  // FAILED_PRECONDITION if a TLS file cannot be read, UNAVAILABLE (naming the address) if the port
  // cannot be bound.
  static absl::StatusOr<std::unique_ptr<Server>> Start(
      const ServerOptions& options, std::vector<grpc::Service*> services,
      grpc::CallbackGenericService* generic = nullptr);

  // Shuts down (gracefully) and waits.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The bound port (the chosen one when options.port was 0).
  int port() const { return port_; }
  // ServerOptions::name (for log and ready lines).
  const std::string& name() const { return options_.name; }
  // ServerOptions::host.
  const std::string& host() const { return options_.host; }
  // The port /metrics is served on; -1 when metrics are off.
  int metrics_port() const { return metrics_ == nullptr ? -1 : metrics_->port(); }
  // The server's metrics (null when off), for metrics of a service's own.
  ServerMetrics* metrics() { return metrics_.get(); }
  // "host:port" of the bound address, usable as a client target when host is concrete.
  const std::string& address() const { return address_; }

  // Health status of `service` ("" = the whole server). Ignored after Shutdown() began.
  void SetServing(std::string_view service, bool serving);

  // Graceful shutdown: health NOT_SERVING for everything, wait drain_delay, stop accepting calls,
  // let in-flight calls finish for up to shutdown_grace, then cancel the rest. Blocks until done.
  // Idempotent; safe to call from any thread (not from inside a handler).
  void Shutdown();

  // Blocks until the server has shut down (by Shutdown() from another thread).
  void Wait();

  grpc::Server* grpc_server() { return server_.get(); }

  // Names of the registered services (full proto names, e.g.
  // "maas.generative.v1.GenerativeService"), including the health and reflection services (health
  // only when the server kit serves it: no generic service given).
  const std::vector<std::string>& service_names() const { return service_names_; }

 private:
  Server() = default;

  ServerOptions options_;
  std::unique_ptr<ServerMetrics> metrics_;  // outlives server_ (declared first, destroyed last)
  // grpc.health.v1's statuses when the kit serves it (health_service.h); outlives server_.
  std::unique_ptr<health::HealthBoard> health_board_;
  // Answers unknown methods when no generic service was given; outlives server_.
  std::unique_ptr<grpc::CallbackGenericService> unknown_methods_;
  std::unique_ptr<grpc::Server> server_;
  std::vector<std::string> service_names_;
  int port_ = 0;
  std::string address_;
  absl::Mutex shutdown_mu_;
  bool shut_down_ ABSL_GUARDED_BY(shutdown_mu_) = false;
};

// Blocks SIGINT and SIGTERM in the calling thread; threads started afterwards inherit the mask.
// Call it first thing in main(), before any thread starts, so WaitForTerminationSignal() receives
// the signals.
void BlockTerminationSignals();

// Ignores SIGPIPE for the whole process: a write to a pipe or socket whose reader went away (a log
// shipper that restarted, a closed `| tee`) fails with EPIPE instead of killing the server.
// Sockets gRPC writes are not affected (it sends with MSG_NOSIGNAL); stderr is. Call it in main().
void IgnoreBrokenPipes();

// Waits (sigwait) for SIGINT or SIGTERM and returns the signal number. Requires
// BlockTerminationSignals().
int WaitForTerminationSignal();

// The tail of every main(): prints the ready line "<options.name>: serving <what> on port <N>" on
// stderr (scripts and tests wait for it), blocks until SIGINT or SIGTERM, runs `before_shutdown`
// (may be empty; e.g. stop a health monitor) and shuts the server down gracefully. Returns the
// signal number. REQUIRES: BlockTerminationSignals() was called before any thread started.
int ServeUntilTerminated(Server& server, std::string_view what,
                         const std::function<void()>& before_shutdown = {});

// One finished call, as logged.
struct CallLogEntry {
  absl::Time ts;
  std::string_view server;
  std::string_view method;
  std::string_view code;
  absl::Duration duration;
  std::string_view peer;
  // The status message (never a payload); at most 512 bytes are logged. Empty: left out.
  std::string_view message;
  // The model the call used (the maas-model-name / maas-model-version trailers the adapters send).
  // Empty / 0: left out.
  std::string_view model;
  int64_t model_version = 0;
  // The x-request-id of the call (the client's, or the one the server generated and returned in
  // the initial metadata). Empty: left out.
  std::string_view request_id;
};

// The per-call JSON log line: {"ts":"<RFC3339>","server":"<name>","method":"/pkg.Service/Method",
// "code":"OK","duration_ms":1.234,"peer":"ipv4:127.0.0.1:5555","message":"...","model":"m",
// "model_version":3,"request_id":"..."} (the last four only when known). Strings are escaped and
// invalid UTF-8 replaced, so every line is valid JSON. Exposed for tests.
std::string FormatCallLogLine(const CallLogEntry& entry);
std::string FormatCallLogLine(absl::Time ts, std::string_view server, std::string_view method,
                              std::string_view code, absl::Duration duration,
                              std::string_view peer);

// Metadata key of the request id (read from the client; generated and returned when absent).
inline constexpr char kRequestIdKey[] = "x-request-id";

// The canonical name of a gRPC status code ("OK", "INVALID_ARGUMENT", ...).
std::string_view StatusCodeName(grpc::StatusCode code);

}  // namespace maas::server

#endif  // MAAS_COMMON_SERVER_SERVER_H_
