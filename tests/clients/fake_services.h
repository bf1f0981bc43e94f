// Fake GenerativeService / DiscriminativeService for the client tests: a few RPCs with trivially
// predictable answers, served in-process on port 0.
#ifndef MAAS_TESTS_CLIENTS_FAKE_SERVICES_H_
#define MAAS_TESTS_CLIENTS_FAKE_SERVICES_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "maas/discriminative/v1/discriminative.grpc.pb.h"
#include "maas/gateway/v1/gateway.grpc.pb.h"
#include "maas/generative/v1/generative.grpc.pb.h"

namespace maas::client::testing {

// What the fakes saw of the calls (for assertions).
struct Observed {
  std::mutex mu;
  std::vector<std::string> authorization;    // "authorization" header of each call ("" when absent)
  std::vector<double> deadline_seconds;      // seconds from the call's arrival to its deadline
  std::vector<size_t> train_batch_sizes;     // examples per TextBatch of the last Train call
  std::string train_name;                    // TrainConfig.name of the last Train call
  std::vector<size_t> evaluate_batch_sizes;  // examples per TextBatch of the last Evaluate call
  std::string evaluate_model;                // EvaluateConfig.model.name of the last Evaluate call
  bool sample_cancelled = false;             // whether a Sample call saw cancellation
  std::vector<uint32_t> fit_chunk_rows;    // rows of each Matrix message of the last FitModel call
  std::vector<size_t> fit_chunk_bytes;     // serialized size of each of those messages
  std::vector<double> fit_values;          // every value of the last FitModel call, in order
  uint32_t fit_cols = 0;                   // cols of its chunks (the last one)
  std::vector<size_t> classify_texts;      // texts of each Classify request
  std::vector<int64_t> classify_versions;  // model.version of each Classify request
};

// ListModels over a fixed listing, paged as the contract says (common.proto): the entries (models
// and unreadable_versions together) whose name starts with name_prefix, ordered by (name, version,
// type); page_size > 0 gives at most min(page_size, 1000, page_cap) of them after the token's, and
// a token whenever the page was cut there (so a last page can come back empty); a token needs
// page_size > 0 and the request's name_prefix and all_versions (INVALID_ARGUMENT otherwise), a
// negative page_size is INVALID_ARGUMENT. page_size 0 answers every entry, RESOURCE_EXHAUSTED above
// unpaged_cap of them (as a server above its message cap). Every answer carries missing_backends.
// The token is the fake's own ("fake:<entries given>:<all_versions>:<name_prefix>"): clients treat
// tokens as opaque.
class FakeListing {
 public:
  explicit FakeListing(common::v1::ListModelsResponse all = {}) { Set(std::move(all)); }
  void Set(common::v1::ListModelsResponse all);
  // The message budget: at most this many entries in a page (default 1000).
  void set_page_cap(int cap);
  // The message cap of an unpaged answer, in entries (default: none).
  void set_unpaged_cap(int cap);
  // false: a server older than paging, which ignores page_size and page_token.
  void set_pages(bool pages);
  // true: a broken server whose tokens cycle (0, 1, 0, ...) and whose pages repeat.
  void set_repeats_token(bool repeats);
  grpc::Status Answer(const common::v1::ListModelsRequest& request,
                      common::v1::ListModelsResponse* response);
  // (page_size, page_token) of every request answered, in order.
  std::vector<std::pair<int32_t, std::string>> requests();

 private:
  std::mutex mu_;
  common::v1::ListModelsResponse all_;
  int page_cap_ = 1000;
  int unpaged_cap_ = -1;
  bool pages_ = true;
  bool repeats_token_ = false;
  std::vector<std::pair<int32_t, std::string>> requests_;
};

// Sample: sample i (absolute index start_index + k) is the row [i, seed, 0.5 * i]; latents [i % 3].
//   NOT_FOUND for the model name "missing"; "slow" answers nothing until cancelled. seed defaults
//   to 99.
// EstimateLogLikelihood: row r's log_likelihood = -(sum of the row), standard_error = 0.5, ess = N,
//   exact_log_likelihood set only for model "exact". UNAUTHENTICATED unless the token is "secret"
//   when the model is "private".
// ListModels: listing() (a FakeListing); the generative service has "gmm" (version 1), the
//   discriminative one "spam" (version 2).
// FitModel: records the chunks (Observed::fit_*); answers the config's name, version 1, num_rows.
// GetModel: DATA_LOSS for "damaged" (as a version whose file cannot be read), else NOT_FOUND.
// DeleteModel: deletes version 2 of "damaged"; NOT_FOUND for other names.
class FakeGenerative final : public generative::v1::GenerativeService::Service {
 public:
  explicit FakeGenerative(Observed* observed) : observed_(observed) {}
  grpc::Status FitModel(grpc::ServerContext* context,
                        grpc::ServerReader<generative::v1::FitModelRequest>* reader,
                        generative::v1::FitModelResponse* response) override;
  grpc::Status GetModel(grpc::ServerContext* context,
                        const generative::v1::GetModelRequest* request,
                        generative::v1::GetModelResponse* response) override;
  grpc::Status DeleteModel(grpc::ServerContext* context,
                           const common::v1::DeleteModelRequest* request,
                           common::v1::DeleteModelResponse* response) override;
  grpc::Status Sample(grpc::ServerContext* context, const generative::v1::SampleRequest* request,
                      grpc::ServerWriter<generative::v1::SampleBatch>* writer) override;
  grpc::Status EstimateLogLikelihood(
      grpc::ServerContext* context, const generative::v1::EstimateLogLikelihoodRequest* request,
      generative::v1::EstimateLogLikelihoodResponse* response) override;
  grpc::Status ListModels(grpc::ServerContext* context,
                          const common::v1::ListModelsRequest* request,
                          common::v1::ListModelsResponse* response) override;
  FakeListing& listing() { return listing_; }

 private:
  Observed* observed_;
  FakeListing listing_;
};

// Train: records the batch sizes; answers num_documents, classes sorted, num_features = 7,
// version 3. Classify: label "long" when the text has more than 5 bytes, else "short"; scores for
// both classes; model_version 5, or the version asked for; INVALID_ARGUMENT naming texts[i] for a
// text "bad"; records the texts and version of each request (Observed::classify_*). Evaluate:
// records the batch sizes; predicts as Classify over the classes "long", "short" and answers
// num_documents, model_version 5, the weighted accuracy and confusion matrix (other metrics 0);
// NOT_FOUND for the model "missing", INVALID_ARGUMENT naming another label.
class FakeDiscriminative final : public discriminative::v1::DiscriminativeService::Service {
 public:
  explicit FakeDiscriminative(Observed* observed) : observed_(observed) {}
  grpc::Status Train(grpc::ServerContext* context,
                     grpc::ServerReader<discriminative::v1::TrainRequest>* reader,
                     discriminative::v1::TrainResponse* response) override;
  grpc::Status Evaluate(grpc::ServerContext* context,
                        grpc::ServerReader<discriminative::v1::EvaluateRequest>* reader,
                        discriminative::v1::EvaluateResponse* response) override;
  grpc::Status Classify(grpc::ServerContext* context,
                        const discriminative::v1::ClassifyRequest* request,
                        discriminative::v1::ClassifyResponse* response) override;
  grpc::Status ListModels(grpc::ServerContext* context,
                          const common::v1::ListModelsRequest* request,
                          common::v1::ListModelsResponse* response) override;
  FakeListing& listing() { return listing_; }

 private:
  Observed* observed_;
  FakeListing listing_;
};

// Gateway: ListModels answers listing() (empty until set_list_models sets it), paged as the
// listing's options say.
class FakeGateway final : public gateway::v1::Gateway::Service {
 public:
  grpc::Status ListModels(grpc::ServerContext* context,
                          const common::v1::ListModelsRequest* request,
                          common::v1::ListModelsResponse* response) override;
  // The whole listing (its entries, each sorted by the listing, and missing_backends).
  void set_list_models(const common::v1::ListModelsResponse& response) { listing_.Set(response); }
  FakeListing& listing() { return listing_; }

 private:
  FakeListing listing_;
};

// The generative fake, the discriminative one unless !with_discriminative, and with_gateway the
// fake gateway, on 127.0.0.1:<free port>; messages up to 64 MiB are received, as by the real
// services.
class FakeServer {
 public:
  explicit FakeServer(bool with_gateway = false, bool with_discriminative = true);
  ~FakeServer();
  std::string target() const { return "127.0.0.1:" + std::to_string(port_); }
  Observed& observed() { return observed_; }
  FakeGateway& gateway() { return gateway_; }
  FakeGenerative& generative() { return generative_; }
  FakeDiscriminative& discriminative() { return discriminative_; }

 private:
  Observed observed_;
  FakeGenerative generative_{&observed_};
  FakeDiscriminative discriminative_{&observed_};
  FakeGateway gateway_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace maas::client::testing

#endif  // MAAS_TESTS_CLIENTS_FAKE_SERVICES_H_
