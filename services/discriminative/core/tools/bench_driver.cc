// In-process, single-core timing of the discriminative core for bench/classify_vs_sklearn.py.
//
//   maas_discriminative_bench <TrainConfig file> <TextBatch file> <ClassifyRequest file> <out dir>
//                             <repeats> [train_only | train_loop | classify_loop | stages]
//
// Times Trainer (AddBatch of the whole batch + Finish) and Pipeline::ClassifyCompact (the compact
// Classify form) on the request's texts (vectorize + jll + predict_proba + predict: scikit-learn's
// transform + predict_proba), each the median of <repeats> runs on one thread, in CPU seconds.
// Writes <out dir>/timing.txt ("train_seconds X\n classify_seconds Y\n classify_min_seconds Z\n
// simd_path P\n", Z the fastest run (for A/B comparisons of two builds on a noisy machine: a run
// that was not interrupted), P the word-count kernels' instruction set, count_simd.h; or the
// train_only lines below) and proba.pb (common.v1.Matrix, texts x classes) for the equality
// check. With train_only: one fit, then only peak RSS (VmHWM) and the
// RSS once the corpus was loaded (VmRSS) are reported. With train_loop: only the <repeats> fits
// and train_seconds (for profiling training). With classify_loop: one fit, then the <repeats>
// classifications (for profiling classification). With stages: also the CPU seconds of the
// vectorizer's transform alone and with the joint log-likelihood (texts assumed valid UTF-8).
#include <sys/resource.h>

#include <algorithm>
#include <ctime>
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
#include "services/discriminative/core/count_simd.h"
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

// A /proc/self/status field in kB (VmHWM: peak RSS, VmRSS: current RSS).
long StatusKb(const std::string& field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field, 0) == 0) return std::stol(line.substr(field.size()));
  }
  return -1;
}

// CPU time of the process, in seconds: robust on a shared machine, and equal to wall time for this
// single-threaded work on an idle one.
double CpuNow() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

double Seconds(double start) { return CpuNow() - start; }

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

absl::Status Run(const std::vector<std::string>& args) {
  if (args.size() < 5) {
    return absl::InvalidArgumentError(
        "usage: maas_discriminative_bench CONFIG BATCH CLASSIFY OUT_DIR REPEATS "
        "[train_only | train_loop | classify_loop | stages]");
  }
  MAAS_ASSIGN_OR_RETURN(const v1::TrainConfig config, ReadMessage<v1::TrainConfig>(args[0]));
  v1::TextBatch batch;
  { MAAS_ASSIGN_OR_RETURN(batch, ReadMessage<v1::TextBatch>(args[1])); }
  // The corpus is in memory: reset the peak RSS to the current RSS (Linux clear_refs 5).
  std::ofstream("/proc/self/clear_refs") << "5";
  const long loaded_rss_kb = StatusKb("VmRSS:");
  const int repeats = std::max(1, std::stoi(args[4]));
  const bool train_only = args.size() > 5 && args[5] == "train_only";
  // train_loop: only the <repeats> fits (for profiling training).
  const bool train_loop = args.size() > 5 && args[5] == "train_loop";
  // classify_loop: one fit, then the <repeats> classifications (for profiling classification).
  const bool classify_loop = args.size() > 5 && args[5] == "classify_loop";
  std::vector<double> train_times;
  std::optional<Pipeline> pipeline;
  for (int r = 0; r < (train_only || classify_loop ? 1 : repeats); ++r) {
    const double start = CpuNow();
    MAAS_ASSIGN_OR_RETURN(Trainer trainer, Trainer::Create(config));
    MAAS_RETURN_IF_ERROR(trainer.AddBatch(batch));
    MAAS_ASSIGN_OR_RETURN(TrainResult result, trainer.Finish());
    train_times.push_back(Seconds(start));
    pipeline.emplace(std::move(result.pipeline));
  }
  std::ofstream timing(args[3] + "/timing.txt");
  if (train_loop) {
    timing << "train_seconds " << Median(train_times) << "\n";
    return absl::OkStatus();
  }
  if (train_only) {
    timing << "peak_rss_kb " << StatusKb("VmHWM:") << "\nloaded_rss_kb " << loaded_rss_kb << "\n";
    return absl::OkStatus();
  }
  MAAS_ASSIGN_OR_RETURN(const v1::ClassifyRequest request,
                        ReadMessage<v1::ClassifyRequest>(args[2]));
  const std::vector<std::string> texts(request.texts().begin(), request.texts().end());
  std::vector<double> classify_times;
  const size_t k = pipeline->classes().size();
  std::vector<double> probabilities(texts.size() * k);
  std::vector<uint32_t> predicted(texts.size());
  exec::InlineExecutor inline_executor;
  for (int r = 0; r < repeats; ++r) {
    const double start = CpuNow();
    MAAS_RETURN_IF_ERROR(pipeline->ClassifyCompact(texts, exec::StopToken(), inline_executor,
                                                   probabilities.data(), predicted.data()));
    classify_times.push_back(Seconds(start));
  }
  timing << "train_seconds " << Median(train_times) << "\nclassify_seconds "
         << Median(classify_times) << "\nclassify_min_seconds "
         << *std::min_element(classify_times.begin(), classify_times.end()) << "\nsimd_path "
         << random::SimdLevelName(BestCountSimdPath()) << "\n";
  if (args.size() > 5 && args[5] == "stages") {
    // Where classification time goes: the vectorizer's transform alone, then with the joint
    // log-likelihood (the rest of ClassifyCompact is predict_proba and argmax).
    AnalyzerScratch scratch;
    SparseVector row;
    std::vector<double> jll(k);
    for (const bool with_jll : {false, true}) {
      std::vector<double> times;
      for (int r = 0; r < repeats; ++r) {
        const double start = CpuNow();
        for (const std::string& text : texts) {
          pipeline->vectorizer().Transform(text, &scratch, &row);
          if (with_jll) pipeline->classifier().JointLogLikelihood(row, jll.data());
        }
        times.push_back(Seconds(start));
      }
      timing << (with_jll ? "transform_jll_seconds " : "transform_seconds ") << Median(times)
             << "\n"
             << (with_jll ? "transform_jll_min_seconds " : "transform_min_seconds ")
             << *std::min_element(times.begin(), times.end()) << "\n";
    }
  }
  common::v1::Matrix proba;
  proba.set_rows(static_cast<uint32_t>(texts.size()));
  proba.set_cols(static_cast<uint32_t>(k));
  proba.mutable_values()->Assign(probabilities.begin(), probabilities.end());
  std::ofstream out(args[3] + "/proba.pb", std::ios::binary);
  if (!proba.SerializeToOstream(&out)) return absl::InternalError("cannot write proba.pb");
  return absl::OkStatus();
}

}  // namespace
}  // namespace maas::discriminative

int main(int argc, char** argv) {
  const absl::Status status =
      maas::discriminative::Run(std::vector<std::string>(argv + 1, argv + argc));
  if (status.ok()) return 0;
  std::cerr << status << "\n";
  return 2;
}
