// The gRPC adapter of the generative service: bytes in, parsed and admitted by the shared reactors,
// core call on the worker pool, proto and one status conversion out.
#ifndef MAAS_SERVICES_GENERATIVE_ADAPTER_GENERATIVE_SERVICE_H_
#define MAAS_SERVICES_GENERATIVE_ADAPTER_GENERATIVE_SERVICE_H_

#include <grpcpp/support/byte_buffer.h>

#include <algorithm>

#include "common/adapter/auth.h"
#include "common/adapter/dispatcher.h"
#include "common/adapter/stream_budget.h"
#include "common/exec/worker_pool.h"
#include "maas/generative/v1/generative.grpc.pb.h"
#include "services/generative/core/generative_core.h"

namespace maas::generative {

// Every method is registered as a raw (bytes) callback method: the shared reactors parse the
// messages themselves, so an unparseable one is INVALID_ARGUMENT instead of looking like the end
// of a stream.
using RawGenerativeService = v1::GenerativeService::WithRawCallbackMethod_CreateModel<
    v1::GenerativeService::WithRawCallbackMethod_FitModel<
        v1::GenerativeService::WithRawCallbackMethod_Sample<
            v1::GenerativeService::WithRawCallbackMethod_EstimateLogLikelihood<
                v1::GenerativeService::WithRawCallbackMethod_StreamEstimate<
                    v1::GenerativeService::WithRawCallbackMethod_GetModel<
                        v1::GenerativeService::WithRawCallbackMethod_ListModels<
                            v1::GenerativeService::WithRawCallbackMethod_DeleteModel<
                                v1::GenerativeService::Service>>>>>>>>;

class GenerativeServiceImpl final : public RawGenerativeService {
 public:
  // `core`, `auth` and `dispatcher` are not owned and must outlive the service. `auth` guards the
  // calls that change state (CreateModel, FitModel, DeleteModel); `dispatcher` admits calls and
  // runs their work on the worker pool.
  // FitModel streams above `max_fit_bytes` bytes in total (--max_fit_bytes; <= 0 = no cap) end with
  // RESOURCE_EXHAUSTED, and so does one whose messages would take the bytes that all FitModel
  // streams hold above `fit_budget`'s cap (--max_total_fit_bytes; not owned; null: none).
  // Sample streams serialise their batches (sample_wire.h) and start their writes on a writer pool
  // of the service (half the worker pool's threads, at least one), so a batch's serialisation and
  // send (gRPC writes on the thread that starts the write) overlap the sampling of the next one.
  GenerativeServiceImpl(GenerativeCore* core, const adapter::WriteAuthorizer* auth,
                        adapter::Dispatcher* dispatcher, int64_t max_fit_bytes = 0,
                        adapter::StreamBudget* fit_budget = nullptr)
      : core_(core),
        auth_(auth),
        dispatcher_(dispatcher),
        max_fit_bytes_(max_fit_bytes),
        fit_budget_(fit_budget),
        sample_writer_({std::max(1, dispatcher->executor().parallelism() / 2)}) {}

  grpc::ServerUnaryReactor* CreateModel(grpc::CallbackServerContext* context,
                                        const grpc::ByteBuffer* request,
                                        grpc::ByteBuffer* response) override;
  grpc::ServerReadReactor<grpc::ByteBuffer>* FitModel(grpc::CallbackServerContext* context,
                                                      grpc::ByteBuffer* response) override;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* Sample(grpc::CallbackServerContext* context,
                                                     const grpc::ByteBuffer* request) override;
  grpc::ServerUnaryReactor* EstimateLogLikelihood(grpc::CallbackServerContext* context,
                                                  const grpc::ByteBuffer* request,
                                                  grpc::ByteBuffer* response) override;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* StreamEstimate(
      grpc::CallbackServerContext* context, const grpc::ByteBuffer* request) override;
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
  GenerativeCore* core_;
  const adapter::WriteAuthorizer* auth_;
  adapter::Dispatcher* dispatcher_;
  int64_t max_fit_bytes_;
  adapter::StreamBudget* fit_budget_;
  // Declared last: destroyed first, after the server's calls ended (none of its tasks is left).
  exec::WorkerPool sample_writer_;
};

}  // namespace maas::generative

#endif  // MAAS_SERVICES_GENERATIVE_ADAPTER_GENERATIVE_SERVICE_H_
