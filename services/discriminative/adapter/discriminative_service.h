// The gRPC adapter of the discriminative service: bytes in, parsed and admitted by the shared
// reactors, core call on the worker pool, proto and one status conversion out.
#ifndef MAAS_SERVICES_DISCRIMINATIVE_ADAPTER_DISCRIMINATIVE_SERVICE_H_
#define MAAS_SERVICES_DISCRIMINATIVE_ADAPTER_DISCRIMINATIVE_SERVICE_H_

#include <grpcpp/support/byte_buffer.h>

#include "common/adapter/auth.h"
#include "common/adapter/dispatcher.h"
#include "maas/discriminative/v1/discriminative.grpc.pb.h"
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
  // with RESOURCE_EXHAUSTED. `train_dispatcher` (not owned; null: `dispatcher`) runs the work of
  // Train streams (vectorizing each batch, the fit and the store) on a pool of its own, so
  // retraining never holds a worker that classification needs; Train calls are still admitted by
  // `dispatcher`.
  DiscriminativeServiceImpl(DiscriminativeCore* core, const adapter::WriteAuthorizer* auth,
                            adapter::Dispatcher* dispatcher, int64_t max_train_bytes = 0,
                            adapter::Dispatcher* train_dispatcher = nullptr)
      : core_(core),
        auth_(auth),
        dispatcher_(dispatcher),
        train_dispatcher_(train_dispatcher),
        max_train_bytes_(max_train_bytes) {}

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
};

}  // namespace maas::discriminative

#endif  // MAAS_SERVICES_DISCRIMINATIVE_ADAPTER_DISCRIMINATIVE_SERVICE_H_
