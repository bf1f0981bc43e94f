// In-process fake backends for the gateway tests: small parts of GenerativeService and
// DiscriminativeService covering every call kind, recording what they observe.
#ifndef MAAS_TESTS_SERVICES_GATEWAY_FAKE_BACKENDS_H_
#define MAAS_TESTS_SERVICES_GATEWAY_FAKE_BACKENDS_H_

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/adapter/grpc_order.h"
#include "maas/discriminative/v1/discriminative.grpc.pb.h"
#include "maas/generative/v1/generative.grpc.pb.h"
#include "services/gateway/proxy.h"

namespace maas::gateway::testing {

// What a fake saw of its calls. Thread-safe.
struct Observations {
  absl::Mutex mu;
  std::multimap<std::string, std::string> last_metadata ABSL_GUARDED_BY(mu);
  // Time left until the deadline of the last call, or infinite when it had none.
  absl::Duration last_time_left ABSL_GUARDED_BY(mu) = absl::InfiniteDuration();
  int cancellations ABSL_GUARDED_BY(mu) = 0;
  int fit_completed ABSL_GUARDED_BY(mu) = 0;
  int fit_rows_messages ABSL_GUARDED_BY(mu) = 0;
  int calls ABSL_GUARDED_BY(mu) = 0;
  // The request of the last ListModels call.
  maas::common::v1::ListModelsRequest last_list ABSL_GUARDED_BY(mu);

  void Record(const grpc::CallbackServerContext* ctx) {
    absl::MutexLock lock(&mu);
    ++calls;
    last_metadata.clear();
    for (const auto& [k, v] : ctx->client_metadata()) {
      last_metadata.emplace(std::string(k.data(), k.size()), std::string(v.data(), v.size()));
    }
    const auto deadline = ctx->deadline();
    if (deadline >= std::chrono::system_clock::time_point::max() - std::chrono::hours(24 * 365)) {
      last_time_left = absl::InfiniteDuration();
    } else {
      last_time_left = absl::FromChrono(deadline - std::chrono::system_clock::now());
    }
  }
  void Cancelled() {
    absl::MutexLock lock(&mu);
    ++cancellations;
  }
  // Waits up to `timeout` for `pred` (evaluated under the lock).
  template <class Pred>
  bool WaitFor(Pred pred, absl::Duration timeout = absl::Seconds(5)) {
    const absl::Time end = absl::Now() + timeout;
    while (absl::Now() < end) {
      {
        absl::MutexLock lock(&mu);
        if (pred(*this)) return true;
      }
      absl::SleepFor(absl::Milliseconds(5));
    }
    absl::MutexLock lock(&mu);
    return pred(*this);
  }
};

// Echo: a client header "x-request-id" comes back as initial metadata "x-echo-request-id" and the
// trailer "x-trailer" = "done-<id>".
inline void EchoMetadata(grpc::CallbackServerContext* ctx) {
  auto it = ctx->client_metadata().find("x-request-id");
  if (it == ctx->client_metadata().end()) return;
  const std::string id(it->second.data(), it->second.size());
  ctx->AddInitialMetadata("x-echo-request-id", id);
  ctx->AddTrailingMetadata("x-trailer", "done-" + id);
}

// A unary reactor that never answers: it finishes only when the call is cancelled.
class HangingUnary final : public grpc::ServerUnaryReactor {
 public:
  explicit HangingUnary(Observations* obs) : obs_(obs) {}
  void OnCancel() override {
    const maas::adapter::GrpcCancelReaction reaction(this);
    obs_->Cancelled();
    maas::adapter::GrpcOperation(this);
    Finish(grpc::Status::CANCELLED);
  }
  void OnDone() override {
    maas::adapter::GrpcDone(this);
    delete this;
  }

 private:
  Observations* obs_;
};

class FakeGenerative final : public maas::generative::v1::GenerativeService::CallbackService {
 public:
  Observations obs;
  std::vector<maas::common::v1::ModelInfo> models;

  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* ctx,
                                       const maas::common::v1::ListModelsRequest* request,
                                       maas::common::v1::ListModelsResponse* response) override {
    obs.Record(ctx);
    {
      absl::MutexLock lock(&obs.mu);
      obs.last_list = *request;
    }
    EchoMetadata(ctx);
    for (const auto& m : models) {
      if (m.name().rfind(request->name_prefix(), 0) == 0) *response->add_models() = m;
    }
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  // "hang": never answers (until cancelled); "error": FAILED_PRECONDITION with a trailer; else the
  // model's info with the name echoed and version 7.
  grpc::ServerUnaryReactor* GetModel(grpc::CallbackServerContext* ctx,
                                     const maas::generative::v1::GetModelRequest* request,
                                     maas::generative::v1::GetModelResponse* response) override {
    obs.Record(ctx);
    EchoMetadata(ctx);
    if (request->model().name() == "hang") return new HangingUnary(&obs);
    auto* reactor = ctx->DefaultReactor();
    if (request->model().name() == "error") {
      ctx->AddTrailingMetadata("x-error-detail", "model is broken");
      reactor->Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                   "model 'error' has dimension 3, data has 4 columns"));
      return reactor;
    }
    response->mutable_info()->set_name(request->model().name());
    response->mutable_info()->set_version(7);
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  // num_samples batches (start_index = i, seed echoed, x = batch_size x 1 values i); model "error":
  // INVALID_ARGUMENT before any message; model "hang": one batch, then waits for cancellation.
  grpc::ServerWriteReactor<maas::generative::v1::SampleBatch>* Sample(
      grpc::CallbackServerContext* ctx,
      const maas::generative::v1::SampleRequest* request) override {
    obs.Record(ctx);
    EchoMetadata(ctx);
    class Writer final : public grpc::ServerWriteReactor<maas::generative::v1::SampleBatch> {
     public:
      Writer(Observations* obs, maas::generative::v1::SampleRequest request)
          : obs_(obs), request_(std::move(request)) {
        if (request_.model().name() == "error") {
          finished_ = true;
          maas::adapter::GrpcOperation(this);
          Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                              "num_samples must be in [1, 1000000], got 0"));
          return;
        }
        NextWrite();
      }
      void OnWriteDone(bool ok) override {
        const maas::adapter::GrpcReaction reaction(this);
        if (!ok) return;  // cancelled: OnCancel finishes
        NextWrite();
      }
      void OnCancel() override {
        const maas::adapter::GrpcCancelReaction reaction(this);
        obs_->Cancelled();
        absl::MutexLock lock(&mu_);
        if (!finished_) {
          finished_ = true;
          maas::adapter::GrpcOperation(this);
          Finish(grpc::Status::CANCELLED);
        }
      }
      void OnDone() override {
        maas::adapter::GrpcDone(this);
        delete this;
      }

     private:
      void NextWrite() {
        const bool hang = request_.model().name() == "hang";
        if (sent_ >= (hang ? 1 : request_.num_samples())) {
          if (hang) return;  // wait for OnCancel
          absl::MutexLock lock(&mu_);
          if (!finished_) {
            finished_ = true;
            maas::adapter::GrpcOperation(this);
            Finish(grpc::Status::OK);
          }
          return;
        }
        batch_.Clear();
        batch_.set_start_index(sent_);
        batch_.set_seed(request_.seed());
        const uint32_t rows = request_.batch_size() == 0 ? 1 : request_.batch_size();
        batch_.mutable_x()->set_rows(rows);
        batch_.mutable_x()->set_cols(1);
        for (uint32_t r = 0; r < rows; ++r) batch_.mutable_x()->add_values(sent_ + r * 1e-6);
        ++sent_;
        maas::adapter::StartGrpcOperation(this, [&] { StartWrite(&batch_); });
      }
      Observations* obs_;
      maas::generative::v1::SampleRequest request_;
      maas::generative::v1::SampleBatch batch_;
      uint64_t sent_ = 0;
      absl::Mutex mu_;
      bool finished_ = false;
    };
    return new Writer(&obs, *request);
  }

  // Counts the rows messages; on a clean half-close answers info.version = number of rows messages
  // and info.name = the config's model name; on cancellation records it and completes nothing.
  grpc::ServerReadReactor<maas::generative::v1::FitModelRequest>* FitModel(
      grpc::CallbackServerContext* ctx, maas::generative::v1::FitModelResponse* response) override {
    obs.Record(ctx);
    EchoMetadata(ctx);
    class Reader final : public grpc::ServerReadReactor<maas::generative::v1::FitModelRequest> {
     public:
      Reader(grpc::CallbackServerContext* ctx, Observations* obs,
             maas::generative::v1::FitModelResponse* response)
          : ctx_(ctx), obs_(obs), response_(response) {
        maas::adapter::StartGrpcOperation(this, [&] { StartRead(&request_); });
      }
      void OnReadDone(bool ok) override {
        const maas::adapter::GrpcReaction reaction(this);
        if (!ok) {
          if (ctx_->IsCancelled()) {
            obs_->Cancelled();
            maas::adapter::GrpcOperation(this);
            Finish(grpc::Status::CANCELLED);
            return;
          }
          {
            absl::MutexLock lock(&obs_->mu);
            ++obs_->fit_completed;
          }
          response_->mutable_info()->set_version(rows_messages_);
          maas::adapter::GrpcOperation(this);
          Finish(grpc::Status::OK);
          return;
        }
        if (request_.has_rows()) {
          ++rows_messages_;
          absl::MutexLock lock(&obs_->mu);
          ++obs_->fit_rows_messages;
        }
        maas::adapter::StartGrpcOperation(this, [&] { StartRead(&request_); });
      }
      void OnDone() override {
        maas::adapter::GrpcDone(this);
        delete this;
      }

     private:
      grpc::CallbackServerContext* ctx_;
      Observations* obs_;
      maas::generative::v1::FitModelResponse* response_;
      maas::generative::v1::FitModelRequest request_;
      int rows_messages_ = 0;
    };
    return new Reader(ctx, &obs, response);
  }
};

class FakeDiscriminative final
    : public maas::discriminative::v1::DiscriminativeService::CallbackService {
 public:
  Observations obs;
  std::vector<maas::common::v1::ModelInfo> models;

  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* ctx,
                                       const maas::common::v1::ListModelsRequest* request,
                                       maas::common::v1::ListModelsResponse* response) override {
    obs.Record(ctx);
    for (const auto& m : models) {
      if (m.name().rfind(request->name_prefix(), 0) == 0) *response->add_models() = m;
    }
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  // One response per request: one result per text with label = the text reversed, model_version =
  // the request's index in the stream. A text "fail" ends the call with FAILED_PRECONDITION at once
  // (whether or not the client has half-closed).
  grpc::ServerBidiReactor<maas::discriminative::v1::ClassifyRequest,
                          maas::discriminative::v1::ClassifyResponse>*
  ClassifyStream(grpc::CallbackServerContext* ctx) override {
    obs.Record(ctx);
    EchoMetadata(ctx);
    class Bidi final : public grpc::ServerBidiReactor<maas::discriminative::v1::ClassifyRequest,
                                                      maas::discriminative::v1::ClassifyResponse> {
     public:
      explicit Bidi(Observations* obs) : obs_(obs) {
        maas::adapter::StartGrpcOperation(this, [&] { StartRead(&request_); });
      }
      void OnReadDone(bool ok) override {
        const maas::adapter::GrpcReaction reaction(this);
        if (!ok) {
          maas::adapter::GrpcOperation(this);
          Finish(grpc::Status::OK);
          return;
        }
        response_.Clear();
        for (const std::string& t : request_.texts()) {
          if (t == "fail") {
            maas::adapter::GrpcOperation(this);
            Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "model 'm' has no classes"));
            return;
          }
          response_.add_results()->set_label(std::string(t.rbegin(), t.rend()));
        }
        response_.set_model_version(index_++);
        maas::adapter::StartGrpcOperation(this, [&] { StartWrite(&response_); });
      }
      void OnWriteDone(bool ok) override {
        const maas::adapter::GrpcReaction reaction(this);
        if (ok) {
          maas::adapter::StartGrpcOperation(this, [&] { StartRead(&request_); });
        }
      }
      void OnCancel() override {
        const maas::adapter::GrpcCancelReaction reaction(this);
        obs_->Cancelled();
      }
      void OnDone() override {
        maas::adapter::GrpcDone(this);
        delete this;
      }

     private:
      Observations* obs_;
      maas::discriminative::v1::ClassifyRequest request_;
      maas::discriminative::v1::ClassifyResponse response_;
      int64_t index_ = 0;
    };
    return new Bidi(&obs);
  }
};

// A server on 127.0.0.1:<ephemeral port> hosting `services`, with grpc.health.v1.
class TestServer {
 public:
  explicit TestServer(const std::vector<grpc::Service*>& services,
                      grpc::CallbackGenericService* generic = nullptr) {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    for (grpc::Service* s : services) builder.RegisterService(s);
    if (generic != nullptr) builder.RegisterCallbackGenericService(generic);
    server_ = builder.BuildAndStart();
  }
  // A server whose generic service is the gateway's proxy (not owned; must outlive the server).
  TestServer(const std::vector<grpc::Service*>& services, Proxy* proxy) : proxy_(proxy) {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    for (grpc::Service* s : services) builder.RegisterService(s);
    proxy_->Register(builder);
    server_ = builder.BuildAndStart();
    proxy_->Start();
  }
  ~TestServer() { Shutdown(); }
  void Shutdown() {
    if (server_) {
      server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
      // The proxy's queues are drained before the server is destroyed.
      if (proxy_ != nullptr) proxy_->Shutdown();
      server_.reset();
    }
  }
  int port() const { return port_; }
  std::string target() const { return "ipv4:127.0.0.1:" + std::to_string(port_); }
  grpc::Server* server() { return server_.get(); }

 private:
  int port_ = 0;
  Proxy* proxy_ = nullptr;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace maas::gateway::testing

#endif  // MAAS_TESTS_SERVICES_GATEWAY_FAKE_BACKENDS_H_
