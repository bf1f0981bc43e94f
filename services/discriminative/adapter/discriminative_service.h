// The gRPC adapter of the discriminative service: proto in, core call, proto and one status
// conversion out.
#ifndef MAAS_SERVICES_DISCRIMINATIVE_ADAPTER_DISCRIMINATIVE_SERVICE_H_
#define MAAS_SERVICES_DISCRIMINATIVE_ADAPTER_DISCRIMINATIVE_SERVICE_H_

#include "common/adapter/auth.h"
#include "maas/discriminative/v1/discriminative.grpc.pb.h"
#include "services/discriminative/core/discriminative_core.h"

namespace maas::discriminative {

class DiscriminativeServiceImpl final : public v1::DiscriminativeService::CallbackService {
 public:
  // `core` and `auth` are not owned and must outlive the service. `auth` guards the calls that
  // change state (CreateModel, Train, DeleteModel).
  DiscriminativeServiceImpl(DiscriminativeCore* core, const adapter::WriteAuthorizer* auth)
      : core_(core), auth_(auth) {}

  grpc::ServerUnaryReactor* CreateModel(grpc::CallbackServerContext* context,
                                        const v1::CreateModelRequest* request,
                                        v1::CreateModelResponse* response) override;
  grpc::ServerReadReactor<v1::TrainRequest>* Train(grpc::CallbackServerContext* context,
                                                   v1::TrainResponse* response) override;
  grpc::ServerUnaryReactor* Classify(grpc::CallbackServerContext* context,
                                     const v1::ClassifyRequest* request,
                                     v1::ClassifyResponse* response) override;
  grpc::ServerBidiReactor<v1::ClassifyRequest, v1::ClassifyResponse>* ClassifyStream(
      grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* Vectorize(grpc::CallbackServerContext* context,
                                      const v1::VectorizeRequest* request,
                                      v1::VectorizeResponse* response) override;
  grpc::ServerReadReactor<v1::EvaluateRequest>* Evaluate(grpc::CallbackServerContext* context,
                                                         v1::EvaluateResponse* response) override;
  grpc::ServerUnaryReactor* GetModel(grpc::CallbackServerContext* context,
                                     const v1::GetModelRequest* request,
                                     v1::GetModelResponse* response) override;
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* context,
                                       const common::v1::ListModelsRequest* request,
                                       common::v1::ListModelsResponse* response) override;
  grpc::ServerUnaryReactor* DeleteModel(grpc::CallbackServerContext* context,
                                        const common::v1::DeleteModelRequest* request,
                                        common::v1::DeleteModelResponse* response) override;

 private:
  DiscriminativeCore* core_;
  const adapter::WriteAuthorizer* auth_;
};

}  // namespace maas::discriminative

#endif  // MAAS_SERVICES_DISCRIMINATIVE_ADAPTER_DISCRIMINATIVE_SERVICE_H_
