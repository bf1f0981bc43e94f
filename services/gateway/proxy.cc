#include "services/gateway/proxy.h"

#include <grpcpp/client_context.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/client_callback.h>
#include <grpcpp/support/server_callback.h>

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/descriptor.h"

namespace maas::gateway {
namespace {

using Metadata = std::multimap<grpc::string_ref, grpc::string_ref>;

absl::string_view View(grpc::string_ref s) { return absl::string_view(s.data(), s.size()); }

// Answers a fixed status at once (no route, too many calls).
class StatusReactor final : public grpc::ServerGenericBidiReactor {
 public:
  explicit StatusReactor(grpc::Status status) { Finish(status); }
  void OnDone() override { delete this; }
};

// One grpc.reflection.v1alpha stream, answered locally: one response per request, in order.
class ReflectionReactor final : public grpc::ServerGenericBidiReactor {
 public:
  explicit ReflectionReactor(const ReflectionResponder* responder) : responder_(responder) {
    StartRead(&request_);
  }
  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::OK);
      return;
    }
    std::vector<grpc::Slice> slices;
    std::string bytes;
    if (request_.Dump(&slices).ok()) {
      for (const grpc::Slice& s : slices) {
        bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
      }
    }
    grpc::Slice slice(responder_->Answer(bytes));
    response_ = grpc::ByteBuffer(&slice, 1);
    StartWrite(&response_);
  }
  void OnWriteDone(bool ok) override {
    if (ok) {
      StartRead(&request_);
    } else {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "reflection stream closed"));
    }
  }
  void OnDone() override { delete this; }

 private:
  const ReflectionResponder* const responder_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
};

// True when a status message names a network address (as gRPC's connection errors do).
bool MentionsAddress(absl::string_view message) {
  for (absl::string_view marker : {"ipv4:", "ipv6:", "unix:", "dns:", "127.0.0.1", "localhost"}) {
    if (absl::StrContains(message, marker)) return true;
  }
  return false;
}

// One proxied call: a server reactor (the downstream client's call) and a client reactor (the call
// to the backend), sharing this object. Lifetime: two references, dropped by each side's OnDone;
// the backend side always finishes first (its OnDone calls Finish on the downstream side), but the
// two OnDone callbacks may still overlap, hence the reference count.
//
// Holds on the backend call: the backend call's OnDone must not run while either pump may still
// start an operation on it from a downstream callback, so each pump owns one hold:
//   - upstream pump (downstream reads -> backend writes): released once the downstream half-closes
//     (after WritesDone), a backend write fails, or the backend has ended the call while the pump
//     waits for a downstream read (that read may never complete; it ends with the downstream call);
//   - downstream pump (backend reads -> downstream writes): released when the backend's response
//     stream ends or a downstream write fails (then the backend call is cancelled).
class ProxyCall {
 public:
  ProxyCall(grpc::GenericCallbackServerContext* server_ctx, grpc::GenericStub* stub,
            const std::string* service, std::shared_ptr<std::atomic<int>> active, MethodKind kind)
      : client_streaming_(kind.client_streaming),
        server_streaming_(kind.server_streaming),
        service_(service),
        active_(std::move(active)),
        server_ctx_(server_ctx),
        client_ctx_(grpc::ClientContext::FromCallbackServerContext(*server_ctx)),
        downstream_(this),
        upstream_(this) {
    for (const auto& [key, value] : server_ctx_->client_metadata()) {
      if (IsReservedHeader(View(key))) continue;
      client_ctx_->AddMetadata(std::string(key.data(), key.size()),
                               std::string(value.data(), value.size()));
    }
    // One request message: its headers travel with it in one batch (a client-streaming call
    // must reach the backend at once: its server may speak first).
    if (!client_streaming_) client_ctx_->set_initial_metadata_corked(true);
    stub->PrepareBidiStreamingCall(client_ctx_.get(), server_ctx_->method(), grpc::StubOptions(),
                                   &upstream_);
    upstream_.AddMultipleHolds(2);  // the upstream and downstream pumps
    upstream_.StartCall();
    downstream_.StartRead(&request_);
  }

  ~ProxyCall() { active_->fetch_sub(1, std::memory_order_relaxed); }

  grpc::ServerGenericBidiReactor* server_reactor() { return &downstream_; }

 private:
  enum class UpState { kReading, kWriting, kClosed };

  // The downstream (incoming) call.
  class Downstream final : public grpc::ServerGenericBidiReactor {
   public:
    explicit Downstream(ProxyCall* call) : call_(call) {}
    void OnReadDone(bool ok) override { call_->OnDownstreamReadDone(ok); }
    void OnWriteDone(bool ok) override { call_->OnDownstreamWriteDone(ok); }
    void OnCancel() override { call_->client_ctx_->TryCancel(); }
    void OnDone() override { call_->Unref(); }

   private:
    ProxyCall* const call_;
  };

  // The upstream (backend) call.
  class Upstream final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
   public:
    explicit Upstream(ProxyCall* call) : call_(call) {}
    void OnReadInitialMetadataDone(bool ok) override { call_->OnBackendInitialMetadata(ok); }
    void OnReadDone(bool ok) override { call_->OnBackendReadDone(ok); }
    void OnWriteDone(bool ok) override { call_->OnBackendWriteDone(ok); }
    void OnDone(const grpc::Status& status) override { call_->OnBackendDone(status); }

   private:
    ProxyCall* const call_;
  };

  // --- upstream pump: downstream -> backend ---

  void OnDownstreamReadDone(bool ok) {
    {
      absl::MutexLock lock(&mu_);
      if (up_state_ == UpState::kClosed) return;  // the backend call has ended: drop the message.
      up_state_ = ok ? UpState::kWriting : UpState::kClosed;
    }
    if (ok) {
      if (client_streaming_) {
        upstream_.StartWrite(&request_);
      } else {
        // The only request message: write it with the half-close (no second read downstream).
        upstream_.StartWriteLast(&request_, grpc::WriteOptions());
      }
      return;
    }
    if (server_ctx_->IsCancelled()) {
      // Never half-close on a cancellation: the backend would see a complete (truncated) stream.
      client_ctx_->TryCancel();
    } else {
      upstream_.StartWritesDone();
    }
    upstream_.RemoveHold();
  }

  void OnBackendWriteDone(bool ok) {
    bool read_more;
    {
      absl::MutexLock lock(&mu_);
      read_more = ok && !backend_ended_ && client_streaming_;
      up_state_ = read_more ? UpState::kReading : UpState::kClosed;
    }
    // Safe even if the backend ends right now: this write's callback still pins the backend call.
    if (read_more) {
      downstream_.StartRead(&request_);
    } else {
      upstream_.RemoveHold();
    }
  }

  // --- downstream pump: backend -> downstream ---

  void OnBackendInitialMetadata(bool ok) {
    if (ok) {
      backend_answered_.store(true, std::memory_order_relaxed);
      for (const auto& [key, value] : client_ctx_->GetServerInitialMetadata()) {
        if (IsReservedHeader(View(key))) continue;
        server_ctx_->AddInitialMetadata(std::string(key.data(), key.size()),
                                        std::string(value.data(), value.size()));
      }
      // A single response goes out with its headers and status in one batch (OnBackendDone).
      if (server_streaming_) downstream_.StartSendInitialMetadata();
    }
    upstream_.StartRead(&response_);
  }

  void OnBackendReadDone(bool ok) {
    if (ok && !server_streaming_) {
      if (has_single_response_) {
        // A second response to a method with one: a broken backend. Fail the call.
        single_response_overflow_ = true;
        client_ctx_->TryCancel();
      } else {
        has_single_response_ = true;
        single_response_ = std::move(response_);
        upstream_.StartRead(&response_);  // to see the end of the backend's stream
        return;
      }
    } else if (ok) {
      downstream_.StartWrite(&response_);
      return;
    }
    // The backend ended the call: nothing more will be written to it.
    bool release_upstream = false;
    {
      absl::MutexLock lock(&mu_);
      backend_ended_ = true;
      if (up_state_ == UpState::kReading) {
        up_state_ = UpState::kClosed;
        release_upstream = true;
      }
    }
    if (release_upstream) upstream_.RemoveHold();
    upstream_.RemoveHold();  // the downstream pump's hold
  }

  void OnDownstreamWriteDone(bool ok) {
    if (ok) {
      upstream_.StartRead(&response_);
      return;
    }
    client_ctx_->TryCancel();  // the downstream call is gone
    upstream_.RemoveHold();
  }

  void OnBackendDone(const grpc::Status& status) {
    for (const auto& [key, value] : client_ctx_->GetServerTrailingMetadata()) {
      if (IsReservedHeader(View(key))) continue;
      server_ctx_->AddTrailingMetadata(std::string(key.data(), key.size()),
                                       std::string(value.data(), value.size()));
    }
    if (single_response_overflow_) {
      downstream_.Finish(
          grpc::Status(grpc::StatusCode::INTERNAL,
                       absl::StrCat("the backend of route ", *service_,
                                    " sent more than one response message to a method with one")));
    } else if (has_single_response_ && status.ok()) {
      downstream_.StartWriteAndFinish(&single_response_, grpc::WriteOptions(), status);
    } else if (status.error_code() == grpc::StatusCode::UNAVAILABLE &&
               (!backend_answered_.load(std::memory_order_relaxed) ||
                MentionsAddress(status.error_message()))) {
      // Made by the gateway's channel (no backend reached, or the connection was lost): the
      // original message names internal addresses, so answer with the route instead.
      downstream_.Finish(
          grpc::Status(grpc::StatusCode::UNAVAILABLE, UnavailableMessage(*service_)));
    } else {
      downstream_.Finish(status);
    }
    Unref();
  }

  void Unref() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  const bool client_streaming_;       // false: exactly one request message
  const bool server_streaming_;       // false: exactly one response message
  const std::string* const service_;  // the route's service name (owned by the router)
  const std::shared_ptr<std::atomic<int>> active_;
  grpc::GenericCallbackServerContext* const server_ctx_;
  const std::unique_ptr<grpc::ClientContext> client_ctx_;
  Downstream downstream_;
  Upstream upstream_;
  grpc::ByteBuffer request_;   // downstream -> backend; one message in flight
  grpc::ByteBuffer response_;  // backend -> downstream; one message in flight
  // The response of a method with one (not server streaming), sent with the status. Only touched
  // by the backend read callbacks and then OnBackendDone, which gRPC runs in sequence.
  grpc::ByteBuffer single_response_;
  bool has_single_response_ = false;
  bool single_response_overflow_ = false;
  std::atomic<int> refs_{2};
  std::atomic<bool> backend_answered_{false};  // the backend's initial metadata arrived

  absl::Mutex mu_;
  UpState up_state_ ABSL_GUARDED_BY(mu_) = UpState::kReading;
  bool backend_ended_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

bool IsReservedHeader(absl::string_view key) {
  if (key.empty() || key.front() == ':') return true;
  if (absl::StartsWith(key, "grpc-")) return true;
  return key == "te" || key == "content-type" || key == "user-agent" || key == "host" ||
         key == "connection" || key == "keep-alive" || key == "proxy-connection" ||
         key == "transfer-encoding" || key == "upgrade";
}

Proxy::Proxy(const Backends* backends, Options options) : backends_(backends), options_(options) {
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

std::string UnavailableMessage(absl::string_view service) {
  return absl::StrCat("no backend of route ", service,
                      " is reachable through the gateway right now; retry later "
                      "(maas.gateway.v1.Gateway/GetBackends shows each route's health)");
}

grpc::ServerGenericBidiReactor* Proxy::CreateReactor(grpc::GenericCallbackServerContext* ctx) {
  const std::optional<std::size_t> route = backends_->router().Find(ctx->method());
  if (!route.has_value()) {
    if (options_.reflection != nullptr && ctx->method() == kReflectionMethod) {
      return new ReflectionReactor(options_.reflection);
    }
    return new StatusReactor(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                                          backends_->router().NoRouteMessage(ctx->method())));
  }
  if (active_->fetch_add(1, std::memory_order_relaxed) >= options_.max_concurrent_calls) {
    active_->fetch_sub(1, std::memory_order_relaxed);
    return new StatusReactor(grpc::Status(
        grpc::StatusCode::RESOURCE_EXHAUSTED,
        absl::StrCat("the gateway already proxies ", options_.max_concurrent_calls,
                     " concurrent calls (--max_concurrent_streams); retry later or raise it")));
  }
  MethodKind kind;  // unknown methods: a bidi stream, which is always correct
  if (auto it = method_kinds_.find(ctx->method()); it != method_kinds_.end()) kind = it->second;
  auto* call = new ProxyCall(ctx, &backends_->generic_stub(*route),
                             &backends_->route(*route).service, active_, kind);
  return call->server_reactor();
}

}  // namespace maas::gateway
