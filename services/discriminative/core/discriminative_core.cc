#include "services/discriminative/core/discriminative_core.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/registry/stored_version.h"
#include "common/status/status_macros.h"
#include "google/protobuf/io/coded_stream.h"
#include "services/discriminative/core/class_labels.h"
#include "services/discriminative/core/packed_texts.h"

namespace maas::discriminative {
namespace {

absl::StatusOr<std::shared_ptr<const LoadedPipeline>> StorePipeline(
    const DiscriminativeCoreOptions& options, const std::string& name, Pipeline&& fitted,
    const google::protobuf::Map<std::string, std::string>& labels, const std::string& description,
    const v1::TrainSummary* summary, const exec::StopToken& stop,
    std::optional<int64_t> expected_latest = std::nullopt) {
  MAAS_RETURN_IF_ERROR(registry::ValidateLabels(labels, description));
  // The pipeline is released once its spec is built, and the spec once it is serialized: each
  // copy of the parameters goes before the next one is made (the repository then parses the bytes
  // back, as the loaded version, while it holds them).
  v1::PipelineSpec spec;
  uint64_t num_features = 0;
  {
    const Pipeline pipeline = std::move(fitted);
    spec = pipeline.ToStoredSpec();
    num_features = pipeline.num_features();
  }
  const std::string family = PipelineFamily(spec.vectorizer().config(), spec.classifier().config());
  // The stored file: the parameters, the info (labels, description) and the training summary,
  // which repeats every class label.
  const auto stored_without_spec = [&](int64_t version) {
    v1::StoredDiscriminativeModel stored;
    registry::FillModelInfo(name, version, common::v1::DISCRIMINATIVE, family, labels, description,
                            options.clock(), stored.mutable_info());
    stored.mutable_info()->set_dimension(static_cast<int64_t>(num_features));
    if (summary != nullptr) *stored.mutable_train_summary() = *summary;
    return stored;
  };
  // Its size, bounded before the store reserves a version: the largest version number, the spec
  // field's tag and length, and a few bytes for the creation time's varints.
  const size_t spec_bytes = spec.ByteSizeLong();
  const size_t other_bytes =
      stored_without_spec(std::numeric_limits<int64_t>::max()).ByteSizeLong();
  const size_t file_bytes = spec_bytes + 1 +
                            google::protobuf::io::CodedOutputStream::VarintSize64(spec_bytes) +
                            other_bytes + 16;
  if (file_bytes > options.limits.max_model_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the stored model would take about ", file_bytes, " bytes (parameters ", spec_bytes,
        ", labels, description and training summary ", other_bytes,
        "), above this server's limit of ", options.limits.max_model_bytes,
        " (--max_model_bytes); use fewer classes or features, or shorter class labels"));
  }
  // Everything is validated before the store reserves a version; the write only fails if the
  // bytes would not load back, and then the store leaves nothing behind.
  // A partial Train commits only as the next version after the one it continued: the store
  // checks right before the write, also against replicas sharing the store.
  store::PutOptions options_for_put;
  options_for_put.continues = expected_latest;
  absl::StatusOr<std::shared_ptr<const LoadedPipeline>> stored = options.repository->Put(
      name,
      [&](int64_t version) -> absl::StatusOr<std::string> {
        // The store asks for the bytes once per Put: the spec moves into the message, which
        // is gone once serialized.
        v1::StoredDiscriminativeModel stored = stored_without_spec(version);
        stored.mutable_spec()->Swap(&spec);
        std::string bytes;
        const bool serialized = stored.SerializeToString(&bytes);
        stored.Clear();
        if (!serialized) {
          return absl::ResourceExhaustedError(
              "the model could not be serialized (too large for one protobuf message)");
        }
        return bytes;  // the repository checks that it loads back before writing it
      },
      stop, options_for_put);
  if (expected_latest.has_value() && absl::IsAborted(stored.status())) {
    return absl::AbortedError(absl::StrCat(
        "model '", name, "' changed while this partial Train ran (", stored.status().message(),
        "); nothing was stored (continuing the older version would drop the newer one's data): "
        "retry the partial Train"));
  }
  return stored;
}

// Bytes a length-delimited field (numbers 1..15) with `payload` bytes takes: tag, length, payload.
uint64_t FieldBytes(uint64_t payload) {
  return 1 + google::protobuf::io::CodedOutputStream::VarintSize64(payload) + payload;
}

// A lower bound of a Classify answer's size: `fixed` bytes plus `per_text` for each text.
struct AnswerBound {
  uint64_t fixed = 0;
  uint64_t per_text = 0;
  uint64_t For(uint64_t texts) const { return fixed + texts * per_text; }
  // Texts whose answer may fit `max_bytes`.
  uint64_t TextsThatFit(uint64_t max_bytes) const {
    return max_bytes < fixed || per_text == 0 ? 0 : (max_bytes - fixed) / per_text;
  }
};

// Compact form: the labels once, 8 bytes per probability, at least a byte per predicted index.
AnswerBound CompactAnswerBound(const std::vector<std::string>& classes) {
  AnswerBound bound;
  for (const std::string& label : classes) bound.fixed += FieldBytes(label.size());
  bound.per_text = 8 * classes.size() + 1;
  return bound;
}

// Per-text form: per text a Classification (its tag and length, its label: at least the shortest
// label) with `scores` ClassScores, each at least its tag and length, its label field and one of
// probability / log_probability (both are 0, and left out, for no class: p = 1 has log 0, p = 0 a
// negative log): 13 bytes plus the label. Every label when `scores` covers every class; else
// `scores` times the shortest.
AnswerBound PerTextAnswerBound(const std::vector<std::string>& classes, size_t scores) {
  uint64_t shortest = classes.empty() ? 0 : classes.front().size();
  uint64_t all = 0;
  for (const std::string& label : classes) {
    shortest = std::min<uint64_t>(shortest, label.size());
    all += 2 + FieldBytes(label.size()) + 9;
  }
  AnswerBound bound;
  bound.per_text = 2 + FieldBytes(shortest) +
                   (scores >= classes.size() ? all : scores * (2 + FieldBytes(shortest) + 9));
  return bound;
}

}  // namespace

std::string PipelineFamily(const v1::VectorizerConfig& vectorizer,
                           const v1::ClassifierConfig& classifier) {
  return absl::StrCat(VectorizerFamily(vectorizer), "+", ClassifierKindName(classifier));
}

absl::StatusOr<std::shared_ptr<const LoadedPipeline>> ParseStoredPipeline(
    store::StoredBytes bytes) {
  auto loaded = std::make_shared<LoadedPipeline>();
  {
    // The parsed message lives only in this scope: the loaded version keeps the pipeline built
    // from its spec, and its small parts (info, summary). The bytes are released once parsed.
    v1::StoredDiscriminativeModel stored;
    MAAS_RETURN_IF_ERROR(registry::ParseStoredVersion(bytes, "StoredDiscriminativeModel", &stored));
    // Built from the spec's fields as they are taken (and freed): the message's large fields are
    // not held beside the whole pipeline.
    absl::StatusOr<Pipeline> built = Pipeline::FromStoredSpec(stored.mutable_spec());
    MAAS_RETURN_IF_ERROR(registry::StoredSpecStatus(built.status(), "a pipeline"));
    Pipeline pipeline = *std::move(built);
    loaded->pipeline.emplace(std::move(pipeline));
    loaded->model_info = std::move(*stored.mutable_info());
    if (stored.has_train_summary()) {
      loaded->train_summary = std::move(*stored.mutable_train_summary());
    }
  }
  loaded->model_info.set_size_bytes(static_cast<int64_t>(bytes.size()));
  const Pipeline& pipeline = *loaded->pipeline;
  loaded->memory_bytes =
      static_cast<int64_t>(sizeof(LoadedPipeline) + loaded->model_info.SpaceUsedLong() +
                           (loaded->train_summary ? loaded->train_summary->SpaceUsedLong() : 0)) +
      pipeline.MemoryBytes();
  return std::shared_ptr<const LoadedPipeline>(std::move(loaded));
}

// ---------------------------------------------------------------------------------------------------------

absl::Status TrainSession::Add(const v1::TrainRequest& message, const exec::StopToken& stop) {
  switch (message.message_case()) {
    case v1::TrainRequest::kConfig: {
      if (trainer_.has_value()) {
        return absl::InvalidArgumentError(
            "a second TrainConfig arrived; send the config once, first");
      }
      MAAS_RETURN_IF_ERROR(registry::ValidateModelName(message.config().name()));
      MAAS_RETURN_IF_ERROR(
          registry::ValidateLabels(message.config().labels(), message.config().description()));
      if (message.config().partial()) {
        // The latest version, if any, is what this partial Train continues.
        common::v1::ModelRef latest;
        latest.set_name(message.config().name());
        absl::StatusOr<std::shared_ptr<const LoadedPipeline>> previous =
            options_->repository->Get(latest);
        if (previous.ok()) {
          previous_ = *std::move(previous);
        } else if (!absl::IsNotFound(previous.status())) {
          return previous.status();
        }
      }
      MAAS_ASSIGN_OR_RETURN(
          Trainer trainer, Trainer::Create(message.config(), options_->limits,
                                           previous_ != nullptr ? &*previous_->pipeline : nullptr));
      trainer_.emplace(std::move(trainer));
      return absl::OkStatus();
    }
    case v1::TrainRequest::kBatch: {
      if (!trainer_.has_value()) {
        return absl::InvalidArgumentError(
            "a TextBatch arrived before the TrainConfig; send the config first");
      }
      const v1::TextBatch& batch = message.batch();
      if (trainer_->num_examples() + static_cast<uint64_t>(batch.examples_size()) >
          options_->max_train_examples) {
        return absl::ResourceExhaustedError(
            absl::StrCat("more than ", options_->max_train_examples,
                         " training examples (the server's --max_train_examples); "
                         "train on a subsample"));
      }
      for (int i = 0; i < batch.examples_size(); ++i) {
        if (batch.examples(i).text().size() > options_->max_text_bytes) {
          return absl::ResourceExhaustedError(
              absl::StrCat("example ", trainer_->num_examples() + i, " has a text of ",
                           batch.examples(i).text().size(), " bytes, above the limit of ",
                           options_->max_text_bytes, " (--max_text_bytes); split or truncate it"));
        }
      }
      return trainer_->AddBatch(batch, stop);
    }
    case v1::TrainRequest::MESSAGE_NOT_SET:
      return absl::InvalidArgumentError("empty TrainRequest; set config (first) or batch");
  }
  return absl::InvalidArgumentError("unknown TrainRequest content");
}

absl::StatusOr<v1::TrainResponse> TrainSession::Finish() { return Finish(exec::StopToken()); }

absl::StatusOr<v1::TrainResponse> TrainSession::Finish(const exec::StopToken& stop) {
  if (!trainer_.has_value()) {
    return absl::InvalidArgumentError(
        "empty Train stream; send a TrainConfig first, then TextBatch messages");
  }
  MAAS_ASSIGN_OR_RETURN(TrainResult result, trainer_->Finish(stop));
  const v1::TrainConfig& config = trainer_->config();
  // Do not commit a version the caller no longer waits for (the store checks again right before
  // the write).
  MAAS_RETURN_IF_ERROR(stop.Check());
  std::shared_ptr<const LoadedPipeline> stored;
  if (config.partial()) {
    const int64_t continued = previous_ != nullptr ? previous_->info().version() : 0;
    absl::Mutex unshared;  // without a core's locks there is no other session to serialise with
    absl::MutexLock lock(
        partial_commit_locks_ != nullptr ? &partial_commit_locks_->For(config.name()) : &unshared);
    MAAS_ASSIGN_OR_RETURN(
        stored, StorePipeline(*options_, config.name(), std::move(result.pipeline), config.labels(),
                              config.description(), &result.summary, stop, continued));
  } else {
    MAAS_ASSIGN_OR_RETURN(
        stored, StorePipeline(*options_, config.name(), std::move(result.pipeline), config.labels(),
                              config.description(), &result.summary, stop));
  }
  v1::TrainResponse response;
  *response.mutable_info() = stored->info();
  *response.mutable_summary() = result.summary;
  return response;
}

// ---------------------------------------------------------------------------------------------------------

absl::Status EvaluateSession::Add(const v1::EvaluateRequest& message, const exec::StopToken& stop) {
  switch (message.message_case()) {
    case v1::EvaluateRequest::kConfig: {
      if (model_ != nullptr) {
        return absl::InvalidArgumentError(
            "a second EvaluateConfig arrived; send the config once, first");
      }
      std::shared_ptr<const LoadedPipeline> model;
      MAAS_ASSIGN_OR_RETURN(model, repository_->Get(message.config().model()));
      // The answer holds a dense C x C confusion matrix and C per-class metrics: a model whose
      // answer cannot fit one message is refused now, before any example is scored.
      const std::vector<std::string>& classes = model->pipeline->classes();
      const uint64_t c = classes.size();
      uint64_t answer_bytes = FieldBytes(8 * c * c);
      for (const std::string& label : classes) answer_bytes += FieldBytes(FieldBytes(label.size()));
      if (c * c > static_cast<uint64_t>(std::numeric_limits<int>::max())) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "model '", model->info().name(), "' has ", c, " classes: its ", c, " x ", c,
            " confusion matrix would hold more values than one message can; score the examples "
            "with Classify's compact form (predicted indices) and count on the client"));
      }
      if (options_->max_message_bytes > 0 && answer_bytes > options_->max_message_bytes) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "model '", model->info().name(), "' version ", model->info().version(), " has ", c,
            " classes: Evaluate's answer holds its ", c, " x ", c,
            " confusion matrix (8 bytes per cell) and per-class metrics, at least ", answer_bytes,
            " bytes, above this server's largest message of ", options_->max_message_bytes,
            " bytes (--max_message_bytes): raise --max_message_bytes on the server and the client "
            "above ",
            answer_bytes,
            ", or score the examples with Classify's compact form (predicted indices) and count "
            "on the client"));
      }
      model_ = std::move(model);
      return absl::OkStatus();
    }
    case v1::EvaluateRequest::kBatch: {
      if (model_ == nullptr) {
        return absl::InvalidArgumentError(
            "a TextBatch arrived before the EvaluateConfig; send the config first");
      }
      const v1::TextBatch& batch = message.batch();
      const std::vector<std::string>& classes = model_->pipeline->classes();
      const ClassOrder order(model_->pipeline->classifier().label_type());
      std::vector<std::string_view> texts;
      std::vector<size_t> truth;
      std::vector<double> weights;
      for (int i = 0; i < batch.examples_size(); ++i) {
        const v1::LabeledText& example = batch.examples(i);
        const uint64_t index = num_documents_ + static_cast<uint64_t>(i);
        if (example.text().size() > options_->max_text_bytes) {
          return absl::ResourceExhaustedError(
              absl::StrCat("example ", index, " has a text of ", example.text().size(),
                           " bytes, above the limit of ", options_->max_text_bytes,
                           " (--max_text_bytes); split or truncate it"));
        }
        auto it = std::lower_bound(classes.begin(), classes.end(), example.label(), order);
        if (it == classes.end() || *it != example.label()) {
          return absl::InvalidArgumentError(
              absl::StrCat("example ", index, " has label '", example.label().substr(0, 100),
                           "', which the model does not know; its classes are the "
                           "labels it was trained on (see GetModel)"));
        }
        const double weight = example.has_weight() ? example.weight() : 1.0;
        if (!std::isfinite(weight) || weight < 0) {
          return absl::InvalidArgumentError(absl::StrCat("example ", index, " has weight ", weight,
                                                         "; weights must be finite and >= 0"));
        }
        texts.push_back(example.text());
        truth.push_back(static_cast<size_t>(it - classes.begin()));
        weights.push_back(weight);
      }
      // Per text only what the metrics need (the predicted class and the true class's
      // probability), so a batch holds one text's scores at a time, not C values per text.
      std::vector<std::pair<size_t, double>> scored(texts.size());
      const absl::Status status =
          model_->pipeline->ForEachScores(texts, stop, [&](size_t i, const ClassScores& scores) {
            scored[i] = {scores.predicted, scores.probability[truth[i]]};
          });
      if (!status.ok()) {
        // The stream's numbering, as in the other errors here (the batch's texts[i] is ambiguous).
        return RenameTextError(
            status, [&](size_t i) { return absl::StrCat("example ", num_documents_ + i, ": "); });
      }
      // Only a batch that scored in full counts (an error above leaves the stream's sums as they
      // were).
      constexpr double kEps = 2.220446049250313e-16;
      const uint64_t c = classes.size();
      for (size_t i = 0; i < scored.size(); ++i) {
        const auto [predicted, p_true] = scored[i];
        confusion_[truth[i] * c + predicted] += weights[i];
        total_weight_ += weights[i];
        if (predicted == truth[i]) correct_weight_ += weights[i];
        const double p = std::clamp(p_true, kEps, 1.0 - kEps);
        log_loss_sum_ -= weights[i] * std::log(p);
      }
      num_documents_ += texts.size();
      return absl::OkStatus();
    }
    case v1::EvaluateRequest::MESSAGE_NOT_SET:
      return absl::InvalidArgumentError("empty EvaluateRequest; set config (first) or batch");
  }
  return absl::InvalidArgumentError("unknown EvaluateRequest content");
}

absl::StatusOr<v1::EvaluateResponse> EvaluateSession::Finish() {
  if (model_ == nullptr) {
    return absl::InvalidArgumentError(
        "empty Evaluate stream; send an EvaluateConfig first, then TextBatch messages");
  }
  if (num_documents_ == 0) {
    return absl::InvalidArgumentError(
        "no examples to evaluate; send at least one TextBatch after the config");
  }
  if (!(total_weight_ > 0)) {
    return absl::InvalidArgumentError("every example has weight 0; metrics are undefined");
  }
  const std::vector<std::string>& classes = model_->pipeline->classes();
  const size_t c = classes.size();
  v1::EvaluateResponse response;
  response.set_model_version(model_->info().version());
  response.set_num_documents(num_documents_);
  response.set_accuracy(correct_weight_ / total_weight_);
  response.set_log_loss(log_loss_sum_ / total_weight_);
  // The dense matrix is the answer's own field (its size was checked at the config); the sums
  // below add its cells in the same order as ever (zeros add nothing), so the metrics are exact.
  common::v1::Matrix* confusion = response.mutable_confusion_matrix();
  confusion->set_rows(static_cast<uint32_t>(c));
  confusion->set_cols(static_cast<uint32_t>(c));
  confusion->mutable_values()->Resize(static_cast<int>(c * c), 0.0);
  double* const cells = confusion->mutable_values()->mutable_data();
  for (const auto& [cell, weight] : confusion_) cells[cell] = weight;
  double macro = 0, weighted = 0, support_total = 0;
  for (size_t k = 0; k < c; ++k) {
    double tp = cells[k * c + k], predicted = 0, support = 0;
    for (size_t j = 0; j < c; ++j) {
      predicted += cells[j * c + k];
      support += cells[k * c + j];
    }
    v1::ClassMetrics* m = response.add_classes();
    m->set_label(classes[k]);
    m->set_precision(predicted > 0 ? tp / predicted : 0.0);
    m->set_recall(support > 0 ? tp / support : 0.0);
    m->set_f1(predicted + support > 0 ? 2 * tp / (predicted + support) : 0.0);
    m->set_support(support);
    macro += m->f1();
    weighted += m->f1() * support;
    support_total += support;
  }
  response.set_macro_f1(macro / static_cast<double>(c));
  response.set_weighted_f1(support_total > 0 ? weighted / support_total : 0.0);
  return response;
}

// ---------------------------------------------------------------------------------------------------------

absl::StatusOr<TextList> DiscriminativeCore::RequestTexts(
    const google::protobuf::RepeatedPtrField<std::string>& texts, std::string_view packed,
    std::vector<std::string_view>* unpacked) const {
  if (!packed.empty()) {
    if (!texts.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("both texts (", texts.size(), " entries) and packed_texts (", packed.size(),
                       " bytes) are set; send the texts in one of the two"));
    }
    MAAS_RETURN_IF_ERROR(UnpackTexts(packed, options_.max_texts_per_request, unpacked));
    for (size_t i = 0; i < unpacked->size(); ++i) {
      MAAS_RETURN_IF_ERROR(CheckTextSize(i, (*unpacked)[i].size()));
    }
    return TextList(*unpacked);
  }
  if (texts.empty()) {
    return absl::InvalidArgumentError(
        "texts is empty; send at least one text (in texts or packed_texts)");
  }
  if (static_cast<uint64_t>(texts.size()) > options_.max_texts_per_request) {
    return absl::ResourceExhaustedError(
        absl::StrCat("texts has ", texts.size(), " entries, above this server's limit of ",
                     options_.max_texts_per_request,
                     " per request (--max_texts_per_request); split them over several calls"));
  }
  for (int i = 0; i < texts.size(); ++i) {
    MAAS_RETURN_IF_ERROR(CheckTextSize(static_cast<size_t>(i), texts[i].size()));
  }
  return TextList(texts);
}

absl::Status DiscriminativeCore::CheckTextSize(size_t index, size_t bytes) const {
  if (bytes <= options_.max_text_bytes) return absl::OkStatus();
  return absl::ResourceExhaustedError(
      absl::StrCat("texts[", index, "] has ", bytes, " bytes, above the limit of ",
                   options_.max_text_bytes, " (--max_text_bytes); split or truncate it"));
}

absl::StatusOr<v1::CreateModelResponse> DiscriminativeCore::CreateModel(
    const v1::CreateModelRequest& request, const exec::StopToken& stop) {
  MAAS_RETURN_IF_ERROR(registry::ValidateModelName(request.name()));
  if (!request.has_spec()) {
    return absl::InvalidArgumentError(
        "spec is missing; give the fitted pipeline (vectorizer and classifier state)");
  }
  MAAS_RETURN_IF_ERROR(CheckConfigLimits(request.spec().vectorizer().config(), options_.limits));
  MAAS_RETURN_IF_ERROR(CheckModelSize(
      static_cast<uint64_t>(request.spec().classifier().classes_size()),
      static_cast<uint64_t>(request.spec().vectorizer().vocabulary_size()), options_.limits));
  MAAS_ASSIGN_OR_RETURN(Pipeline pipeline, Pipeline::FromSpec(request.spec()));
  MAAS_ASSIGN_OR_RETURN(std::shared_ptr<const LoadedPipeline> stored,
                        StorePipeline(options_, request.name(), std::move(pipeline),
                                      request.labels(), request.description(), nullptr, stop));
  v1::CreateModelResponse response;
  *response.mutable_info() = stored->info();
  return response;
}

absl::StatusOr<v1::ClassifyResponse> DiscriminativeCore::Classify(
    const v1::ClassifyRequest& request) {
  exec::InlineExecutor inline_executor;
  return Classify(request, exec::StopToken(), inline_executor);
}

absl::StatusOr<v1::ClassifyResponse> DiscriminativeCore::Classify(
    const v1::ClassifyRequest& request, const exec::StopToken& stop, exec::Executor& executor) {
  MAAS_ASSIGN_OR_RETURN(std::shared_ptr<const LoadedPipeline> loaded,
                        options_.repository->Get(request.model()));
  std::vector<std::string_view> unpacked;
  MAAS_ASSIGN_OR_RETURN(TextList texts,
                        RequestTexts(request.texts(), request.packed_texts(), &unpacked));
  v1::ClassifyResponse response;
  response.set_model_version(loaded->info().version());
  response.set_label_type(loaded->pipeline->classifier().label_type());
  if (request.compact()) {
    if (request.top_k() != 0 || request.explain()) {
      return absl::InvalidArgumentError(
          "compact responses carry every class's probability and no explanation; leave top_k and "
          "explain unset with compact");
    }
    const std::vector<std::string>& classes = loaded->pipeline->classes();
    // A repeated field holds at most INT_MAX values (a server configured with larger limits).
    if (texts.size() * classes.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "a compact answer for ", texts.size(), " texts x ", classes.size(),
          " classes would hold more probabilities than one message can; split the texts"));
    }
    const AnswerBound bound = CompactAnswerBound(classes);
    if (options_.max_message_bytes > 0 && bound.For(texts.size()) > options_.max_message_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "a compact answer for ", texts.size(), " texts x ", classes.size(),
          " classes takes at least ", bound.For(texts.size()),
          " bytes (8 per probability), above this server's largest message of ",
          options_.max_message_bytes, " bytes (--max_message_bytes): at most ",
          bound.TextsThatFit(options_.max_message_bytes),
          " texts fit in one call; send fewer texts per call, or raise --max_message_bytes on "
          "the server and the client"));
    }
    response.mutable_classes()->Assign(classes.begin(), classes.end());
    common::v1::Matrix* probabilities = response.mutable_probabilities();
    probabilities->set_rows(static_cast<uint32_t>(texts.size()));
    probabilities->set_cols(static_cast<uint32_t>(classes.size()));
    probabilities->mutable_values()->Resize(static_cast<int>(texts.size() * classes.size()), 0.0);
    response.mutable_predicted()->Resize(static_cast<int>(texts.size()), 0);
    MAAS_RETURN_IF_ERROR(loaded->pipeline->ClassifyCompact(
        texts, stop, executor, probabilities->mutable_values()->mutable_data(),
        response.mutable_predicted()->mutable_data()));
    return response;
  }
  const std::vector<std::string>& classes = loaded->pipeline->classes();
  const size_t scores =
      request.top_k() == 0 ? classes.size() : std::min<size_t>(request.top_k(), classes.size());
  if (options_.max_message_bytes > 0) {
    const AnswerBound bound = PerTextAnswerBound(classes, scores);
    if (bound.For(texts.size()) > options_.max_message_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "an answer for ", texts.size(), " texts with ", scores,
          request.top_k() == 0 ? " scores each (every class)" : " scores each (top_k)",
          " takes at least ", bound.For(texts.size()),
          " bytes, above this server's largest message of ", options_.max_message_bytes,
          " bytes (--max_message_bytes): at most ", bound.TextsThatFit(options_.max_message_bytes),
          " texts fit in one call; send fewer texts per call, ask for fewer classes (top_k, e.g. "
          "1 for the best only) or for the compact form (8 bytes per probability), or raise "
          "--max_message_bytes on the server and the client"));
    }
  }
  ClassifyOptions options;
  options.top_k = request.top_k();
  options.explain = request.explain();
  options.explain_features = request.explain_features();
  MAAS_RETURN_IF_ERROR(
      loaded->pipeline->ClassifyInto(texts, options, stop, executor, response.mutable_results()));
  return response;
}

absl::StatusOr<v1::VectorizeResponse> DiscriminativeCore::Vectorize(
    const v1::VectorizeRequest& request, const exec::StopToken& stop) {
  MAAS_ASSIGN_OR_RETURN(std::shared_ptr<const LoadedPipeline> loaded,
                        options_.repository->Get(request.model()));
  std::vector<std::string_view> unpacked;
  MAAS_ASSIGN_OR_RETURN(TextList texts,
                        RequestTexts(request.texts(), request.packed_texts(), &unpacked));
  v1::VectorizeResponse response;
  response.set_model_version(loaded->info().version());
  response.set_num_features(loaded->pipeline->num_features());
  const Vectorizer& vectorizer = loaded->pipeline->vectorizer();
  const bool with_names = request.include_feature_names();
  auto& names = *response.mutable_feature_names();
  // Each text's row goes straight into the answer (no second copy of the rows), and the answer's
  // serialized size is kept exactly as it grows: a row that would take it past
  // --max_message_bytes stops the call there, before the texts after it are vectorized, so the
  // call holds at most one answer's worth plus one text's row.
  uint64_t answer_bytes = response.ByteSizeLong();
  const uint64_t limit = options_.max_message_bytes;
  auto too_large = [&](size_t i, const SparseVector& row, uint64_t bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the Vectorize answer would take at least ", bytes, " bytes at texts[", i,
                     "] (", row.indices.size(), " features", with_names ? " with their names" : "",
                     "), above this server's largest message of ", limit,
                     " bytes (--max_message_bytes); vectorizing stopped there: ",
                     i == 0 ? "texts[0] alone does not fit, split or shorten it"
                            : absl::StrCat("only the first ", i, " of the ", texts.size(),
                                           " texts fit in one answer, send fewer texts per call"),
                     with_names ? " (or leave include_feature_names unset)" : "",
                     ", or raise --max_message_bytes on the server and the client"));
  };
  MAAS_RETURN_IF_ERROR(loaded->pipeline->ForEachRow(
      texts, stop, [&](size_t i, const SparseVector& row) -> absl::Status {
        const uint64_t n = row.indices.size();
        uint64_t index_bytes = 0;
        for (const uint32_t index : row.indices) {
          index_bytes += google::protobuf::io::CodedOutputStream::VarintSize32(index);
        }
        // SparseRow: packed indices (varints) and packed values (8 bytes each), both left out
        // when empty; then the row's own field in the answer.
        const uint64_t row_bytes =
            FieldBytes(n == 0 ? 0 : FieldBytes(index_bytes) + FieldBytes(8 * n));
        answer_bytes += row_bytes;
        if (limit > 0 && answer_bytes > limit) return too_large(i, row, answer_bytes);
        v1::SparseRow* out = response.add_rows();
        out->mutable_indices()->Add(row.indices.begin(), row.indices.end());  // sized once
        out->mutable_values()->Add(row.values.begin(), row.values.end());
        if (!with_names) return absl::OkStatus();
        for (const uint32_t index : row.indices) {
          if (names.find(index) != names.end()) continue;
          std::string name = vectorizer.FeatureName(index);
          if (name.empty()) continue;
          // One map entry: key (tag + varint) and value (a string field).
          answer_bytes +=
              FieldBytes(1 + google::protobuf::io::CodedOutputStream::VarintSize32(index) +
                         FieldBytes(name.size()));
          if (limit > 0 && answer_bytes > limit) return too_large(i, row, answer_bytes);
          names[index] = std::move(name);
        }
        return absl::OkStatus();
      }));
  return response;
}

absl::StatusOr<v1::GetModelResponse> DiscriminativeCore::GetModel(
    const v1::GetModelRequest& request) {
  MAAS_ASSIGN_OR_RETURN(std::shared_ptr<const LoadedPipeline> loaded,
                        options_.repository->Get(request.model()));
  // The loaded version keeps only its pipeline: the stored spec is read back from the store
  // (exactly what was stored); if the version was deleted meanwhile, the pipeline's own spec
  // (identical by FromSpec/ToSpec) answers.
  // The answer holds the stored message's parts (info, spec, training summary), so it is at least
  // as large as the stored file: refused before reading and parsing it.
  const uint64_t stored_bytes =
      static_cast<uint64_t>(std::max<int64_t>(0, loaded->info().size_bytes()));
  if (options_.max_message_bytes > 0 && stored_bytes > options_.max_message_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "model '", loaded->info().name(), "' version ", loaded->info().version(), " is stored in ",
        stored_bytes,
        " bytes and GetModel answers with all of it, above this server's largest message of ",
        options_.max_message_bytes,
        " bytes (--max_message_bytes): raise --max_message_bytes on the server and the client "
        "above ",
        stored_bytes, " to export it"));
  }
  v1::GetModelResponse response;
  *response.mutable_info() = loaded->info();
  absl::StatusOr<std::string> bytes =
      options_.repository->ReadStored(loaded->info().name(), loaded->info().version());
  v1::StoredDiscriminativeModel stored;
  if (bytes.ok() && stored.ParseFromString(*bytes)) {
    bytes = std::string();  // release the stored bytes before building the response
    *response.mutable_spec() = std::move(*stored.mutable_spec());
    Pipeline::ExpandStoredSpec(response.mutable_spec());  // the full spec, as it was given
  } else if (bytes.ok() || absl::IsNotFound(bytes.status())) {
    *response.mutable_spec() = loaded->pipeline->ToSpec();
  } else {
    return bytes.status();
  }
  if (loaded->train_summary) *response.mutable_train_summary() = *loaded->train_summary;
  // The stored form holds a fixed vocabulary once; the answer has it twice, in the config too.
  const uint64_t answer_bytes = response.ByteSizeLong();
  if (options_.max_message_bytes > 0 && answer_bytes > options_.max_message_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "model '", loaded->info().name(), "' version ", loaded->info().version(), " is stored in ",
        stored_bytes, " bytes, and GetModel's answer takes ", answer_bytes,
        " (its fixed vocabulary is in the vectorizer config as well as in the vectorizer state), "
        "above this server's largest message of ",
        options_.max_message_bytes,
        " bytes (--max_message_bytes): raise --max_message_bytes on the server and the client "
        "above ",
        answer_bytes, " to export it"));
  }
  return response;
}

absl::StatusOr<common::v1::ListModelsResponse> DiscriminativeCore::ListModels(
    const common::v1::ListModelsRequest& request) {
  return options_.repository->List(request, common::v1::DISCRIMINATIVE,
                                   static_cast<int64_t>(options_.max_message_bytes));
}

absl::StatusOr<common::v1::DeleteModelResponse> DiscriminativeCore::DeleteModel(
    const common::v1::DeleteModelRequest& request, const exec::StopToken& stop) {
  return options_.repository->Delete(request, stop);
}

}  // namespace maas::discriminative
