// The gRPC adapter of the discriminative service: bytes in, parsed and admitted by the shared
// reactors, core call on the worker pool, proto and one status conversion out.
#ifndef MAAS_SERVICES_DISCRIMINATIVE_ADAPTER_DISCRIMINATIVE_SERVICE_H_
#define MAAS_SERVICES_DISCRIMINATIVE_ADAPTER_DISCRIMINATIVE_SERVICE_H_

#include <grpcpp/support/byte_buffer.h>

#include <atomic>
#include <cstdint>
#include <functional>

#include "common/adapter/auth.h"
#include "common/adapter/dispatcher.h"
#include "common/adapter/reactors.h"
#include "common/adapter/stream_budget.h"
#include "maas/discriminative/v1/discriminative.grpc.pb.h"
#include "services/discriminative/adapter/text_wire.h"  // before any use of the reactors
#include "services/discriminative/core/discriminative_core.h"

namespace maas::discriminative {

// Every method is registered as a raw (bytes) callback method: the shared reactors parse the
// messages themselves, so an unparseable one is INVALID_ARGUMENT instead of looking like the end
// of a stream.
using RawDiscriminativeService = v1::DiscriminativeService::WithRawCallbackMethod_CreateModel<
    v1::DiscriminativeService::WithRawCallbackMethod_Train<
        v1::DiscriminativeService::WithRawCallbackMethod_Classify<
            v1::DiscriminativeService::WithRawCallbackMethod_ClassifyStream<
                v1::DiscriminativeService::WithRawCallbackMethod_Vectorize<
                    v1::DiscriminativeService::WithRawCallbackMethod_Evaluate<
                        v1::DiscriminativeService::WithRawCallbackMethod_GetModel<
                            v1::DiscriminativeService::WithRawCallbackMethod_ListModels<
                                v1::DiscriminativeService::WithRawCallbackMethod_DeleteModel<
                                    v1::DiscriminativeService::Service>>>>>>>>>;

class DiscriminativeServiceImpl final : public RawDiscriminativeService {
 public:
  // `core`, `auth` and `dispatcher` are not owned and must outlive the service. `auth` guards the
  // calls that change state (CreateModel, Train, DeleteModel); `dispatcher` admits calls and runs
  // their work on the worker pool.
  // Train streams above `max_train_bytes` bytes in total (--max_train_bytes; <= 0 = no cap) end
  // with RESOURCE_EXHAUSTED, and so does one whose messages would take the bytes that all Train
  // streams hold above `train_budget`'s cap (--max_total_train_bytes; not owned; null: none).
  // `train_dispatcher` (not owned; null: `dispatcher`) runs the work of
  // Train streams (vectorizing each batch, the fit and the store) on a pool of its own, so
  // retraining never holds a worker that classification needs; Train calls are still admitted by
  // `dispatcher`.
  DiscriminativeServiceImpl(DiscriminativeCore* core, const adapter::WriteAuthorizer* auth,
                            adapter::Dispatcher* dispatcher, int64_t max_train_bytes = 0,
                            adapter::Dispatcher* train_dispatcher = nullptr,
                            adapter::StreamBudget* train_budget = nullptr)
      : core_(core),
        auth_(auth),
        dispatcher_(dispatcher),
        train_dispatcher_(train_dispatcher),
        max_train_bytes_(max_train_bytes),
        train_budget_(train_budget) {}

  // Whether a model is loaded in memory, so using it can neither read the store nor load (e.g.
  // ModelRepository::Cached).
  using ModelCachedFn = std::function<bool(const common::v1::ModelRef&)>;
  // Small Classify calls run on gRPC's callback thread (adapter::Lane::kCaller) instead of the
  // worker pool: at most kInlineMaxTexts texts of at most `max_bytes` bytes in all
  // (--inline_classify_bytes), no explanation, against a model `cached` says is loaded, and at
  // most kMaxInlineCalls such calls at a time (others go to the pool). Their classification
  // costs microseconds with the word analyzers (a few per 100 bytes), less than the hand-off to a
  // worker and back, which dominated a single short text's server CPU. The worst a small text can
  // cost (measured at 512 bytes: ~14 ms against a custom token_pattern that backtracks up to its
  // step limit, then INVALID_ARGUMENT; ~0.1 ms per call in all with char_wb 1-16) holds at most
  // kMaxInlineCalls callback threads for that long, never all of them.
  // max_bytes <= 0 or no `cached` (the default): every Classify runs on the pool. Call before the
  // server starts.
  static constexpr int kInlineMaxTexts = 16;
  static constexpr int kMaxInlineCalls = 1;
  void InlineSmallClassify(int64_t max_bytes, ModelCachedFn cached) {
    inline_max_bytes_ = max_bytes;
    model_cached_ = std::move(cached);
  }
  // Whether a Classify request is small enough to run inline (see InlineSmallClassify; the cap
  // on inline calls at a time is checked separately).
  bool SmallEnoughInline(const v1::ClassifyRequest& request) const;

  grpc::ServerUnaryReactor* CreateModel(grpc::CallbackServerContext* context,
                                        const grpc::ByteBuffer* request,
                                        grpc::ByteBuffer* response) override;
  grpc::ServerReadReactor<grpc::ByteBuffer>* Train(grpc::CallbackServerContext* context,
                                                   grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* Classify(grpc::CallbackServerContext* context,
                                     const grpc::ByteBuffer* request,
                                     grpc::ByteBuffer* response) override;
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* ClassifyStream(
      grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* Vectorize(grpc::CallbackServerContext* context,
                                      const grpc::ByteBuffer* request,
                                      grpc::ByteBuffer* response) override;
  grpc::ServerReadReactor<grpc::ByteBuffer>* Evaluate(grpc::CallbackServerContext* context,
                                                      grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* GetModel(grpc::CallbackServerContext* context,
                                     const grpc::ByteBuffer* request,
                                     grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* context,
                                       const grpc::ByteBuffer* request,
                                       grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* DeleteModel(grpc::CallbackServerContext* context,
                                        const grpc::ByteBuffer* request,
                                        grpc::ByteBuffer* response) override;

 private:
  DiscriminativeCore* core_;
  const adapter::WriteAuthorizer* auth_;
  adapter::Dispatcher* dispatcher_;
  adapter::Dispatcher* train_dispatcher_;
  int64_t max_train_bytes_;
  adapter::StreamBudget* train_budget_;
  int64_t inline_max_bytes_ = 0;
  ModelCachedFn model_cached_;
  std::atomic<int> inline_calls_{0};  // small Classify calls running inline now
};

}  // namespace maas::discriminative

#endif  // MAAS_SERVICES_DISCRIMINATIVE_ADAPTER_DISCRIMINATIVE_SERVICE_H_
