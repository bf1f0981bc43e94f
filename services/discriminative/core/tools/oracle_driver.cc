// Test driver for the scikit-learn oracle test: runs the discriminative core on protobuf files.
//
//   maas_discriminative_oracle_driver fit <TrainConfig file> <TextBatch file> <ClassifyRequest
//   file> <out dir> maas_discriminative_oracle_driver import <PipelineSpec file> <ClassifyRequest
//   file> <out dir>
//
// "fit" trains through Trainer (the batch is fed in two halves), "import" uses Pipeline::FromSpec.
// Both then write to <out dir>: spec.pb (PipelineSpec from ToSpec), classify.pb (ClassifyResponse
// for the request's texts, top_k and explain options), vectorize.pb (VectorizeResponse rows),
// jll.pb (common.v1.Matrix, texts x classes joint log-likelihoods). On error: <out dir>/error.txt =
// "<CODE>\n<message>", exit 2.
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "maas/discriminative/v1/discriminative.pb.h"
#include "services/discriminative/core/pipeline.h"

namespace maas::discriminative {
namespace {

template <typename Message>
absl::StatusOr<Message> ReadMessage(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  Message message;
  if (!message.ParseFromString(buffer.str())) {
    return absl::InvalidArgumentError(absl::StrCat("cannot parse ", path));
  }
  return message;
}

absl::Status WriteMessage(const google::protobuf::Message& message, const std::string& path) {
  std::ofstream out(path, std::ios::binary);
  if (!out || !message.SerializeToOstream(&out)) {
    return absl::InternalError(absl::StrCat("cannot write ", path));
  }
  return absl::OkStatus();
}

absl::Status WriteOutputs(const Pipeline& pipeline, const v1::ClassifyRequest& request,
                          const std::string& out_dir) {
  const std::vector<std::string> texts(request.texts().begin(), request.texts().end());
  MAAS_RETURN_IF_ERROR(WriteMessage(pipeline.ToSpec(), out_dir + "/spec.pb"));
  ClassifyOptions options;
  options.top_k = request.top_k();
  options.explain = request.explain();
  options.explain_features = request.explain_features();
  MAAS_ASSIGN_OR_RETURN(std::vector<v1::Classification> results, pipeline.Classify(texts, options));
  v1::ClassifyResponse classify;
  for (v1::Classification& r : results) *classify.add_results() = std::move(r);
  MAAS_RETURN_IF_ERROR(WriteMessage(classify, out_dir + "/classify.pb"));
  MAAS_ASSIGN_OR_RETURN(std::vector<SparseVector> rows, pipeline.Vectorize(texts));
  v1::VectorizeResponse vectorize;
  vectorize.set_num_features(pipeline.num_features());
  for (const SparseVector& row : rows) {
    v1::SparseRow* out = vectorize.add_rows();
    out->mutable_indices()->Assign(row.indices.begin(), row.indices.end());
    out->mutable_values()->Assign(row.values.begin(), row.values.end());
  }
  MAAS_RETURN_IF_ERROR(WriteMessage(vectorize, out_dir + "/vectorize.pb"));
  MAAS_ASSIGN_OR_RETURN(std::vector<ClassScores> scores, pipeline.PredictScores(texts));
  common::v1::Matrix jll;
  jll.set_rows(static_cast<uint32_t>(scores.size()));
  jll.set_cols(static_cast<uint32_t>(pipeline.classes().size()));
  for (const ClassScores& s : scores) {
    for (double v : s.joint_log_likelihood) jll.add_values(v);
  }
  return WriteMessage(jll, out_dir + "/jll.pb");
}

absl::Status Run(const std::vector<std::string>& args) {
  if (args.size() == 5 && args[0] == "fit") {
    MAAS_ASSIGN_OR_RETURN(const v1::TrainConfig config, ReadMessage<v1::TrainConfig>(args[1]));
    MAAS_ASSIGN_OR_RETURN(const v1::TextBatch batch, ReadMessage<v1::TextBatch>(args[2]));
    MAAS_ASSIGN_OR_RETURN(const v1::ClassifyRequest request,
                          ReadMessage<v1::ClassifyRequest>(args[3]));
    MAAS_ASSIGN_OR_RETURN(Trainer trainer, Trainer::Create(config));
    v1::TextBatch first, second;
    for (int i = 0; i < batch.examples_size(); ++i) {
      *(i < batch.examples_size() / 2 ? first : second).add_examples() = batch.examples(i);
    }
    MAAS_RETURN_IF_ERROR(trainer.AddBatch(first));
    MAAS_RETURN_IF_ERROR(trainer.AddBatch(second));
    MAAS_ASSIGN_OR_RETURN(TrainResult result, trainer.Finish());
    return WriteOutputs(result.pipeline, request, args[4]);
  }
  if (args.size() == 4 && args[0] == "import") {
    MAAS_ASSIGN_OR_RETURN(const v1::PipelineSpec spec, ReadMessage<v1::PipelineSpec>(args[1]));
    MAAS_ASSIGN_OR_RETURN(const v1::ClassifyRequest request,
                          ReadMessage<v1::ClassifyRequest>(args[2]));
    MAAS_ASSIGN_OR_RETURN(Pipeline pipeline, Pipeline::FromSpec(spec));
    return WriteOutputs(pipeline, request, args[3]);
  }
  return absl::InvalidArgumentError(
      "usage: maas_discriminative_oracle_driver fit CONFIG BATCH CLASSIFY OUT_DIR | "
      "import SPEC CLASSIFY OUT_DIR");
}

}  // namespace
}  // namespace maas::discriminative

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  const absl::Status status = maas::discriminative::Run(args);
  if (status.ok()) return 0;
  std::cerr << status << "\n";
  if (!args.empty()) {
    std::ofstream err(args.back() + "/error.txt");
    err << absl::StatusCodeToString(status.code()) << "\n" << status.message() << "\n";
  }
  return 2;
}
