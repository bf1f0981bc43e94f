#include "tests/clients/fake_services.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <stdexcept>
#include <thread>
#include <tuple>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace maas::client::testing {
namespace {

namespace cv1 = ::maas::common::v1;
namespace dv1 = ::maas::discriminative::v1;
namespace gv1 = ::maas::generative::v1;

void Record(grpc::ServerContext* context, Observed* observed) {
  std::string authorization;
  const auto& metadata = context->client_metadata();
  const auto it = metadata.find("authorization");
  if (it != metadata.end()) authorization.assign(it->second.data(), it->second.size());
  const double seconds =
      std::chrono::duration<double>(context->deadline() - std::chrono::system_clock::now()).count();
  std::lock_guard<std::mutex> lock(observed->mu);
  observed->authorization.push_back(authorization);
  observed->deadline_seconds.push_back(seconds);
}

// The sort key of a listing's entry (a ModelInfo or an UnreadableVersion).
template <typename Entry>
std::tuple<std::string, int64_t, int> KeyOf(const Entry& entry) {
  return {entry.name(), entry.version(), entry.type()};
}

}  // namespace

void FakeListing::Set(cv1::ListModelsResponse all) {
  const auto by_key = [](const auto& a, const auto& b) { return KeyOf(a) < KeyOf(b); };
  std::sort(all.mutable_models()->begin(), all.mutable_models()->end(), by_key);
  std::sort(all.mutable_unreadable_versions()->begin(), all.mutable_unreadable_versions()->end(),
            by_key);
  std::lock_guard<std::mutex> lock(mu_);
  all_ = std::move(all);
}

void FakeListing::set_page_cap(int cap) {
  std::lock_guard<std::mutex> lock(mu_);
  page_cap_ = cap;
}

void FakeListing::set_unpaged_cap(int cap) {
  std::lock_guard<std::mutex> lock(mu_);
  unpaged_cap_ = cap;
}

void FakeListing::set_pages(bool pages) {
  std::lock_guard<std::mutex> lock(mu_);
  pages_ = pages;
}

void FakeListing::set_repeats_token(bool repeats) {
  std::lock_guard<std::mutex> lock(mu_);
  repeats_token_ = repeats;
}

std::vector<std::pair<int32_t, std::string>> FakeListing::requests() {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}

grpc::Status FakeListing::Answer(const cv1::ListModelsRequest& request,
                                 cv1::ListModelsResponse* response) {
  std::lock_guard<std::mutex> lock(mu_);
  requests_.emplace_back(request.page_size(), request.page_token());
  *response->mutable_missing_backends() = all_.missing_backends();
  // The covered entries in listing order: (is a model, index in its field).
  std::vector<std::pair<bool, int>> entries;
  int m = 0;
  int u = 0;
  const auto covered = [&](const std::string& name) {
    return name.compare(0, request.name_prefix().size(), request.name_prefix()) == 0;
  };
  while (m < all_.models_size() || u < all_.unreadable_versions_size()) {
    const bool model =
        u == all_.unreadable_versions_size() ||
        (m < all_.models_size() && KeyOf(all_.models(m)) < KeyOf(all_.unreadable_versions(u)));
    const int index = model ? m++ : u++;
    const std::string& name =
        model ? all_.models(index).name() : all_.unreadable_versions(index).name();
    if (covered(name)) entries.emplace_back(model, index);
  }
  const auto give = [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      if (entries[i].first) {
        *response->add_models() = all_.models(entries[i].second);
      } else {
        *response->add_unreadable_versions() = all_.unreadable_versions(entries[i].second);
      }
    }
  };
  const bool unpaged = request.page_size() == 0 && request.page_token().empty();
  if (!pages_ || unpaged) {
    if (pages_ && unpaged_cap_ >= 0 && entries.size() > static_cast<size_t>(unpaged_cap_)) {
      response->Clear();
      return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                          "the listing is larger than the largest message; page through it");
    }
    give(0, entries.size());
    return grpc::Status::OK;
  }
  if (request.page_size() <= 0) {
    response->Clear();
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "page_size must be > 0 with a page token");
  }
  const std::string suffix =
      absl::StrCat(":", request.all_versions() ? 1 : 0, ":", request.name_prefix());
  size_t start = 0;
  if (!request.page_token().empty()) {
    const std::vector<std::string> parts =
        absl::StrSplit(request.page_token(), absl::MaxSplits(':', 2));
    if (parts.size() != 3 || parts[0] != "fake" || !absl::SimpleAtoi(parts[1], &start) ||
        start > entries.size() || absl::StrCat(":", parts[2]) != suffix) {
      response->Clear();
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "page_token is not a token of this listing");
    }
  }
  const size_t limit = static_cast<size_t>(std::min({request.page_size(), 1000, page_cap_}));
  const size_t end = std::min(entries.size(), start + limit);
  give(start, end);
  if (repeats_token_) {  // "" -> 0 -> 1 -> 0 ...: a listing that never ends
    response->set_next_page_token(absl::StrCat(
        "fake:", request.page_token() == absl::StrCat("fake:0", suffix) ? 1 : 0, suffix));
  } else if (end - start == limit) {
    response->set_next_page_token(absl::StrCat("fake:", end, suffix));
  }
  return grpc::Status::OK;
}

grpc::Status FakeGenerative::Sample(grpc::ServerContext* context, const gv1::SampleRequest* request,
                                    grpc::ServerWriter<gv1::SampleBatch>* writer) {
  Record(context, observed_);
  if (request->model().name() == "missing") {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "model 'missing' not found");
  }
  if (request->model().name() == "slow") {
    // Waits (at most 10 s) for the client's deadline to cancel the call.
    const auto give_up = std::chrono::system_clock::now() + std::chrono::seconds(10);
    while (!context->IsCancelled() && std::chrono::system_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
  }
  const uint64_t seed = request->has_seed() ? request->seed() : 99;
  const uint64_t batch_size = request->batch_size() == 0 ? 1024 : request->batch_size();
  for (uint64_t done = 0; done < request->num_samples();) {
    if (context->IsCancelled()) {
      std::lock_guard<std::mutex> lock(observed_->mu);
      observed_->sample_cancelled = true;
      return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
    }
    const uint64_t n = std::min(batch_size, request->num_samples() - done);
    gv1::SampleBatch batch;
    batch.set_start_index(request->start_index() + done);
    batch.set_seed(seed);
    batch.set_model_version(4);
    batch.mutable_x()->set_rows(n);
    batch.mutable_x()->set_cols(3);
    if (request->include_latents()) {
      batch.mutable_latents()->set_rows(n);
      batch.mutable_latents()->set_cols(1);
    }
    for (uint64_t k = 0; k < n; ++k) {
      const uint64_t i = request->start_index() + done + k;
      batch.mutable_x()->add_values(static_cast<double>(i));
      batch.mutable_x()->add_values(static_cast<double>(seed));
      batch.mutable_x()->add_values(0.5 * static_cast<double>(i));
      if (request->include_latents())
        batch.mutable_latents()->add_values(static_cast<double>(i % 3));
    }
    if (!writer->Write(batch)) break;
    done += n;
  }
  if (context->IsCancelled()) {
    std::lock_guard<std::mutex> lock(observed_->mu);
    observed_->sample_cancelled = true;
  }
  return grpc::Status::OK;
}

grpc::Status FakeGenerative::EstimateLogLikelihood(grpc::ServerContext* context,
                                                   const gv1::EstimateLogLikelihoodRequest* request,
                                                   gv1::EstimateLogLikelihoodResponse* response) {
  Record(context, observed_);
  if (request->model().name() == "private") {
    const auto& metadata = context->client_metadata();
    const auto it = metadata.find("authorization");
    if (it == metadata.end() || it->second != "Bearer secret") {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "missing or wrong bearer token");
    }
  }
  const cv1::Matrix& x = request->x();
  if (x.rows() * x.cols() != static_cast<uint32_t>(x.values_size())) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad matrix");
  }
  const uint64_t n = request->num_samples() == 0 ? 1000 : request->num_samples();
  for (uint32_t r = 0; r < x.rows(); ++r) {
    double sum = 0;
    for (uint32_t c = 0; c < x.cols(); ++c) sum += x.values(r * x.cols() + c);
    gv1::RowEstimate* row = response->add_rows();
    row->set_log_likelihood(-sum);
    row->set_standard_error(0.5);
    row->set_ess(static_cast<double>(n));
    row->set_num_samples(n);
    row->set_pareto_k(std::numeric_limits<double>::quiet_NaN());
    if (request->model().name() == "exact") row->set_exact_log_likelihood(-sum);
  }
  response->set_estimator(
      request->estimator() == gv1::ESTIMATOR_UNSPECIFIED ? gv1::EXACT : request->estimator());
  response->set_seed(request->has_seed() ? request->seed() : 0);
  response->set_model_version(2);
  return grpc::Status::OK;
}

grpc::Status FakeGenerative::ListModels(grpc::ServerContext* context,
                                        const cv1::ListModelsRequest* request,
                                        cv1::ListModelsResponse* response) {
  Record(context, observed_);
  return listing_.Answer(*request, response);
}

grpc::Status FakeGenerative::FitModel(grpc::ServerContext* context,
                                      grpc::ServerReader<gv1::FitModelRequest>* reader,
                                      gv1::FitModelResponse* response) {
  Record(context, observed_);
  gv1::FitModelRequest message;
  if (!reader->Read(&message) || !message.has_config()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "first message must be the config");
  }
  const std::string name = message.config().name();
  std::vector<uint32_t> rows;
  std::vector<size_t> bytes;
  std::vector<double> values;
  uint32_t cols = 0;
  uint64_t num_rows = 0;
  while (reader->Read(&message)) {
    if (!message.has_rows()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "config sent twice");
    }
    const cv1::Matrix& chunk = message.rows();
    if (static_cast<uint64_t>(chunk.values_size()) !=
        static_cast<uint64_t>(chunk.rows()) * chunk.cols()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad matrix");
    }
    rows.push_back(chunk.rows());
    bytes.push_back(message.ByteSizeLong());
    values.insert(values.end(), chunk.values().begin(), chunk.values().end());
    cols = chunk.cols();
    num_rows += chunk.rows();
  }
  {
    std::lock_guard<std::mutex> lock(observed_->mu);
    observed_->fit_chunk_rows = std::move(rows);
    observed_->fit_chunk_bytes = std::move(bytes);
    observed_->fit_values = std::move(values);
    observed_->fit_cols = cols;
  }
  response->mutable_info()->set_name(name);
  response->mutable_info()->set_version(1);
  response->mutable_info()->set_type(cv1::GENERATIVE);
  response->mutable_info()->set_dimension(cols);
  response->mutable_trace()->set_num_rows(num_rows);
  return grpc::Status::OK;
}

grpc::Status FakeGenerative::GetModel(grpc::ServerContext* context,
                                      const gv1::GetModelRequest* request,
                                      gv1::GetModelResponse* /*response*/) {
  Record(context, observed_);
  if (request->model().name() == "damaged") {
    return grpc::Status(grpc::StatusCode::DATA_LOSS, "model 'damaged' version 2 cannot be read");
  }
  return grpc::Status(grpc::StatusCode::NOT_FOUND,
                      "model '" + request->model().name() + "' not found");
}

grpc::Status FakeGenerative::DeleteModel(grpc::ServerContext* context,
                                         const cv1::DeleteModelRequest* request,
                                         cv1::DeleteModelResponse* response) {
  Record(context, observed_);
  if (request->name() != "damaged") {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "model '" + request->name() + "' not found");
  }
  response->add_deleted_versions(2);
  return grpc::Status::OK;
}

grpc::Status FakeDiscriminative::Train(grpc::ServerContext* context,
                                       grpc::ServerReader<dv1::TrainRequest>* reader,
                                       dv1::TrainResponse* response) {
  Record(context, observed_);
  dv1::TrainRequest message;
  if (!reader->Read(&message) || !message.has_config()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "first message must be the config");
  }
  const std::string name = message.config().name();
  std::vector<size_t> sizes;
  std::set<std::string> classes;
  std::map<std::string, double> counts;
  uint64_t documents = 0;
  while (reader->Read(&message)) {
    if (!message.has_batch()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "config sent twice");
    }
    sizes.push_back(message.batch().examples_size());
    for (const dv1::LabeledText& example : message.batch().examples()) {
      classes.insert(example.label());
      counts[example.label()] += 1;
      ++documents;
    }
  }
  {
    std::lock_guard<std::mutex> lock(observed_->mu);
    observed_->train_batch_sizes = sizes;
    observed_->train_name = name;
  }
  if (documents == 0) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no examples");
  response->mutable_info()->set_name(name);
  response->mutable_info()->set_version(3);
  response->mutable_info()->set_type(cv1::DISCRIMINATIVE);
  response->mutable_info()->set_family("count+multinomial_nb");
  response->mutable_summary()->set_num_documents(documents);
  response->mutable_summary()->set_num_features(7);
  for (const std::string& label : classes) {
    response->mutable_summary()->add_classes(label);
    response->mutable_summary()->add_class_count(counts[label]);
  }
  return grpc::Status::OK;
}

grpc::Status FakeDiscriminative::Evaluate(grpc::ServerContext* context,
                                          grpc::ServerReader<dv1::EvaluateRequest>* reader,
                                          dv1::EvaluateResponse* response) {
  Record(context, observed_);
  dv1::EvaluateRequest message;
  if (!reader->Read(&message) || !message.has_config()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "first message must be the config");
  }
  const std::string model = message.config().model().name();
  const std::vector<std::string> classes = {"long", "short"};
  std::vector<size_t> sizes;
  double confusion[2][2] = {{0, 0}, {0, 0}};
  double total = 0;
  uint64_t documents = 0;
  grpc::Status status = grpc::Status::OK;
  while (reader->Read(&message)) {
    if (!message.has_batch()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "config sent twice");
    }
    sizes.push_back(message.batch().examples_size());
    for (const dv1::LabeledText& example : message.batch().examples()) {
      const auto truth = std::find(classes.begin(), classes.end(), example.label());
      if (truth == classes.end()) {
        if (status.ok()) {
          status = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                "label '" + example.label() + "' is not a class of the model");
        }
        continue;
      }
      const double weight = example.has_weight() ? example.weight() : 1.0;
      const int predicted = example.text().size() > 5 ? 0 : 1;
      confusion[truth - classes.begin()][predicted] += weight;
      total += weight;
      ++documents;
    }
  }
  {
    std::lock_guard<std::mutex> lock(observed_->mu);
    observed_->evaluate_batch_sizes = sizes;
    observed_->evaluate_model = model;
  }
  if (model == "missing") {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "model 'missing' not found");
  }
  if (!status.ok()) return status;
  if (documents == 0) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no examples");
  response->set_num_documents(documents);
  response->set_model_version(5);
  response->set_accuracy((confusion[0][0] + confusion[1][1]) / total);
  for (size_t i = 0; i < classes.size(); ++i) {
    dv1::ClassMetrics* metrics = response->add_classes();
    metrics->set_label(classes[i]);
    metrics->set_support(confusion[i][0] + confusion[i][1]);
  }
  cv1::Matrix* matrix = response->mutable_confusion_matrix();
  matrix->set_rows(2);
  matrix->set_cols(2);
  for (const auto& row : confusion) matrix->mutable_values()->Add(std::begin(row), std::end(row));
  return grpc::Status::OK;
}

grpc::Status FakeDiscriminative::Classify(grpc::ServerContext* context,
                                          const dv1::ClassifyRequest* request,
                                          dv1::ClassifyResponse* response) {
  Record(context, observed_);
  {
    std::lock_guard<std::mutex> lock(observed_->mu);
    observed_->classify_texts.push_back(static_cast<size_t>(request->texts_size()));
    observed_->classify_versions.push_back(request->model().version());
  }
  for (int i = 0; i < request->texts_size(); ++i) {
    const std::string& text = request->texts(i);
    if (text == "bad") {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "texts[" + std::to_string(i) + "] is bad");
    }
    const bool is_long = text.size() > 5;
    dv1::Classification* result = response->add_results();
    result->set_label(is_long ? "long" : "short");
    dv1::ClassScore* first = result->add_scores();
    first->set_label("long");
    first->set_probability(is_long ? 0.75 : 0.25);
    first->set_log_probability(std::log(first->probability()));
    dv1::ClassScore* second = result->add_scores();
    second->set_label("short");
    second->set_probability(is_long ? 0.25 : 0.75);
    second->set_log_probability(std::log(second->probability()));
  }
  response->set_model_version(request->model().version() != 0 ? request->model().version() : 5);
  return grpc::Status::OK;
}

grpc::Status FakeDiscriminative::ListModels(grpc::ServerContext* context,
                                            const cv1::ListModelsRequest* request,
                                            cv1::ListModelsResponse* response) {
  Record(context, observed_);
  return listing_.Answer(*request, response);
}

grpc::Status FakeGateway::ListModels(grpc::ServerContext* /*context*/,
                                     const cv1::ListModelsRequest* request,
                                     cv1::ListModelsResponse* response) {
  return listing_.Answer(*request, response);
}

FakeServer::FakeServer(bool with_gateway, bool with_discriminative) {
  cv1::ListModelsResponse gmm;
  cv1::ModelInfo* info = gmm.add_models();
  info->set_name("gmm");
  info->set_version(1);
  info->set_type(cv1::GENERATIVE);
  generative_.listing().Set(gmm);
  cv1::ListModelsResponse spam;
  info = spam.add_models();
  info->set_name("spam");
  info->set_version(2);
  info->set_type(cv1::DISCRIMINATIVE);
  discriminative_.listing().Set(spam);

  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
  builder.SetMaxReceiveMessageSize(64 << 20);
  builder.RegisterService(&generative_);
  if (with_discriminative) builder.RegisterService(&discriminative_);
  if (with_gateway) builder.RegisterService(&gateway_);
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port_ == 0) throw std::runtime_error("cannot start the fake server");
}

FakeServer::~FakeServer() { server_->Shutdown(std::chrono::system_clock::now()); }

}  // namespace maas::client::testing
