#include "services/gateway/proxy.h"

#include <grpc/grpc.h>
#include <grpc/support/time.h>
#include <grpcpp/alarm.h>
#include <grpcpp/client_context.h>
#include <grpcpp/ext/health_check_service_server_builder_option.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/support/byte_buffer.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/adapter/byte_buffers.h"
#include "common/health/health_wire.h"
#include "common/server/health_service.h"
#include "common/server/server.h"
#include "google/protobuf/descriptor.h"
#include "maas/discriminative/v1/discriminative.pb.h"
#include "maas/generative/v1/generative.pb.h"
#include "services/gateway/completion.h"

namespace maas::gateway {

using adapter::ByteBufferFromString;
using adapter::ByteBufferToString;

using health::DecodeHealthCheckRequest;
using health::EncodeHealthCheckResponse;
using health::kHealthCheckMethod;
using health::kHealthWatchMethod;

namespace {

absl::string_view View(grpc::string_ref s) { return absl::string_view(s.data(), s.size()); }

// UNIMPLEMENTED's message for a method nothing here answers. An unknown method of a service the
// gateway serves itself says so, naming that service's methods (the router's "no route for
// service maas.gateway.v1.Gateway" read as if the gateway did not serve it); any other method
// gets the router's message.
std::string UnservedMessage(const Router& router, const Proxy::Options& options,
                            absl::string_view method) {
  struct Own {
    bool served;
    absl::string_view service;
    absl::string_view methods;
  };
  const Own own[] = {
      {options.gateway != nullptr, kGatewayService, "ListModels, GetBackends"},
      {options.health != nullptr, "grpc.health.v1.Health", "Check, Watch"},
      {options.reflection != nullptr, "grpc.reflection.v1alpha.ServerReflection",
       "ServerReflectionInfo"},
  };
  for (const Own& o : own) {
    if (o.served && absl::StartsWith(method, absl::StrCat("/", o.service, "/"))) {
      return absl::StrCat("method ", absl::CHexEscape(method.substr(0, 256)),
                          " does not exist: the gateway serves ", o.service,
                          " itself, whose methods are ", o.methods);
    }
  }
  return router.NoRouteMessage(method);
}

// Calls waiting for a new incoming call on each completion queue.
constexpr int kPendingAcceptsPerLane = 32;

// True when a status message names a network address (as gRPC's connection errors do).
bool MentionsAddress(absl::string_view message) {
  for (absl::string_view marker : {"ipv4:", "ipv6:", "unix:", "dns:", "127.0.0.1", "localhost"}) {
    if (absl::StrContains(message, marker)) return true;
  }
  return false;
}

}  // namespace

// One incoming call, from the moment the proxy waits for it until both of its sides are done: a
// proxied call (the incoming call and a bidi call to the backend), a local reflection stream, or a
// refused call. Every completion of its operations arrives on the completion queue of its lane and
// is handled by that lane's thread alone, so it needs no lock. It deletes itself once no operation
// is outstanding and the incoming call is done.
//
// Pumps, each with at most one operation in flight per direction and side:
//   upstream (incoming reads -> backend writes): read a request, write it to the backend, read the
//     next one once the write is done; the half-close is forwarded as WritesDone (or with the only
//     request of a method that has one), never on cancellation;
//   downstream (backend reads -> incoming writes): the backend's initial metadata, then read a
//     response, write it, read the next once the write is done; when the backend's stream ends,
//     its status and trailers finish the incoming call (a method with one response sends it with
//     the status in one batch).
class ProxyCall {
 public:
  ProxyCall(Proxy* proxy, grpc::ServerCompletionQueue* cq) : proxy_(proxy), cq_(cq) {
    server_ctx_.AsyncNotifyWhenDone(&done_tag_);
    proxy_->service_.RequestCall(&server_ctx_, &stream_, cq_, cq_, &accept_tag_);
  }

  // The tag of one of this call's operations: runs its handler, then deletes the call if it is
  // done.
  struct Tag final : CompletionHandler {
    Tag(ProxyCall* c, void (ProxyCall::*h)(bool)) : call(c), handler(h) {}
    void OnComplete(bool ok) override {
      ProxyCall* const c = call;
      (c->*handler)(ok);
      c->MaybeDelete();
    }
    ProxyCall* call;
    void (ProxyCall::*handler)(bool ok);
  };

 private:
  enum class Kind {
    kWaiting,
    kProxied,
    kReflection,
    kRefused,
    kHealthCheck,
    kHealthWatch,
    kGateway
  };

  // The status updates of a Watch call, handed from whichever thread changes the health board to
  // the call's lane through an alarm that fires at once on the lane's queue.
  struct WatchState final : HealthBoard::Watcher {
    void OnHealth(ServingStatus status) override {
      absl::MutexLock lock(&mu);
      latest = status;
      has_update = true;
      ArmLocked();
    }
    // The server is stopping: once the last status is written, the call ends (UNAVAILABLE), so
    // that it does not hold the shutdown until the grace period runs out.
    void OnShutdown() override {
      absl::MutexLock lock(&mu);
      shut_down = true;
      ArmLocked();
    }
    // The lane picks the change up (an alarm in flight will).
    void ArmLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
      if (armed) return;
      armed = true;
      alarm = std::make_unique<grpc::Alarm>();
      alarm->Set(cq, gpr_time_0(GPR_CLOCK_MONOTONIC), tag);
    }
    grpc::ServerCompletionQueue* cq = nullptr;
    void* tag = nullptr;
    absl::Mutex mu;
    ServingStatus latest ABSL_GUARDED_BY(mu) = ServingStatus::kServiceUnknown;
    bool has_update ABSL_GUARDED_BY(mu) = false;
    bool shut_down ABSL_GUARDED_BY(mu) = false;
    bool armed ABSL_GUARDED_BY(mu) = false;  // an alarm is set whose tag has not been handled
    std::unique_ptr<grpc::Alarm> alarm ABSL_GUARDED_BY(mu);
  };

  ~ProxyCall() {
    if (kind_ == Kind::kProxied) proxy_->active_.fetch_sub(1, std::memory_order_relaxed);
    if (watch_ != nullptr) {
      absl::MutexLock lock(&watch_->mu);
      watch_->alarm.reset();  // fired and handled (pending_ counted it)
    }
    if (accepted_) {
      absl::MutexLock lock(&proxy_->mu_);
      --proxy_->live_calls_;
    }
  }

  void MaybeDelete() {
    if (pending_ == 0) delete this;
  }

  // --- a new incoming call ---

  void OnAccepted(bool ok) {
    if (!ok) return;             // the server is shutting down; pending_ is 0: deleted
    new ProxyCall(proxy_, cq_);  // the next incoming call on this lane
    pending_ = 1;                // the done notification
    accepted_ = true;
    {
      absl::MutexLock lock(&proxy_->mu_);
      ++proxy_->live_calls_;
    }
    const Proxy::Options& options = proxy_->options_;
    if (!options.front_key.empty() && !CarriesFrontKey(options)) {
      if (options.log != nullptr) log_call_ = options.log->Begin(server_ctx_.client_metadata());
      Refuse(grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          "this loopback port serves only the gateway's own HTTP/2 front; call the "
                          "gateway's public port (--port)"));
      return;
    }
    if (options.health != nullptr && (server_ctx_.method() == kHealthCheckMethod ||
                                      server_ctx_.method() == kHealthWatchMethod)) {
      // Answered here, not logged (probes would fill the log), as gRPC's health service did.
      kind_ = server_ctx_.method() == kHealthCheckMethod ? Kind::kHealthCheck : Kind::kHealthWatch;
      ++pending_;
      stream_.Read(&request_, &local_read_tag_);
      return;
    }
    if (options.log != nullptr) {
      log_call_ = options.log->Begin(server_ctx_.client_metadata());
      if (log_call_.generated_id) {
        // The backend logs the same id; the client can quote it.
        server_ctx_.AddInitialMetadata(server::kRequestIdKey, log_call_.request_id);
      }
    }
    const Router& router = proxy_->backends_->router();
    const std::optional<std::size_t> route = router.Find(server_ctx_.method());
    if (!route.has_value()) {
      if (options.gateway != nullptr && GatewayService::Serves(server_ctx_.method())) {
        kind_ = Kind::kGateway;
        ++pending_;
        stream_.Read(&request_, &local_read_tag_);
        return;
      }
      if (options.reflection != nullptr && server_ctx_.method() == kReflectionMethod) {
        kind_ = Kind::kReflection;
        ++pending_;
        stream_.Read(&request_, &reflection_read_tag_);
        return;
      }
      Refuse(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                          UnservedMessage(router, options, server_ctx_.method())));
      return;
    }
    // gRPC's server takes request headers its client side refuses (an upper-case name, a control
    // byte in a value); forwarding one would abort the whole process (gRPC asserts on invalid
    // metadata), so such a call is refused here.
    for (const auto& [key, value] : server_ctx_.client_metadata()) {
      if (!ForwardableHeader(View(key), View(value))) {
        Refuse(
            grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                         absl::StrCat("request header '", absl::CHexEscape(View(key).substr(0, 64)),
                                      "' is not valid gRPC metadata (names: lower-case "
                                      "[0-9a-z_.-]; values: printable ASCII unless the name "
                                      "ends in -bin), so the gateway cannot forward it")));
        return;
      }
    }
    if (proxy_->active_.fetch_add(1, std::memory_order_relaxed) >= options.max_concurrent_calls) {
      proxy_->active_.fetch_sub(1, std::memory_order_relaxed);
      Refuse(grpc::Status(
          grpc::StatusCode::RESOURCE_EXHAUSTED,
          absl::StrCat("the gateway already proxies ", options.max_concurrent_calls,
                       " concurrent calls (--max_concurrent_streams); retry later or raise it")));
      return;
    }
    kind_ = Kind::kProxied;
    service_ = &proxy_->backends_->route(*route).service;
    if (auto it = proxy_->method_kinds_.find(server_ctx_.method());
        it != proxy_->method_kinds_.end()) {
      client_streaming_ = it->second.client_streaming;
      server_streaming_ = it->second.server_streaming;
    }
    // A child of the incoming call: its deadline and cancellation reach the backend.
    client_ctx_ = grpc::ClientContext::FromServerContext(server_ctx_);
    for (const auto& [key, value] : server_ctx_.client_metadata()) {
      if (IsReservedHeader(View(key))) continue;
      if (!options.front_key_header.empty() && View(key) == options.front_key_header) continue;
      client_ctx_->AddMetadata(std::string(key.data(), key.size()),
                               std::string(value.data(), value.size()));
    }
    if (log_call_.generated_id) {
      client_ctx_->AddMetadata(server::kRequestIdKey, log_call_.request_id);
    }
    // One request message: its headers travel with it in one batch (a client-streaming call
    // must reach the backend at once: its server may speak first).
    if (!client_streaming_) client_ctx_->set_initial_metadata_corked(true);
    backend_ = proxy_->backends_->generic_stub(*route).PrepareCall(client_ctx_.get(),
                                                                   server_ctx_.method(), cq_);
    if (client_streaming_) {
      ++pending_;
      backend_->StartCall(&backend_started_tag_);
    } else {
      backend_->StartCall(nullptr);  // corked: no operation, no completion
      backend_started_ = true;
    }
    ++pending_;
    backend_->ReadInitialMetadata(&backend_metadata_tag_);
    ++pending_;
    stream_.Read(&request_, &incoming_read_tag_);
  }

  // Whether the call's front_key_header holds front_key (compared in time independent of where
  // they differ).
  bool CarriesFrontKey(const Proxy::Options& options) const {
    const auto& metadata = server_ctx_.client_metadata();
    if (metadata.count(options.front_key_header) != 1) return false;
    const absl::string_view value = View(metadata.find(options.front_key_header)->second);
    if (value.size() != options.front_key.size()) return false;
    unsigned char differ = 0;
    for (size_t i = 0; i < value.size(); ++i) {
      differ |= static_cast<unsigned char>(value[i] ^ options.front_key[i]);
    }
    return differ == 0;
  }

  void OnDone(bool /*ok*/) {
    --pending_;
    incoming_done_ = true;
    if (kind_ == Kind::kHealthWatch) {
      EndWatch();
      return;
    }
    // gRPC cancels the backend call with its parent too; this also covers a cancellation seen
    // before the backend call existed.
    if (server_ctx_.IsCancelled() && client_ctx_ != nullptr) client_ctx_->TryCancel();
  }

  void Refuse(const grpc::Status& status) {
    kind_ = Kind::kRefused;
    FinishIncoming(status, nullptr);
  }

  // Finishes the incoming call (with `single_response` in the same batch when set), logging it.
  void FinishIncoming(const grpc::Status& status, const grpc::ByteBuffer* single_response,
                      absl::string_view model = "", int64_t model_version = 0) {
    incoming_finished_ = true;
    if (proxy_->options_.log != nullptr && kind_ != Kind::kHealthCheck &&
        kind_ != Kind::kHealthWatch) {
      std::string peer = server_ctx_.peer();
      const std::string& peer_header = proxy_->options_.client_peer_header;
      if (!peer_header.empty()) {
        auto it = server_ctx_.client_metadata().find(peer_header);
        if (it != server_ctx_.client_metadata().end())
          peer.assign(it->second.data(), it->second.size());
      }
      proxy_->options_.log->End(log_call_, server_ctx_.method(), status, peer, model,
                                model_version);
    }
    ++pending_;
    if (single_response != nullptr) {
      stream_.WriteAndFinish(*single_response, grpc::WriteOptions(), status, &finished_tag_);
    } else {
      stream_.Finish(status, &finished_tag_);
    }
  }

  void OnFinished(bool /*ok*/) { --pending_; }

  // --- unary methods answered here (health Check, the Gateway service), and health Watch ---

  // The request of a locally answered method has arrived (ok) or the client sent none.
  void OnLocalRead(bool ok) {
    --pending_;
    if (incoming_finished_) return;  // a Watch call cancelled before its request arrived
    if (!ok) {
      // No request message: the client half-closed at once, or the call is gone. The caller's
      // mistake, answered as the backends answer it (gRPC's health service: "could not parse
      // request").
      FinishIncoming(
          grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                       kind_ == Kind::kGateway
                           ? "the request message is missing (a unary method needs exactly one)"
                           : "could not parse request"),
          nullptr);
      return;
    }
    const std::string bytes = ByteBufferToString(request_);
    if (kind_ == Kind::kGateway) {
      ++pending_;  // the answer
      proxy_->options_.gateway->Answer(server_ctx_.method(), bytes, server_ctx_, cq_,
                                       [this](grpc::Status status, std::string response) {
                                         --pending_;
                                         OnGatewayAnswer(status, std::move(response));
                                         MaybeDelete();
                                       });
      return;
    }
    // gRPC's health service answers these statuses and messages; so does the gateway.
    absl::StatusOr<std::string> service = DecodeHealthCheckRequest(bytes);
    if (kind_ == Kind::kHealthCheck) {
      if (!service.ok()) {
        FinishIncoming(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "could not parse request"),
                       nullptr);
        return;
      }
      const ServingStatus status = proxy_->options_.health->Get(*service);
      if (status == ServingStatus::kServiceUnknown) {
        FinishIncoming(grpc::Status(grpc::StatusCode::NOT_FOUND, "service name unknown"), nullptr);
        return;
      }
      response_ = ByteBufferFromString(EncodeHealthCheckResponse(status));
      FinishIncoming(grpc::Status::OK, &response_);
      return;
    }
    if (!service.ok()) {
      FinishIncoming(grpc::Status(grpc::StatusCode::INTERNAL, "could not parse request"), nullptr);
      return;
    }
    watch_service_ = *std::move(service);
    watch_ = std::make_unique<WatchState>();
    watch_->cq = cq_;
    watch_->tag = &watch_alarm_tag_;
    watching_ = true;
    proxy_->options_.health->AddWatch(watch_service_, watch_.get());  // sends the current status
  }

  void OnGatewayAnswer(const grpc::Status& status, std::string response) {
    if (status.ok()) {
      response_ = ByteBufferFromString(response);
      FinishIncoming(status, &response_);
    } else {
      FinishIncoming(status, nullptr);
    }
  }

  // The alarm of a Watch call fired (or was cancelled): send the latest status unless a write is
  // in flight (its completion sends it).
  void OnWatchAlarm(bool /*ok*/) {
    {
      absl::MutexLock lock(&watch_->mu);
      watch_->armed = false;
    }
    if (alarm_counted_) {
      alarm_counted_ = false;
      --pending_;
    }
    WriteHealth();
  }

  void WriteHealth() {
    if (!watching_ || health_write_in_flight_) return;
    ServingStatus status = ServingStatus::kUnknown;
    bool update = false, ended = false;
    {
      absl::MutexLock lock(&watch_->mu);
      // A status that changed and changed back while a write was in flight is not sent again.
      if (watch_->has_update && watch_->latest != sent_health_) {
        watch_->has_update = false;
        status = watch_->latest;
        sent_health_ = status;
        update = true;
      } else {
        watch_->has_update = false;
        ended = watch_->shut_down;  // the last status is out: end the call
      }
    }
    if (ended) {
      EndWatch(grpc::Status(grpc::StatusCode::UNAVAILABLE, health::kWatchShutdownMessage));
      return;
    }
    if (!update) return;
    response_ = ByteBufferFromString(EncodeHealthCheckResponse(status));
    health_write_in_flight_ = true;
    ++pending_;
    stream_.Write(response_, &health_written_tag_);
  }

  void OnHealthWritten(bool ok) {
    --pending_;
    health_write_in_flight_ = false;
    if (!ok || !watching_) {
      EndWatch();  // the call is gone, or ended while the write was in flight
      return;
    }
    WriteHealth();
  }

  // The Watch call is done (cancelled by the client or by the server's shutdown) or its stream
  // broke: stop watching, wait for an alarm in flight, finish.
  void EndWatch(const grpc::Status& status = grpc::Status(grpc::StatusCode::CANCELLED,
                                                          "the health watch has ended")) {
    if (watching_) {
      watching_ = false;
      proxy_->options_.health->RemoveWatch(watch_service_, watch_.get());  // no alarm set after it
      absl::MutexLock lock(&watch_->mu);
      if (watch_->armed) {
        watch_->alarm->Cancel();  // its tag comes back (ok or not): wait for it
        alarm_counted_ = true;
        ++pending_;
      }
    }
    if (!health_write_in_flight_ && !incoming_finished_) FinishIncoming(status, nullptr);
  }

  // --- reflection, answered here: one response per request, in order ---

  void OnReflectionRead(bool ok) {
    --pending_;
    if (!ok) {
      FinishIncoming(grpc::Status::OK, nullptr);
      return;
    }
    response_ =
        ByteBufferFromString(proxy_->options_.reflection->Answer(ByteBufferToString(request_)));
    ++pending_;
    stream_.Write(response_, &reflection_write_tag_);
  }

  void OnReflectionWrite(bool ok) {
    --pending_;
    if (ok) {
      ++pending_;
      stream_.Read(&request_, &reflection_read_tag_);
    } else {
      FinishIncoming(grpc::Status(grpc::StatusCode::CANCELLED, "reflection stream closed"),
                     nullptr);
    }
  }

  // --- upstream pump: incoming reads -> backend writes ---

  void OnBackendStarted(bool /*ok*/) {
    --pending_;
    backend_started_ = true;  // a failed start shows in the backend's status
    if (request_waiting_) {
      request_waiting_ = false;
      WriteToBackend();
    } else if (writes_done_waiting_) {
      writes_done_waiting_ = false;
      half_closed_sent_ = true;
      ++pending_;
      backend_->WritesDone(&backend_written_tag_);
    }
  }

  void OnIncomingRead(bool ok) {
    --pending_;
    if (backend_ended_) return;  // the backend call has ended: drop the message, read no more.
    if (ok) {
      if (backend_started_) {
        WriteToBackend();
      } else {
        request_waiting_ = true;
      }
      return;
    }
    // A read that failed on an error (not the client's half-close) is a cancellation; the done
    // notification may still be queued behind this completion, so IsCancelled() alone is late.
    if (server_ctx_.IsCancelled() ||
        grpc_call_failed_before_recv_message(server_ctx_.c_call()) != 0) {
      // Never half-close on a cancellation: the backend would see a complete (truncated) stream.
      client_ctx_->TryCancel();
    } else if (backend_started_) {
      half_closed_sent_ = true;
      ++pending_;
      backend_->WritesDone(&backend_written_tag_);
    } else {
      writes_done_waiting_ = true;
    }
  }

  void WriteToBackend() {
    ++pending_;
    if (client_streaming_) {
      backend_->Write(request_, &backend_written_tag_);
    } else {
      // The only request message: write it with the half-close (no second read).
      backend_->Write(request_, grpc::WriteOptions().set_last_message(), &backend_written_tag_);
    }
  }

  void OnBackendWritten(bool ok) {
    --pending_;
    // A WritesDone, the last message, or a failed write: nothing more goes to the backend.
    if (ok && client_streaming_ && !backend_ended_ && !half_closed_sent_) {
      ++pending_;
      stream_.Read(&request_, &incoming_read_tag_);
    }
  }

  // --- downstream pump: backend reads -> incoming writes ---

  void OnBackendMetadata(bool ok) {
    --pending_;
    if (ok) {
      backend_answered_ = true;
      for (const auto& [key, value] : client_ctx_->GetServerInitialMetadata()) {
        if (IsReservedHeader(View(key))) continue;
        server_ctx_.AddInitialMetadata(std::string(key.data(), key.size()),
                                       std::string(value.data(), value.size()));
      }
      // A single response goes out with its headers and status in one batch (OnBackendFinished).
      if (server_streaming_) {
        ++pending_;
        stream_.SendInitialMetadata(&metadata_sent_tag_);
      }
    }
    ++pending_;
    backend_->Read(&response_, &backend_read_tag_);
  }

  void OnMetadataSent(bool /*ok*/) { --pending_; }

  void OnBackendRead(bool ok) {
    --pending_;
    if (ok && !server_streaming_) {
      if (has_single_response_) {
        // A second response to a method with one: a broken backend. Fail the call.
        single_response_overflow_ = true;
        client_ctx_->TryCancel();
      } else {
        has_single_response_ = true;
        single_response_ = std::move(response_);
        ++pending_;
        backend_->Read(&response_, &backend_read_tag_);  // to see the end of the stream
        return;
      }
    } else if (ok) {
      ++pending_;
      stream_.Write(response_, &incoming_written_tag_);
      return;
    }
    EndBackend();
  }

  void OnIncomingWritten(bool ok) {
    --pending_;
    if (ok) {
      ++pending_;
      backend_->Read(&response_, &backend_read_tag_);
      return;
    }
    client_ctx_->TryCancel();  // the incoming call is gone
    EndBackend();
  }

  // The backend's response stream has ended (or is abandoned): collect its status.
  void EndBackend() {
    backend_ended_ = true;
    ++pending_;
    backend_->Finish(&backend_status_, &backend_finished_tag_);
  }

  void OnBackendFinished(bool /*ok*/) {
    --pending_;
    std::string model;
    int64_t model_version = 0;
    const std::multimap<grpc::string_ref, grpc::string_ref>& trailers =
        client_ctx_->GetServerTrailingMetadata();
    for (const auto& [key, value] : trailers) {
      if (IsReservedHeader(View(key))) continue;
      server_ctx_.AddTrailingMetadata(std::string(key.data(), key.size()),
                                      std::string(value.data(), value.size()));
    }
    if (proxy_->options_.log != nullptr) ModelFromTrailers(trailers, &model, &model_version);
    grpc::Status answer = backend_status_;
    if (single_response_overflow_) {
      answer =
          grpc::Status(grpc::StatusCode::INTERNAL,
                       absl::StrCat("the backend of route ", *service_,
                                    " sent more than one response message to a method with one"));
    } else if (answer.error_code() == grpc::StatusCode::UNAVAILABLE &&
               (!backend_answered_ || MentionsAddress(answer.error_message()))) {
      // Made by the gateway's channel (no backend reached, or the connection was lost): the
      // original message names internal addresses, so answer with the route instead.
      answer = grpc::Status(grpc::StatusCode::UNAVAILABLE, UnavailableMessage(*service_));
    }
    FinishIncoming(answer, has_single_response_ && answer.ok() ? &single_response_ : nullptr, model,
                   model_version);
  }

  Proxy* const proxy_;
  grpc::ServerCompletionQueue* const cq_;
  Kind kind_ = Kind::kWaiting;
  bool accepted_ = false;  // counted in Proxy::live_calls_
  int pending_ = 0;        // operations whose completion has not arrived, + the done notification

  grpc::GenericServerContext server_ctx_;
  grpc::GenericServerAsyncReaderWriter stream_{&server_ctx_};
  CallLog::Call log_call_;  // set when the proxy logs
  bool incoming_done_ = false;
  bool incoming_finished_ = false;  // FinishIncoming was called

  // Proxied calls only.
  const std::string* service_ = nullptr;  // the route's service name (owned by the router)
  bool client_streaming_ = true;          // false: exactly one request message
  bool server_streaming_ = true;          // false: exactly one response message
  std::unique_ptr<grpc::ClientContext> client_ctx_;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> backend_;
  bool backend_started_ = false;
  bool request_waiting_ = false;      // a request read before the backend call started
  bool writes_done_waiting_ = false;  // a half-close seen before the backend call started
  bool half_closed_sent_ = false;
  bool backend_answered_ = false;     // the backend's initial metadata arrived
  bool backend_ended_ = false;        // the backend's response stream ended; its Finish is issued
  grpc::ByteBuffer request_;          // incoming -> backend (or reflection request); one in flight
  grpc::ByteBuffer response_;         // backend -> incoming (or reflection answer); one in flight
  grpc::ByteBuffer single_response_;  // the response of a method with one, sent with the status
  bool has_single_response_ = false;
  bool single_response_overflow_ = false;
  grpc::Status backend_status_;

  // Health Watch calls only (set once the request is read).
  std::string watch_service_;
  std::unique_ptr<WatchState> watch_;
  bool watching_ = false;  // registered with the health board
  bool health_write_in_flight_ = false;
  // The last status written (kUnknown, which the board never reports, before the first).
  ServingStatus sent_health_ = ServingStatus::kUnknown;
  bool alarm_counted_ = false;  // pending_ counts an alarm cancelled by EndWatch

  Tag accept_tag_{this, &ProxyCall::OnAccepted};
  Tag local_read_tag_{this, &ProxyCall::OnLocalRead};
  Tag watch_alarm_tag_{this, &ProxyCall::OnWatchAlarm};
  Tag health_written_tag_{this, &ProxyCall::OnHealthWritten};
  Tag done_tag_{this, &ProxyCall::OnDone};
  Tag finished_tag_{this, &ProxyCall::OnFinished};
  Tag reflection_read_tag_{this, &ProxyCall::OnReflectionRead};
  Tag reflection_write_tag_{this, &ProxyCall::OnReflectionWrite};
  Tag backend_started_tag_{this, &ProxyCall::OnBackendStarted};
  Tag incoming_read_tag_{this, &ProxyCall::OnIncomingRead};
  Tag backend_written_tag_{this, &ProxyCall::OnBackendWritten};
  Tag backend_metadata_tag_{this, &ProxyCall::OnBackendMetadata};
  Tag metadata_sent_tag_{this, &ProxyCall::OnMetadataSent};
  Tag backend_read_tag_{this, &ProxyCall::OnBackendRead};
  Tag incoming_written_tag_{this, &ProxyCall::OnIncomingWritten};
  Tag backend_finished_tag_{this, &ProxyCall::OnBackendFinished};
};

bool IsReservedHeader(absl::string_view key) {
  if (key.empty() || key.front() == ':') return true;
  if (absl::StartsWith(key, "grpc-")) return true;
  return key == "te" || key == "content-type" || key == "user-agent" || key == "host" ||
         key == "connection" || key == "keep-alive" || key == "proxy-connection" ||
         key == "transfer-encoding" || key == "upgrade";
}

bool ForwardableHeader(absl::string_view key, absl::string_view value) {
  if (IsReservedHeader(key)) return true;  // not forwarded
  // gRPC's own rules, the ones it asserts on when a call is sent.
  const grpc_slice k = grpc_slice_from_static_buffer(key.data(), key.size());
  if (grpc_header_key_is_legal(k) == 0) return false;
  if (grpc_is_binary_header(k) != 0) return true;
  return grpc_header_nonbin_value_is_legal(
             grpc_slice_from_static_buffer(value.data(), value.size())) != 0;
}

std::string UnavailableMessage(absl::string_view service) {
  return absl::StrCat("no backend of route ", service,
                      " is reachable through the gateway right now; retry later "
                      "(maas.gateway.v1.Gateway/GetBackends shows each route's health)");
}

std::vector<std::string> SingleResponseMethods(absl::string_view service) {
  static_cast<void>(maas::generative::v1::UniformSpec::descriptor());  // see Proxy::Proxy
  static_cast<void>(maas::discriminative::v1::TextOptions::descriptor());
  std::vector<std::string> methods;
  const google::protobuf::ServiceDescriptor* s =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(std::string(service));
  if (s == nullptr) return methods;
  for (int m = 0; m < s->method_count(); ++m) {
    if (!s->method(m)->server_streaming()) methods.push_back(s->method(m)->name());
  }
  return methods;
}

Proxy::Proxy(const Backends* backends, Options options) : backends_(backends), options_(options) {
  // The routed services' descriptors (read here for the method kinds, and by reflection) come from
  // the generated code of their .proto files, which the gateway otherwise never calls: referencing
  // one message of each file keeps the file in the binary.
  static_cast<void>(maas::generative::v1::UniformSpec::descriptor());
  static_cast<void>(maas::discriminative::v1::TextOptions::descriptor());
  const google::protobuf::DescriptorPool* pool = google::protobuf::DescriptorPool::generated_pool();
  for (std::size_t i = 0; i < backends_->size(); ++i) {
    const google::protobuf::ServiceDescriptor* service =
        pool->FindServiceByName(backends_->route(i).service);
    if (service == nullptr) continue;
    for (int m = 0; m < service->method_count(); ++m) {
      const google::protobuf::MethodDescriptor* method = service->method(m);
      method_kinds_[absl::StrCat("/", service->full_name(), "/", method->name())] =
          MethodKind{method->client_streaming(), method->server_streaming()};
    }
  }
}

Proxy::~Proxy() { Shutdown(); }

void Proxy::Register(grpc::ServerBuilder& builder) {
  builder.RegisterAsyncGenericService(&service_);
  if (options_.health != nullptr) {
    // Replaces gRPC's default health service (a callback-API service) with the board.
    builder.SetOption(std::make_unique<grpc::HealthCheckServiceServerBuilderOption>(
        std::make_unique<server::BoardHealthService>(options_.health)));
  }
  const int threads = std::max(1, std::min(options_.threads, 64));
  for (int i = 0; i < threads; ++i) {
    lanes_.push_back(Lane{builder.AddCompletionQueue(), std::thread()});
  }
}

void Proxy::Start() {
  if (started_ || lanes_.empty()) return;
  started_ = true;
  for (Lane& lane : lanes_) {
    grpc::ServerCompletionQueue* cq = lane.cq.get();
    for (int i = 0; i < kPendingAcceptsPerLane; ++i) new ProxyCall(this, cq);
    lane.thread = std::thread([cq] { DrainCompletions(cq); });
  }
}

void Proxy::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  {
    // A call still alive may start operations on its queue (e.g. finish a cancelled call), which
    // gRPC forbids once the queue is shut down.
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](int* live) { return *live == 0; }, &live_calls_));
  }
  for (Lane& lane : lanes_) lane.cq->Shutdown();
  for (Lane& lane : lanes_) {
    if (lane.thread.joinable()) {
      lane.thread.join();
    } else {
      // Never started: drain the queue (gRPC requires it before the queue is destroyed).
      DrainCompletions(lane.cq.get());
    }
  }
}

}  // namespace maas::gateway
