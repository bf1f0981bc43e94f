#include "common/server/server.h"

#include <grpcpp/ext/health_check_service_server_builder_option.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/impl/server_builder_option.h>
#include <grpcpp/impl/server_builder_plugin.h>
#include <grpcpp/impl/server_initializer.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/support/interceptor.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <limits>
#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "common/adapter/call_deadline.h"
#include "common/adapter/grpc_order.h"
#include "common/server/health_service.h"
#include "common/server/line_writer.h"
#include "common/status/status_macros.h"
#include "common/tls/credentials.h"

namespace maas::server {
namespace {

absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// ---- Service names, captured from the server through a builder plugin
// ------------------------------

class ServiceListPlugin : public grpc::ServerBuilderPlugin {
 public:
  explicit ServiceListPlugin(std::shared_ptr<std::vector<std::string>> out)
      : out_(std::move(out)) {}
  std::string name() override { return "maas_service_list"; }
  void InitServer(grpc::ServerInitializer* /*si*/) override {}
  void Finish(grpc::ServerInitializer* si) override { *out_ = *si->GetServiceList(); }
  void ChangeArguments(const std::string& /*name*/, void* /*value*/) override {}

 private:
  std::shared_ptr<std::vector<std::string>> out_;
};

class ServiceListOption : public grpc::ServerBuilderOption {
 public:
  explicit ServiceListOption(std::shared_ptr<std::vector<std::string>> out)
      : out_(std::move(out)) {}
  void UpdateArguments(grpc::ChannelArguments* /*args*/) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    plugins->push_back(std::make_unique<ServiceListPlugin>(out_));
  }

 private:
  std::shared_ptr<std::vector<std::string>> out_;
};

// ---- Per-call JSON log
// -------------------------------------------------------------------------------

// Where finished calls are reported: the JSON log (when `out` is set) and the metrics (when set).
struct LogSink {
  std::string server;
  std::unique_ptr<LineWriter> out;
  ServerMetrics* metrics = nullptr;
  // Generated request ids: "<prefix>-<counter>", the prefix unique per process start.
  std::string id_prefix;
  std::atomic<uint64_t> next_id{1};

  // One write per line (std::cerr is unit-buffered: `<< line << '\n'` would be two system calls),
  // or a part of one of the writer's thread.
  void Write(std::string line) {
    line.push_back('\n');
    out->Write(line);
  }
};

class CallLogInterceptor : public grpc::experimental::Interceptor {
 public:
  CallLogInterceptor(std::shared_ptr<LogSink> sink, grpc::experimental::ServerRpcInfo* info)
      : sink_(std::move(sink)),
        info_(info),
        method_(info->method() != nullptr ? info->method() : ""),
        start_(absl::Now()) {
    if (sink_->metrics != nullptr) sink_->metrics->CallStarted();
  }

  ~CallLogInterceptor() override {
    adapter::GrpcDone(this);
    const absl::Time end = sent_status_ ? end_ : absl::Now();
    grpc::StatusCode code = sent_status_ ? code_ : grpc::StatusCode::CANCELLED;
    if (gone_.has_value() && code != grpc::StatusCode::CANCELLED &&
        code != grpc::StatusCode::DEADLINE_EXCEEDED) {
      // The client left before the answer reached it (it cancelled, or its deadline passed): that
      // is what it was told. What the server answered, too late, stays in the message.
      const std::string answered = sent_status_
                                       ? absl::StrCat(" (the server's answer, not delivered: ",
                                                      std::string(StatusCodeName(code)),
                                                      message_.empty() ? "" : ": ", message_, ")")
                                       : "";
      code = static_cast<grpc::StatusCode>(gone_->code());
      message_ = absl::StrCat(gone_->message(), answered).substr(0, 512);
    }
    if (sink_->out != nullptr) {
      CallLogEntry entry;
      entry.ts = end;
      entry.server = sink_->server;
      entry.method = method_;
      entry.code = StatusCodeName(code);
      entry.duration = end - start_;
      entry.peer = peer_;
      entry.message = message_;
      entry.model = model_;
      entry.model_version = model_version_;
      entry.request_id = request_id_;
      sink_->Write(FormatCallLogLine(entry));
    }
    if (sink_->metrics != nullptr) {
      sink_->metrics->CallFinished(method_, code, end - start_, model_, documents_, samples_);
    }
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      CapturePeer();
      if (auto* metadata = methods->GetRecvInitialMetadata()) {
        auto it = metadata->find(kRequestIdKey);
        if (it != metadata->end()) {
          // The client's id, bounded and printable (it goes into every log line).
          for (char c :
               std::string_view(it->second.data(), std::min<size_t>(it->second.size(), 128))) {
            if (c > 0x20 && c < 0x7f) request_id_.push_back(c);
          }
        }
      }
      if (request_id_.empty()) {
        request_id_ = absl::StrCat(sink_->id_prefix, "-", sink_->next_id.fetch_add(1));
        generated_id_ = true;
        // The handler sees it as if the client had sent it, so a proxy (the gateway) forwards it
        // and the backend logs the same id instead of making its own. request_id_ is not changed
        // again, and this interceptor lives as long as the call.
        if (auto* metadata = methods->GetRecvInitialMetadata()) {
          metadata->emplace(grpc::string_ref(kRequestIdKey),
                            grpc::string_ref(request_id_.data(), request_id_.size()));
        }
      }
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      // Return the id the log line carries, so a client can quote it.
      if (generated_id_) methods->GetSendInitialMetadata()->emplace(kRequestIdKey, request_id_);
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_CLOSE)) {
      // The call is over; IsCancelled() is now final: whether it ended before the server's
      // status reached the client. Only asked of callback calls (the services' methods): on a
      // synchronous call (health, reflection) IsCancelled() completes this very hook again.
      auto* context = dynamic_cast<grpc::CallbackServerContext*>(info_->server_context());
      if (context != nullptr && context->IsCancelled()) {
        gone_ = adapter::CallGone(*context, start_,
                                  "the client cancelled the call before its answer was sent",
                                  "the call's deadline passed before its answer was sent");
      }
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      CapturePeer();
      const grpc::Status status = methods->GetSendStatus();
      code_ = status.error_code();
      message_ = status.error_message().substr(0, 512);
      if (auto* trailers = methods->GetSendTrailingMetadata()) {
        auto name = trailers->find("maas-model-name");
        if (name != trailers->end()) model_ = name->second.substr(0, 128);
        for (auto [key, out] : {std::pair<const char*, int64_t*>{"maas-documents", &documents_},
                                {"maas-samples", &samples_}}) {
          auto found = trailers->find(key);
          if (found != trailers->end() && !absl::SimpleAtoi(found->second, out)) *out = 0;
        }
        auto version = trailers->find("maas-model-version");
        if (version != trailers->end()) {
          int64_t v = 0;
          if (absl::SimpleAtoi(version->second, &v)) model_version_ = v;
        }
      }
      sent_status_ = true;
      end_ = absl::Now();
    }
    // gRPC destroys the interceptor after every hook has returned (ordered inside its core).
    adapter::GrpcOperation(this);
    methods->Proceed();
  }

 private:
  void CapturePeer() {
    if (!peer_.empty()) return;
    grpc::ServerContextBase* context = info_->server_context();
    if (context != nullptr) peer_ = context->peer();
  }

  std::shared_ptr<LogSink> sink_;
  grpc::experimental::ServerRpcInfo* info_;
  std::string method_;
  std::string peer_;
  std::string request_id_;
  bool generated_id_ = false;
  std::string message_;
  std::string model_;
  int64_t model_version_ = 0;
  int64_t documents_ = 0;
  int64_t samples_ = 0;
  absl::Time start_;
  absl::Time end_;
  bool sent_status_ = false;
  grpc::StatusCode code_ = grpc::StatusCode::UNKNOWN;
  std::optional<absl::Status> gone_;  // the call ended before its status reached the client
};

class CallLogInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit CallLogInterceptorFactory(std::shared_ptr<LogSink> sink) : sink_(std::move(sink)) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new CallLogInterceptor(sink_, info);
  }

 private:
  std::shared_ptr<LogSink> sink_;
};

// Length of the valid UTF-8 sequence starting at s[i], or 0 when it is not one.
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  size_t n = 0;
  uint32_t cp = 0;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2, cp = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3, cp = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4, cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3f);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
      (cp >= 0xd800 && cp <= 0xdfff)) {
    return 0;
  }
  return n;
}

void AppendJsonString(std::string* out, std::string_view s) {
  out->push_back('"');
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (static_cast<unsigned char>(c) >= 0x80) {  // copy valid UTF-8, replace the rest
      const size_t n = Utf8SequenceLength(s, i);
      if (n == 0) {
        out->append("\\ufffd");
      } else {
        out->append(s.substr(i, n));
        i += n - 1;
      }
      continue;
    }
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppendFormat(out, "\\u%04x", static_cast<unsigned char>(c));
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

// Answers methods no registered service has: UNIMPLEMENTED naming the method and what this server
// serves (instead of gRPC's empty UNIMPLEMENTED), e.g. a discriminative call sent to the
// generative service.
// Also answers grpc.health.v1 Check and Watch from `health` (health_service.h).
class UnknownMethodService final : public grpc::CallbackGenericService {
 public:
  UnknownMethodService(std::string server, std::shared_ptr<std::vector<std::string>> services,
                       health::HealthBoard* health)
      : server_(std::move(server)), services_(std::move(services)), health_(health) {}

  grpc::ServerGenericBidiReactor* CreateReactor(
      grpc::GenericCallbackServerContext* context) override {
    if (IsHealthMethod(context->method())) return NewHealthReactor(context->method(), health_);
    std::vector<std::string> maas;
    for (const std::string& name : *services_) {
      if (absl::StartsWith(name, "maas.")) maas.push_back(name);
    }
    std::string method = context->method().substr(0, 200);
    for (char& c : method) {
      if (c < 0x20 || c > 0x7e) c = '?';
    }
    return new adapter::EndedReactor<grpc::ServerGenericBidiReactor>(grpc::Status(
        grpc::StatusCode::UNIMPLEMENTED,
        absl::StrCat("method ", method, " is not served by ", server_, ", which serves ",
                     maas.empty() ? std::string("no maas service") : absl::StrJoin(maas, ", "),
                     " (and grpc.health.v1.Health); send it to the server that serves its "
                     "service, or to the gateway, which routes every maas service")));
  }

 private:
  std::string server_;
  std::shared_ptr<std::vector<std::string>> services_;
  health::HealthBoard* const health_;
};

}  // namespace

std::string_view StatusCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    case grpc::StatusCode::DO_NOT_USE:
      break;
  }
  return "UNKNOWN";
}

std::string FormatCallLogLine(absl::Time ts, std::string_view server, std::string_view method,
                              std::string_view code, absl::Duration duration,
                              std::string_view peer) {
  CallLogEntry entry;
  entry.ts = ts;
  entry.server = server;
  entry.method = method;
  entry.code = code;
  entry.duration = duration;
  entry.peer = peer;
  return FormatCallLogLine(entry);
}

std::string FormatCallLogLine(const CallLogEntry& entry) {
  const absl::Time ts = entry.ts;
  const std::string_view server = entry.server, method = entry.method, code = entry.code,
                         peer = entry.peer;
  const absl::Duration duration = entry.duration;
  std::string line = "{\"ts\":";
  AppendJsonString(&line, absl::FormatTime(absl::RFC3339_full, ts, absl::UTCTimeZone()));
  line.append(",\"server\":");
  AppendJsonString(&line, server);
  line.append(",\"method\":");
  AppendJsonString(&line, method);
  line.append(",\"code\":");
  AppendJsonString(&line, code);
  absl::StrAppendFormat(&line, ",\"duration_ms\":%.3f", absl::ToDoubleMilliseconds(duration));
  line.append(",\"peer\":");
  AppendJsonString(&line, peer);
  if (!entry.message.empty()) {
    line.append(",\"message\":");
    AppendJsonString(&line, entry.message);
  }
  if (!entry.model.empty()) {
    line.append(",\"model\":");
    AppendJsonString(&line, entry.model);
  }
  if (entry.model_version > 0) absl::StrAppend(&line, ",\"model_version\":", entry.model_version);
  if (!entry.request_id.empty()) {
    line.append(",\"request_id\":");
    AppendJsonString(&line, entry.request_id);
  }
  line.push_back('}');
  return line;
}

std::string FormatAddress(std::string_view host, int port) {
  const bool ipv6_literal =
      host.find(':') != std::string_view::npos && (host.empty() || host.front() != '[');
  if (ipv6_literal) return absl::StrCat("[", Sv(host), "]:", port);
  return absl::StrCat(Sv(host), ":", port);
}

absl::Status ValidateServerOptions(const ServerOptions& options) {
  if (options.metrics_port < -1 || options.metrics_port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics_port must be -1 (off), 0 (any free port) or a port up to 65535; got ",
                     options.metrics_port));
  }
  if (options.host.empty()) return absl::InvalidArgumentError("host is empty");
  if (options.port < 0 || options.port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("port ", options.port, " is out of range [0, 65535] (0 = pick a free port)"));
  }
  if (options.max_message_bytes <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_message_bytes must be > 0, got ", options.max_message_bytes));
  }
  if (options.shutdown_grace < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("shutdown_grace must be >= 0");
  }
  if (options.max_connection_age < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("max_connection_age must be >= 0 (0 = never)");
  }
  if (options.drain_delay < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("drain_delay must be >= 0");
  }
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "tls_cert_file and tls_key_file must be given together (both empty = plaintext)");
  }
  if (!options.tls_client_ca_file.empty() && options.tls_cert_file.empty()) {
    return absl::InvalidArgumentError(
        "tls_client_ca_file (mutual TLS) needs tls_cert_file and tls_key_file");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const ServerOptions& options,
                                                      std::vector<grpc::Service*> services,
                                                      grpc::CallbackGenericService* generic) {
  if (absl::Status valid = ValidateServerOptions(options); !valid.ok()) return valid;
  auto credentials = tls::ServerCredentialsFromFiles(options.tls_cert_file, options.tls_key_file,
                                                     options.tls_client_ca_file);
  // Checks the files too: gRPC alone would only fail to bind the port ("port in use").
  if (!credentials.ok()) return credentials.status();

  // Both are process-wide switches of gRPC (idempotent); every maas server wants them.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  std::unique_ptr<Server> server(new Server());
  server->options_ = options;
  const std::string address = FormatAddress(options.host, options.port);
  int selected_port = 0;
  auto names = std::make_shared<std::vector<std::string>>();

  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, *credentials, &selected_port);
  // A port already in use is an error, not silently shared with another process.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Accept keepalive pings from clients and the gateway (every >= 10 s, also on idle connections),
  // so a client's keepalive never gets a connection closed with "too_many_pings".
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  // Compressed requests are refused (UNIMPLEMENTED, from the grpc-encoding header, before any
  // message is read): gRPC 1.51 inflates a whole message before it compares its size with the
  // limit above, so a 0.9 MB gzip request took a server with a 1 MiB limit to 977 MB, and one
  // within the default 64 MiB could inflate to ~64 GB. No maas client compresses.
  builder.SetCompressionAlgorithmSupportStatus(GRPC_COMPRESS_DEFLATE, false);
  builder.SetCompressionAlgorithmSupportStatus(GRPC_COMPRESS_GZIP, false);
  // Request metadata up to what the gateway's HTTP/2 front forwards (64 KiB of header list, plus
  // the headers it adds): at gRPC's default 8 KiB the server refused such calls at random or
  // dropped the connection, and behind the front that connection carries other clients' calls
  // (one client's 8 KiB of metadata failed health checks and calls of everyone).
  builder.AddChannelArgument(GRPC_ARG_MAX_METADATA_SIZE, kMaxMetadataBytes);
  builder.SetOption(std::make_unique<ServiceListOption>(names));
  for (grpc::Service* service : services) {
    if (service == nullptr) return absl::InvalidArgumentError("a registered service is null");
    builder.RegisterService(service);
  }
  if (generic != nullptr) {
    builder.RegisterCallbackGenericService(generic);
  } else if (!options.generic_service_in_configure_builder) {
    // grpc.health.v1 from the kit's own board instead of gRPC's default service (which kept Watch
    // streams open through a shutdown's whole grace period), answered by the generic service.
    server->health_board_ = std::make_unique<health::HealthBoard>();
    builder.SetOption(std::make_unique<grpc::HealthCheckServiceServerBuilderOption>(
        std::make_unique<BoardHealthService>(server->health_board_.get())));
    server->unknown_methods_ =
        std::make_unique<UnknownMethodService>(options.name, names, server->health_board_.get());
    builder.RegisterCallbackGenericService(server->unknown_methods_.get());
  }
  if (options.metrics_port >= 0) {
    MAAS_ASSIGN_OR_RETURN(
        server->metrics_,
        ServerMetrics::Start(options.metrics_host.empty() ? options.host : options.metrics_host,
                             options.metrics_port, options.name));
  }
  if (options.log_stream != nullptr || server->metrics_ != nullptr) {
    auto sink = std::make_shared<LogSink>();
    sink->server = options.name;
    // Unique per process start without global randomness: start time and process id.
    sink->id_prefix = absl::StrFormat("%x%x", absl::ToUnixNanos(absl::Now()), getpid());
    if (options.log_stream != nullptr) {
      sink->out = std::make_unique<LineWriter>(options.name, options.log_stream,
                                               options.log_flush_interval);
    }
    sink->metrics = server->metrics_.get();
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
    creators.push_back(std::make_unique<CallLogInterceptorFactory>(std::move(sink)));
    builder.experimental().SetInterceptorCreators(std::move(creators));
  }

  if (options.max_connection_age > absl::ZeroDuration()) {
    // GOAWAY at this age moves new calls to a new connection; the calls in flight finish however
    // long they run (gRPC's default grace: infinite), as the connection closes after its last.
    builder.AddChannelArgument(
        GRPC_ARG_MAX_CONNECTION_AGE_MS,
        static_cast<int>(std::clamp<int64_t>(absl::ToInt64Milliseconds(options.max_connection_age),
                                             1, std::numeric_limits<int>::max())));
  }
  if (options.configure_builder) options.configure_builder(builder);
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || selected_port == 0) {
    if (server->server_ != nullptr) {
      server->server_->Shutdown();
      server->server_->Wait();
      server->server_.reset();
    }
    return absl::UnavailableError(absl::StrCat("server \"", options.name, "\": cannot listen on ",
                                               address,
                                               " (port in use, not permitted, or host not local)"));
  }
  server->port_ = selected_port;
  server->address_ = FormatAddress(options.host, selected_port);
  server->service_names_ = *names;
  if (server->health_board_ != nullptr) server->service_names_.push_back("grpc.health.v1.Health");
  if (grpc::HealthCheckServiceInterface* health = server->server_->GetHealthCheckService()) {
    health->SetServingStatus("", true);
    for (const std::string& name : server->service_names_) health->SetServingStatus(name, true);
  }
  return server;
}

Server::~Server() {
  if (server_ == nullptr) return;  // Start() failed before the server existed
  Shutdown();
  Wait();
}

void Server::SetServing(std::string_view service, bool serving) {
  if (grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService()) {
    health->SetServingStatus(std::string(service), serving);
  }
}

void Server::Shutdown() {
  {
    absl::MutexLock lock(&shutdown_mu_);
    if (shut_down_) return;
    shut_down_ = true;
  }
  // Health first: probes and balancers see NOT_SERVING while calls are still accepted
  // (drain_delay).
  if (grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService()) {
    health->Shutdown();
  }
  if (options_.drain_delay > absl::ZeroDuration()) absl::SleepFor(options_.drain_delay);
  // Stop accepting; in-flight calls get up to shutdown_grace, then are cancelled.
  server_->Shutdown(std::chrono::system_clock::now() +
                    absl::ToChronoNanoseconds(options_.shutdown_grace));
}

void Server::Wait() { server_->Wait(); }

void BlockTerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

void IgnoreBrokenPipes() { signal(SIGPIPE, SIG_IGN); }

int WaitForTerminationSignal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int signal_number = 0;
  while (sigwait(&set, &signal_number) != 0) {
  }
  return signal_number;
}

int ServeUntilTerminated(Server& server, std::string_view what,
                         const std::function<void()>& before_shutdown) {
  // One write, so a line another thread prints at the same time cannot split the ready line that
  // scripts and tests wait for.
  std::string line =
      absl::StrCat(server.name(), ": serving ", Sv(what), " on port ", server.port());
  if (server.metrics_port() >= 0) {
    absl::StrAppend(&line, " (metrics: http://",
                    FormatAddress(server.host(), server.metrics_port()), "/metrics)");
  }
  line.push_back('\n');
  std::cerr << line << std::flush;
  const int signal_number = WaitForTerminationSignal();
  if (before_shutdown) before_shutdown();
  server.Shutdown();
  return signal_number;
}

}  // namespace maas::server
