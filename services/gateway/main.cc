// maas-gateway: wires flags into options and starts the gateway (proxy + maas.gateway.v1.Gateway).
#include <grpcpp/impl/server_builder_option.h>
#include <grpcpp/impl/server_builder_plugin.h>
#include <malloc.h>
#include <sys/random.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/health/health_board.h"
#include "common/server/flags_help.h"
#include "common/server/metrics.h"
#include "common/server/server.h"
#include "common/tls/credentials.h"
#include "services/gateway/backends.h"
#include "services/gateway/call_log.h"
#include "services/gateway/call_log_line.h"
#include "services/gateway/gateway_service.h"
#include "services/gateway/h2/h2_front.h"
#include "services/gateway/health_monitor.h"
#include "services/gateway/proxy.h"
#include "services/gateway/reflection.h"
#include "services/gateway/router.h"

ABSL_FLAG(std::string, log_file, "",
          "File the per-call JSON log lines are appended to (only those lines; banners and library "
          "messages go to stderr). Empty: stderr.");
ABSL_FLAG(int, log_flush_ms, 20,
          "The call log lines are written by their own thread at most this many ms after the call "
          "ended, so a slow disk never holds up calls (lines beyond 8 MiB waiting are dropped and "
          "counted on stderr); 0 = each line written by the thread that served the call.");
ABSL_FLAG(std::string, host, "0.0.0.0", "Address to listen on.");
ABSL_FLAG(int, port, 50051, "TCP port to listen on (0 = a free port).");
ABSL_FLAG(std::string, generative_target, "ipv4:127.0.0.1:50052",
          "gRPC target of maas.generative.v1.GenerativeService, e.g. dns:///generative:50052.");
ABSL_FLAG(std::string, discriminative_target, "ipv4:127.0.0.1:50053",
          "gRPC target of maas.discriminative.v1.DiscriminativeService.");
ABSL_FLAG(
    int, metrics_port, -1,
    "Serve Prometheus metrics on http://<host>:<port>/metrics (-1 = off, 0 = any free port).");
ABSL_FLAG(int, max_message_bytes, 64 << 20,
          "Largest message accepted from clients and from backends, in bytes.");
ABSL_FLAG(int, retry_max_attempts, 3,
          "Attempts (1..5) of an idempotent call whose backend answers UNAVAILABLE; 1 = no retry.");
ABSL_FLAG(int, keepalive_time_ms, 60000, "Keepalive ping interval on backend connections.");
ABSL_FLAG(int, health_check_interval_ms, 5000, "Time between two health checks of the backends.");
ABSL_FLAG(int, health_check_timeout_ms, 1000, "Deadline of one backend health check.");
ABSL_FLAG(int, shutdown_grace_ms, 10000, "How long in-flight calls may run after SIGTERM.");
ABSL_FLAG(int, drain_delay_ms, 0,
          "How long health reports NOT_SERVING before the gateway stops accepting calls.");
ABSL_FLAG(
    std::string, backend_tls_ca_file, "",
    "PEM CA that signs the backends' certificates: talk TLS to the backends. Empty: plaintext.");
ABSL_FLAG(
    std::string, backend_tls_cert_file, "",
    "PEM client certificate presented to the backends (mutual TLS; with --backend_tls_key_file).");
ABSL_FLAG(std::string, backend_tls_key_file, "", "PEM private key of --backend_tls_cert_file.");
ABSL_FLAG(
    int, max_concurrent_streams, 4096,
    "Proxied calls in flight at once over all client connections; more get RESOURCE_EXHAUSTED.");
ABSL_FLAG(int, max_streams_per_connection, 256,
          "Concurrent calls (HTTP/2 streams) one client connection may open; further calls wait in "
          "the client until one ends.");
ABSL_FLAG(int, stream_window_bytes, 256 * 1024,
          "HTTP/2 flow-control window per stream, both towards clients and towards backends, in "
          "bytes (>= 65535). Bounds what a stalled stream holds in the gateway.");
ABSL_FLAG(int, backend_channels, 2,
          "Channels (each with its own connections) per route; calls are spread over them.");
ABSL_FLAG(int, reconnect_backoff_max_ms, 1000,
          "Longest wait between two connection attempts to a backend that is down.");
ABSL_FLAG(int, unhealthy_check_interval_ms, 250,
          "Time between health checks while a route has no serving backend.");
ABSL_FLAG(
    int, max_connection_age_ms, 0,
    "Send GOAWAY to client connections of this age so clients re-resolve and rebalance (calls in "
    "flight finish, however long); 0 = never.");
ABSL_FLAG(
    int, proxy_threads, 1,
    "Threads forwarding calls (1..64), each serving its calls start to end: 1 costs the least "
    "CPU per call; more spread the proxy over more cores.");
ABSL_FLAG(int, handshake_timeout_ms, 20000,
          "HTTP/2 front: a client connection that has not completed its handshake (TLS, HTTP/2 "
          "preface and SETTINGS) this long after it was accepted is closed (>= 1).");
ABSL_FLAG(int, idle_timeout_ms, 3600000,
          "HTTP/2 front: a client connection without calls this long gets GOAWAY and is closed "
          "(0 = never); a call whose request headers do not all arrive within "
          "--handshake_timeout_ms closes its connection.");
ABSL_FLAG(bool, log_calls, true,
          "Write one JSON line per finished call on stderr (off saves a write per proxied call).");
ABSL_FLAG(bool, h2_front, true,
          "Serve clients with the HTTP/2 frame-forwarding front (services/gateway/h2, libnghttp2, "
          "one thread, no gRPC on the data path; plaintext, or TLS / mutual TLS with the "
          "--tls_* flags); the gateway's own services are reached through it on an internal "
          "loopback port. false: the gRPC-library proxy serves every call. With "
          "--backend_tls_ca_file the gRPC proxy serves every call (the front talks plaintext to "
          "backends), with a note on stderr.");
ABSL_FLAG(std::string, tls_cert_file, "", "PEM certificate chain (with --tls_key_file: TLS).");
ABSL_FLAG(std::string, tls_key_file, "", "PEM private key.");
ABSL_FLAG(std::string, tls_client_ca_file, "", "PEM CA of client certificates (mutual TLS).");

namespace {

// Removes gRPC's reflection plugin from a server builder.
class WithoutGrpcReflection : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments* /*args*/) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    plugins->erase(std::remove_if(plugins->begin(), plugins->end(),
                                  [](const std::unique_ptr<grpc::ServerBuilderPlugin>& p) {
                                    return p->name().find("reflection") != std::string::npos;
                                  }),
                   plugins->end());
  }
};

// The header in which the h2 front names a call's client to the gateway's own gRPC server.
constexpr char kClientPeerHeader[] = "maas-client-peer";

// The header in which the h2 front proves to the gateway's own gRPC server that a call came
// through it, and the per-process random key it holds (128 bits from the kernel; a secret, not a
// simulation: no seed).
constexpr char kFrontKeyHeader[] = "maas-front-key";
absl::StatusOr<std::string> RandomFrontKey() {
  unsigned char bytes[16];
  if (getrandom(bytes, sizeof(bytes), 0) != static_cast<ssize_t>(sizeof(bytes))) {
    return absl::InternalError("getrandom failed: cannot make the key of the HTTP/2 front");
  }
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)));
}

int Fail(const absl::Status& status) {
  std::cerr << "maas-gateway: " << status << "\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  maas::server::BlockTerminationSignals();
  maas::server::IgnoreBrokenPipes();
  absl::SetProgramUsageMessage(
      "maas gateway: routes maas.generative.v1 and maas.discriminative.v1");
  maas::server::HandleHelpFlag(argc, argv, __FILE__);
  absl::ParseCommandLine(argc, argv);
  // Debian's Abseil is built with Mutex deadlock detection on, which costs every gRPC call (gRPC's
  // own locks are absl::Mutex) a graph update: ~10% of the gateway's CPU per proxied call.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  namespace gw = maas::gateway;

  absl::StatusOr<gw::Router> router = gw::Router::Create(gw::DefaultRoutes(
      absl::GetFlag(FLAGS_generative_target), absl::GetFlag(FLAGS_discriminative_target)));
  if (!router.ok()) return Fail(router.status());

  if (absl::GetFlag(FLAGS_reconnect_backoff_max_ms) < 1) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("--reconnect_backoff_max_ms (", absl::GetFlag(FLAGS_reconnect_backoff_max_ms),
                     ") must be >= 1: the longest wait, in ms, between reconnection attempts to a "
                     "backend")));
  }
  gw::ChannelOptions channel_options;
  channel_options.retry.max_attempts = absl::GetFlag(FLAGS_retry_max_attempts);
  channel_options.max_receive_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  channel_options.keepalive_time_ms = absl::GetFlag(FLAGS_keepalive_time_ms);
  channel_options.stream_window_bytes = absl::GetFlag(FLAGS_stream_window_bytes);
  channel_options.channels_per_route = absl::GetFlag(FLAGS_backend_channels);
  channel_options.max_reconnect_backoff_ms = absl::GetFlag(FLAGS_reconnect_backoff_max_ms);
  channel_options.initial_reconnect_backoff_ms = std::min(
      channel_options.initial_reconnect_backoff_ms, channel_options.max_reconnect_backoff_ms);
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> backend_credentials =
      maas::tls::ChannelCredentialsFromFiles(
          absl::GetFlag(FLAGS_backend_tls_ca_file), absl::GetFlag(FLAGS_backend_tls_cert_file),
          absl::GetFlag(FLAGS_backend_tls_key_file),
          {"backend_tls_ca_file", "backend_tls_cert_file", "backend_tls_key_file"});
  if (!backend_credentials.ok()) return Fail(backend_credentials.status());
  channel_options.credentials = *std::move(backend_credentials);
  absl::StatusOr<std::unique_ptr<gw::Backends>> backends =
      gw::Backends::Create(*std::move(router), channel_options);
  if (!backends.ok()) return Fail(backends.status());

  const int max_streams = absl::GetFlag(FLAGS_max_concurrent_streams);
  const int per_connection = absl::GetFlag(FLAGS_max_streams_per_connection);
  const int max_connection_age_ms = absl::GetFlag(FLAGS_max_connection_age_ms);
  if (max_streams < 1 || per_connection < 1 || max_connection_age_ms < 0) {
    return Fail(absl::InvalidArgumentError(absl::StrCat(
        "--max_concurrent_streams (", max_streams, ") and --max_streams_per_connection (",
        per_connection, ") must be >= 1, --max_connection_age_ms (", max_connection_age_ms,
        ") >= 0")));
  }
  // Reflection for every service a client reaches through the gateway (gRPC's own reflection
  // would list only the registered ones), from the descriptors compiled into the gateway.
  const gw::ReflectionResponder reflection({"maas.gateway.v1.Gateway", gw::kGenerativeService,
                                            gw::kDiscriminativeService, "grpc.health.v1.Health",
                                            "grpc.reflection.v1alpha.ServerReflection"});
  if (absl::GetFlag(FLAGS_log_flush_ms) < 0) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("--log_flush_ms must be >= 0 (0 = no log thread); got ",
                     absl::GetFlag(FLAGS_log_flush_ms))));
  }
  std::ofstream log_file;
  if (!absl::GetFlag(FLAGS_log_file).empty()) {
    log_file.open(absl::GetFlag(FLAGS_log_file), std::ios::app);
    if (!log_file) {
      std::cerr << "maas-gateway: cannot open --log_file " << absl::GetFlag(FLAGS_log_file)
                << " for appending\n";
      return 1;
    }
  }
  // The proxy and the Gateway service write the call log themselves (see call_log.h: the server
  // kit's interceptor would cost every proxied call a third more CPU).
  std::optional<gw::CallLog> call_log;
  if (absl::GetFlag(FLAGS_log_calls)) {
    call_log.emplace("maas-gateway",
                     log_file.is_open() ? static_cast<std::ostream*>(&log_file) : &std::cerr,
                     absl::Milliseconds(absl::GetFlag(FLAGS_log_flush_ms)));
  }
  gw::CallLog* const log = call_log.has_value() ? &*call_log : nullptr;
  gw::Proxy::Options proxy_options;
  proxy_options.max_concurrent_calls = max_streams;
  proxy_options.reflection = &reflection;
  proxy_options.log = log;
  proxy_options.threads = absl::GetFlag(FLAGS_proxy_threads);
  if (proxy_options.threads < 1 || proxy_options.threads > 64) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("--proxy_threads must be in [1, 64], got ", proxy_options.threads)));
  }
  gw::GatewayService::Options service_options;
  service_options.health_check_timeout =
      absl::Milliseconds(absl::GetFlag(FLAGS_health_check_timeout_ms));
  service_options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  const gw::GatewayService gateway_service(backends->get(), service_options);
  // grpc.health.v1, answered by the proxy: "" follows the health monitor; the gateway's own
  // services are known (SERVING) as gRPC's health service reported its registered services.
  maas::health::HealthBoard health;
  health.Set(gw::kGatewayService, true);
  health.Set("grpc.health.v1.Health", true);
  // As the backends answer for theirs (it answered NOT_FOUND, the 2026-12-06 observability hunt).
  health.Set("grpc.reflection.v1alpha.ServerReflection", true);
  // The routed services: NOT_SERVING until the health monitor has heard from their backends.
  for (const gw::Route& r : (*backends)->router().routes()) health.Set(r.service, false);
  // No gRPC callback-API user in this process (see proxy.h): the proxy's queues serve every call.
  proxy_options.gateway = &gateway_service;
  proxy_options.health = &health;
  // The front terminates TLS towards clients itself but talks plaintext to the backends.
  const bool backend_tls = !absl::GetFlag(FLAGS_backend_tls_ca_file).empty();
  const bool h2_front = absl::GetFlag(FLAGS_h2_front) && !backend_tls;
  // Behind the front, the gateway's own services log the client the front names, not the front.
  std::string front_key;
  if (h2_front) {
    absl::StatusOr<std::string> key = RandomFrontKey();
    if (!key.ok()) return Fail(key.status());
    front_key = *std::move(key);
    proxy_options.client_peer_header = kClientPeerHeader;
    proxy_options.front_key_header = kFrontKeyHeader;
    proxy_options.front_key = front_key;
  }
  gw::Proxy proxy(backends->get(), proxy_options);

  if (absl::GetFlag(FLAGS_h2_front) && backend_tls) {
    std::cerr
        << "maas-gateway: NOTE: --backend_tls_ca_file is set and the HTTP/2 front (--h2_front, "
           "the default) talks plaintext to backends: the gRPC proxy serves every call, at "
           "about twice the CPU per call (--h2_front=false silences this note)\n";
  }
  maas::server::ServerOptions server_options;
  server_options.name = "maas-gateway";
  // With the h2 front, the gRPC server is reached only through it, on a loopback port.
  server_options.host = h2_front ? "127.0.0.1" : absl::GetFlag(FLAGS_host);
  server_options.port = h2_front ? 0 : absl::GetFlag(FLAGS_port);
  server_options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  server_options.metrics_port = absl::GetFlag(FLAGS_metrics_port);
  if (h2_front) server_options.metrics_host = absl::GetFlag(FLAGS_host);
  // No interceptor log lines: the gateway writes its own (metrics, when on, still use the kit's).
  server_options.log_stream = nullptr;
  server_options.shutdown_grace = absl::Milliseconds(absl::GetFlag(FLAGS_shutdown_grace_ms));
  server_options.drain_delay =
      h2_front ? absl::ZeroDuration() : absl::Milliseconds(absl::GetFlag(FLAGS_drain_delay_ms));
  // With the front, TLS ends in the front; the gRPC server behind it is on loopback, plaintext.
  if (!h2_front) {
    server_options.tls_cert_file = absl::GetFlag(FLAGS_tls_cert_file);
    server_options.tls_key_file = absl::GetFlag(FLAGS_tls_key_file);
    server_options.tls_client_ca_file = absl::GetFlag(FLAGS_tls_client_ca_file);
  }
  const int stream_window = channel_options.stream_window_bytes;
  server_options.generic_service_in_configure_builder = true;
  // Behind the front, the server's clients are the front's few loopback connections, which carry
  // every default-route call (health checks, Gateway, reflection) of every client: at
  // per_connection streams each, the 513th health Watch queued the next health Check without end
  // (a liveness probe then restarts the gateway). The front limits calls itself.
  const int server_streams = h2_front ? max_streams : per_connection;
  server_options.configure_builder = [server_streams, stream_window, max_connection_age_ms,
                                      &proxy](grpc::ServerBuilder& builder) {
    proxy.Register(builder);
    // The gateway answers reflection itself (gw::ReflectionResponder through the proxy).
    builder.SetOption(std::make_unique<WithoutGrpcReflection>());
    builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, server_streams);
    // The client side of flow control: a fixed window, so a fast client writing a stream the
    // backend reads slowly cannot park more than this in the gateway.
    builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    builder.AddChannelArgument(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, stream_window);
    if (max_connection_age_ms > 0) {  // calls in flight finish (gRPC's default grace: infinite)
      builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, max_connection_age_ms);
    }
  };
  absl::StatusOr<std::unique_ptr<maas::server::Server>> server =
      maas::server::Server::Start(server_options, {});
  if (!server.ok()) {
    proxy.Shutdown();
    return Fail(server.status());
  }
  proxy.Start();
  maas::server::Server* const s = server->get();

  gw::HealthMonitor::Options monitor_options;
  monitor_options.interval = absl::Milliseconds(absl::GetFlag(FLAGS_health_check_interval_ms));
  monitor_options.timeout = absl::Milliseconds(absl::GetFlag(FLAGS_health_check_timeout_ms));
  monitor_options.unhealthy_interval =
      absl::Milliseconds(absl::GetFlag(FLAGS_unhealthy_check_interval_ms));
  std::optional<bool> last_serving;  // only touched by the monitor (Start, then its thread)
  gw::HealthMonitor monitor(
      backends->get(), monitor_options,
      [s, &last_serving, &proxy, &health, backends = backends->get()](
          bool serving, const std::vector<gw::HealthResult>& results) {
        s->SetServing("", serving);
        // Each routed service's name answers its backend's health, as the backends answer it.
        const std::vector<gw::Route>& routes = backends->router().routes();
        for (size_t i = 0; i < results.size() && i < routes.size(); ++i) {
          health.Set(routes[i].service, results[i].health == maas::gateway::v1::SERVING);
        }
        // Give the memory of finished streams back to the system when the gateway is idle
        // (glibc keeps freed pages in its arenas otherwise).
        if (proxy.active_calls() == 0) malloc_trim(0);
        if (last_serving == serving || results.empty()) return;
        last_serving = serving;
        std::vector<std::string> details;
        for (const gw::HealthResult& r : results) {
          if (!r.detail.empty()) details.push_back(r.detail);
        }
        // One write: the line must not split the ready line printed at the same time.
        std::cerr << absl::StrCat(
            "maas-gateway: health ", serving ? "SERVING" : "NOT_SERVING",
            details.empty() ? "" : absl::StrCat(" (", absl::StrJoin(details, "; "), ")"), "\n");
      });
  if (absl::Status st = monitor.Start(); !st.ok()) {
    s->Shutdown();
    proxy.Shutdown();
    return Fail(st);
  }

  if (!h2_front) {
    maas::server::ServeUntilTerminated(
        *s, "maas.gateway.v1.Gateway and the maas.generative.v1 / maas.discriminative.v1 routes",
        // Stop the monitor first so it cannot mark the server SERVING again during the drain.
        [&monitor] { monitor.Stop(); });
    proxy.Shutdown();  // the server has shut down; drain the proxy before the server is destroyed
    return 0;
  }

  // The h2 front owns the public port: the two backend routes go straight to the backends, every
  // other call (health, reflection, maas.gateway.v1.Gateway, unknown services) to the gRPC server.
  gw::h2::FrontOptions front_options;
  front_options.listen_host = absl::GetFlag(FLAGS_host);
  front_options.listen_port = absl::GetFlag(FLAGS_port);
  for (const gw::Route& r : (*backends)->router().routes()) {
    front_options.routes.push_back(
        {r.service, r.target, r.non_idempotent_methods, gw::SingleResponseMethods(r.service)});
  }
  front_options.default_target = absl::StrCat("ipv4:127.0.0.1:", s->port());
  front_options.backend_connections = absl::GetFlag(FLAGS_backend_channels);
  front_options.max_streams_per_connection = per_connection;
  front_options.max_concurrent_calls = max_streams;
  front_options.stream_window_bytes = stream_window;
  front_options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  front_options.retry_max_attempts = absl::GetFlag(FLAGS_retry_max_attempts);
  // >= 1 here: a smaller --reconnect_backoff_max_ms was refused above.
  front_options.reconnect_backoff_ms = absl::GetFlag(FLAGS_reconnect_backoff_max_ms);
  front_options.handshake_timeout_ms = absl::GetFlag(FLAGS_handshake_timeout_ms);
  front_options.idle_timeout_ms = absl::GetFlag(FLAGS_idle_timeout_ms);
  front_options.max_connection_age_ms = max_connection_age_ms;
  front_options.keepalive_time_ms = channel_options.keepalive_time_ms;
  front_options.keepalive_timeout_ms = channel_options.keepalive_timeout_ms;
  front_options.tls_cert_file = absl::GetFlag(FLAGS_tls_cert_file);
  front_options.tls_key_file = absl::GetFlag(FLAGS_tls_key_file);
  front_options.tls_client_ca_file = absl::GetFlag(FLAGS_tls_client_ca_file);
  front_options.client_peer_header = kClientPeerHeader;
  front_options.front_key_header = kFrontKeyHeader;
  front_options.front_key = front_key;
  // The front's call log lines of one round of events go out in one write (only the front's thread
  // touches `pending_lines`; CallLog serializes with the gRPC server's own lines).
  std::string pending_lines;
  gw::CallLogLineFormatter line_formatter;  // the lines of FormatCallLogLine, cheaper
  maas::server::ServerMetrics* const metrics = s->metrics();
  if (log != nullptr || metrics != nullptr) {
    front_options.generate_request_ids = log != nullptr;
    front_options.request_id_prefix = absl::StrCat("h2-", getpid());
    if (metrics != nullptr) front_options.on_call_start = [metrics] { metrics->CallStarted(); };
    // Calls of the default route are logged and counted by the gRPC server behind it.
    front_options.on_call_end = [&pending_lines, &line_formatter, log,
                                 metrics](const gw::h2::FrontCallRecord& r) {
      if (r.default_route) return;
      const auto code = static_cast<grpc::StatusCode>(r.code);
      const std::string_view method(r.method.data(), r.method.size());
      const std::string_view model(r.model.data(), r.model.size());
      if (metrics != nullptr) {
        if (!r.started) metrics->CallStarted();  // refused before it was routed: in flight for none
        metrics->CallFinished(method, code, r.duration, model, r.documents, r.samples);
      }
      if (log == nullptr) return;
      maas::server::CallLogEntry entry;
      entry.ts = absl::Now();
      entry.server = "maas-gateway";
      entry.method = method;
      entry.code = maas::server::StatusCodeName(code);
      entry.duration = r.duration;
      entry.peer = std::string_view(r.peer.data(), r.peer.size());
      entry.message = std::string_view(r.message.data(), std::min<size_t>(r.message.size(), 512));
      entry.model = model;
      entry.model_version = r.model_version;
      entry.request_id = std::string_view(r.request_id.data(), r.request_id.size());
      line_formatter.Append(entry, &pending_lines);
    };
    if (log != nullptr) {
      front_options.on_round_end = [&pending_lines, log] {
        if (pending_lines.empty()) return;
        log->WriteLines(pending_lines);
        pending_lines.clear();
      };
    }
  }
  absl::StatusOr<std::unique_ptr<gw::h2::H2Front>> front = gw::h2::H2Front::Create(front_options);
  if (!front.ok()) {
    monitor.Stop();
    s->Shutdown();
    proxy.Shutdown();
    return Fail(absl::Status(
        front.status().code(),
        absl::StrCat("the HTTP/2 front (--h2_front; flags --host, --port, the targets, "
                     "--max_message_bytes and the stream limits): ",
                     front.status().message())));
  }
  std::thread front_thread([&front] { (*front)->Run(); });
  std::cerr << absl::StrCat(
                   "maas-gateway: serving maas.gateway.v1.Gateway and the maas.generative.v1 / "
                   "maas.discriminative.v1 routes (h2 front",
                   absl::GetFlag(FLAGS_tls_cert_file).empty()        ? ""
                   : absl::GetFlag(FLAGS_tls_client_ca_file).empty() ? ", TLS"
                                                                     : ", mutual TLS",
                   ") on port ", (*front)->port(),
                   s->metrics_port() >= 0
                       ? absl::StrCat(" (metrics: http://",
                                      maas::server::FormatAddress(absl::GetFlag(FLAGS_host),
                                                                  s->metrics_port()),
                                      "/metrics)")
                       : "",
                   "\n")
            << std::flush;
  maas::server::WaitForTerminationSignal();
  monitor.Stop();
  // Drain: NOT_SERVING while calls are still accepted, then GOAWAY and the calls in flight finish.
  health.Shutdown();
  absl::SleepFor(absl::Milliseconds(absl::GetFlag(FLAGS_drain_delay_ms)));
  (*front)->Shutdown(absl::Milliseconds(absl::GetFlag(FLAGS_shutdown_grace_ms)));
  // The gRPC server drains at the same time: it ends its endless calls (health Watch streams)
  // itself, which the front would otherwise wait for until the grace ran out.
  s->Shutdown();
  front_thread.join();
  proxy.Shutdown();
  return 0;
}
