#include "clients/cpp/commands.h"

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"

namespace maas::client {
namespace {

namespace cv1 = ::maas::common::v1;
namespace dv1 = ::maas::discriminative::v1;
namespace gv1 = ::maas::generative::v1;

cv1::ModelRef ModelRefOf(const cli::CommandArgs& args) {
  cv1::ModelRef ref;
  ref.set_name(args.model);
  ref.set_version(args.version);
  return ref;
}

absl::Status RunModels(Client& client, const cli::CommandArgs& args, std::ostream& out,
                       std::ostream& warnings, CommandOutcome* outcome) {
  cv1::ListModelsRequest request;
  request.set_all_versions(args.all_versions);
  absl::StatusOr<cv1::ListModelsResponse> listed;
  if (args.flags_set.count("page_size") > 0) {  // one page, as the user pages
    request.set_page_size(args.page_size);
    request.set_page_token(args.page_token);
    listed = client.ListModels(request);
  } else {
    listed = client.ListAllModels(request);
  }
  MAAS_ASSIGN_OR_RETURN(const cv1::ListModelsResponse response, std::move(listed));
  out << cli::FormatModels(response, args.json);
  if (!args.json) warnings << cli::FormatModelWarnings(response);
  outcome->incomplete = response.missing_backends_size() > 0;
  return absl::OkStatus();
}

absl::Status RunSample(Client& client, const cli::CommandArgs& args, std::ostream& out) {
  gv1::SampleRequest request;
  *request.mutable_model() = ModelRefOf(args);
  request.set_num_samples(args.num_samples);
  if (args.seed.has_value()) request.set_seed(*args.seed);
  request.set_start_index(args.start_index);
  request.set_batch_size(args.batch_size);
  request.set_include_latents(args.latents);
  if (args.json) {
    MAAS_ASSIGN_OR_RETURN(const std::vector<gv1::SampleBatch> batches, client.Sample(request));
    MAAS_ASSIGN_OR_RETURN(const std::string text,
                          cli::FormatSamplesJson(args.model, args.num_samples, batches));
    out << text;
    return absl::OkStatus();
  }
  bool first = true;
  MAAS_RETURN_IF_ERROR(client.Sample(request, [&](const gv1::SampleBatch& batch) -> absl::Status {
    if (first) {
      out << cli::FormatSampleHeader(args.model, args.num_samples, batch);
      first = false;
    }
    MAAS_ASSIGN_OR_RETURN(const std::string rows, cli::FormatSampleRows(batch));
    out << rows << std::flush;
    if (!out) return absl::UnavailableError("cannot write to the output");
    return absl::OkStatus();
  }));
  if (first) {
    return absl::DataLossError("the server ended the sample stream without sending any sample");
  }
  return absl::OkStatus();
}

absl::Status RunEstimate(Client& client, const cli::CommandArgs& args, std::ostream& out) {
  gv1::EstimateLogLikelihoodRequest request;
  *request.mutable_model() = ModelRefOf(args);
  if (!args.x_file.empty()) {
    MAAS_ASSIGN_OR_RETURN(const std::string content, cli::ReadFile(args.x_file));
    absl::StatusOr<cv1::Matrix> x = cli::ParseMatrixCsv(content);
    if (!x.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(args.x_file, ": ", x.status().message()));
    }
    *request.mutable_x() = *std::move(x);
  } else {
    absl::StatusOr<cv1::Matrix> x = cli::ParseMatrix(args.x);
    if (!x.ok()) return absl::InvalidArgumentError(absl::StrCat("--x: ", x.status().message()));
    *request.mutable_x() = *std::move(x);
  }
  MAAS_ASSIGN_OR_RETURN(const gv1::Estimator estimator, cli::ParseEstimator(args.estimator));
  request.set_estimator(estimator);
  request.set_num_samples(args.num_samples);
  if (args.seed.has_value()) request.set_seed(*args.seed);
  request.set_row_offset(args.row_offset);
  request.set_sample_offset(args.sample_offset);
  MAAS_ASSIGN_OR_RETURN(const gv1::EstimateLogLikelihoodResponse response,
                        client.Estimate(request));
  out << cli::FormatEstimate(args.model, response, args.json, args.row_offset, args.sample_offset);
  return absl::OkStatus();
}

absl::Status RunTrain(Client& client, const cli::CommandArgs& args, std::ostream& out) {
  MAAS_ASSIGN_OR_RETURN(dv1::TrainConfig config, cli::BuildTrainConfig(args));
  MAAS_RETURN_IF_ERROR(cli::AddTrainWordLists(args, &config));
  MAAS_ASSIGN_OR_RETURN(const std::string content, cli::ReadFile(args.data));
  absl::StatusOr<std::vector<dv1::LabeledText>> examples =
      args.train.weighted ? cli::ParseWeightedTrainingTsv(content) : cli::ParseTrainingTsv(content);
  if (!examples.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(args.data, ": ", examples.status().message()));
  }
  MAAS_ASSIGN_OR_RETURN(const dv1::TrainResponse response, client.Train(config, *examples));
  out << cli::FormatTrain(response, args.json);
  return absl::OkStatus();
}

absl::Status RunEvaluate(Client& client, const cli::CommandArgs& args, std::ostream& out) {
  MAAS_ASSIGN_OR_RETURN(const std::string content, cli::ReadFile(args.data));
  // The same file format (and parser) as train's --data.
  absl::StatusOr<std::vector<dv1::LabeledText>> examples =
      args.train.weighted ? cli::ParseWeightedTrainingTsv(content) : cli::ParseTrainingTsv(content);
  if (!examples.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(args.data, ": ", examples.status().message()));
  }
  dv1::EvaluateConfig config;
  *config.mutable_model() = ModelRefOf(args);
  MAAS_ASSIGN_OR_RETURN(const dv1::EvaluateResponse response, client.Evaluate(config, *examples));
  MAAS_ASSIGN_OR_RETURN(const std::string text,
                        cli::FormatEvaluate(args.model, response, args.json));
  out << text;
  return absl::OkStatus();
}

absl::Status RunFit(Client& client, const cli::CommandArgs& args, std::ostream& out) {
  MAAS_ASSIGN_OR_RETURN(const gv1::FitConfig config, cli::BuildFitConfig(args));
  MAAS_ASSIGN_OR_RETURN(const std::string content, cli::ReadFile(args.data));
  absl::StatusOr<cv1::Matrix> rows = cli::ParseMatrixCsv(content);
  if (!rows.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(args.data, ": ", rows.status().message()));
  }
  MAAS_ASSIGN_OR_RETURN(const gv1::FitModelResponse response, client.FitModel(config, *rows));
  out << cli::FormatFit(response, args.json);
  return absl::OkStatus();
}

absl::Status RunClassify(Client& client, const cli::CommandArgs& args, std::ostream& out) {
  std::vector<std::string> texts = args.positional;
  if (!args.text_file.empty()) {
    MAAS_ASSIGN_OR_RETURN(const std::string content, cli::ReadFile(args.text_file));
    absl::StatusOr<std::vector<std::string>> lines = cli::ParseTextLines(content);
    if (!lines.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(args.text_file, ": ", lines.status().message()));
    }
    texts = *std::move(lines);
  }
  // In batches (kClassifyBatchTexts, kClassifyBatchBytes): a file of more texts than a server takes
  // per request, or larger than its largest message, was refused whole. The answers are merged
  // into one response, printed as one call's.
  dv1::ClassifyRequest request;
  *request.mutable_model() = ModelRefOf(args);
  request.set_top_k(args.top_k);
  dv1::ClassifyResponse merged;
  size_t next = 0;
  do {
    const size_t first = next;
    request.clear_texts();
    size_t bytes = 0;
    while (next < texts.size() && static_cast<size_t>(request.texts_size()) < kClassifyBatchTexts &&
           (request.texts_size() == 0 || bytes + texts[next].size() <= kClassifyBatchBytes)) {
      bytes += texts[next].size();
      request.add_texts(texts[next++]);
    }
    absl::StatusOr<dv1::ClassifyResponse> response = client.Classify(request);
    if (!response.ok()) {
      if (first == 0 && next == texts.size()) return response.status();  // one call: as it is
      // The server counts texts[i] within this request.
      return absl::Status(
          response.status().code(),
          absl::StrCat("in the request of texts ", first, " to ", next - 1, " (of ", texts.size(),
                       "; its texts[i] is text ", first, " + i): ", response.status().message()));
    }
    if (response->results_size() != request.texts_size()) {
      return absl::InternalError(absl::StrCat("Classify answered ", response->results_size(),
                                              " results for ", request.texts_size(), " texts"));
    }
    if (first == 0) {
      // Every later batch asks for the version that answered the first (the latest may change
      // meanwhile).
      request.mutable_model()->set_version(response->model_version());
      merged = *std::move(response);
    } else {
      for (dv1::Classification& result : *response->mutable_results()) {
        *merged.add_results() = std::move(result);
      }
    }
  } while (next < texts.size());
  out << cli::FormatClassify(texts, merged, args.json);
  return absl::OkStatus();
}

absl::Status RunGet(Client& client, const cli::CommandArgs& args, std::ostream& out) {
  MAAS_ASSIGN_OR_RETURN(const cv1::ModelType type, cli::ParseModelType(args.type));
  MAAS_ASSIGN_OR_RETURN(const AnyModel model, client.GetModel(ModelRefOf(args), type));
  const google::protobuf::Message& message =
      model.type == cv1::GENERATIVE
          ? static_cast<const google::protobuf::Message&>(model.generative)
          : model.discriminative;
  MAAS_ASSIGN_OR_RETURN(const std::string text, cli::FormatMessage(message, args.json));
  out << text;
  return absl::OkStatus();
}

absl::Status RunDelete(Client& client, const cli::CommandArgs& args, std::ostream& out) {
  MAAS_ASSIGN_OR_RETURN(cv1::ModelType type, cli::ParseModelType(args.type));
  if (type == cv1::MODEL_TYPE_UNSPECIFIED) {
    MAAS_ASSIGN_OR_RETURN(type, client.ResolveModelType(args.model));
  }
  cv1::DeleteModelRequest request;
  request.set_name(args.model);
  request.set_version(args.version);
  MAAS_ASSIGN_OR_RETURN(const cv1::DeleteModelResponse response, client.DeleteModel(request, type));
  out << cli::FormatDelete(args.model, type, response, args.json);
  return absl::OkStatus();
}

}  // namespace

absl::Status RunCommand(Client& client, const cli::CommandArgs& args, std::ostream& out,
                        std::ostream& warnings, CommandOutcome* outcome) {
  CommandOutcome ignored;
  if (outcome == nullptr) outcome = &ignored;
  *outcome = CommandOutcome();
  if (args.command == "models") return RunModels(client, args, out, warnings, outcome);
  if (args.command == "sample") return RunSample(client, args, out);
  if (args.command == "estimate") return RunEstimate(client, args, out);
  if (args.command == "fit") return RunFit(client, args, out);
  if (args.command == "train") return RunTrain(client, args, out);
  if (args.command == "evaluate") return RunEvaluate(client, args, out);
  if (args.command == "classify") return RunClassify(client, args, out);
  if (args.command == "get") return RunGet(client, args, out);
  if (args.command == "delete") return RunDelete(client, args, out);
  return absl::InvalidArgumentError(absl::StrCat("unknown command '", args.command, "'"));
}

}  // namespace maas::client
