// The gRPC adapter of the generative service: proto in, core call, proto and one status conversion
// out.
#ifndef MAAS_SERVICES_GENERATIVE_ADAPTER_GENERATIVE_SERVICE_H_
#define MAAS_SERVICES_GENERATIVE_ADAPTER_GENERATIVE_SERVICE_H_

#include "common/adapter/auth.h"
#include "maas/generative/v1/generative.grpc.pb.h"
#include "services/generative/core/generative_core.h"

namespace maas::generative {

class GenerativeServiceImpl final : public v1::GenerativeService::CallbackService {
 public:
  // `core` and `auth` are not owned and must outlive the service. `auth` guards the calls that
  // change state (CreateModel, FitModel, DeleteModel).
  GenerativeServiceImpl(GenerativeCore* core, const adapter::WriteAuthorizer* auth)
      : core_(core), auth_(auth) {}

  grpc::ServerUnaryReactor* CreateModel(grpc::CallbackServerContext* context,
                                        const v1::CreateModelRequest* request,
                                        v1::CreateModelResponse* response) override;
  grpc::ServerReadReactor<v1::FitModelRequest>* FitModel(grpc::CallbackServerContext* context,
                                                         v1::FitModelResponse* response) override;
  grpc::ServerWriteReactor<v1::SampleBatch>* Sample(grpc::CallbackServerContext* context,
                                                    const v1::SampleRequest* request) override;
  grpc::ServerUnaryReactor* EstimateLogLikelihood(
      grpc::CallbackServerContext* context, const v1::EstimateLogLikelihoodRequest* request,
      v1::EstimateLogLikelihoodResponse* response) override;
  grpc::ServerWriteReactor<v1::StreamEstimateResponse>* StreamEstimate(
      grpc::CallbackServerContext* context, const v1::StreamEstimateRequest* request) override;
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
  GenerativeCore* core_;
  const adapter::WriteAuthorizer* auth_;
};

}  // namespace maas::generative

#endif  // MAAS_SERVICES_GENERATIVE_ADAPTER_GENERATIVE_SERVICE_H_
