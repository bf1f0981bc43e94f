// The vectorizer registry: one line per implementation.
#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "google/protobuf/descriptor.h"
#include "services/discriminative/core/count_vectorizer.h"
#include "services/discriminative/core/hashing_vectorizer.h"
#include "services/discriminative/core/tfidf.h"
#include "services/discriminative/core/vectorizer.h"

namespace maas::discriminative {
namespace {

const std::array<const VectorizerKind*, 2> kVectorizers = {
    &kCountVectorizerKind,
    &kHashingVectorizerKind,
};

const VectorizerKind* KindOf(const v1::VectorizerConfig& config, absl::Status* error) {
  const std::string name = VectorizerKindName(config);
  const VectorizerKind* kind = FindVectorizerKind(name);
  if (kind == nullptr) {
    *error = absl::UnimplementedError(
        absl::StrCat("vectorizer kind '", name, "' is not supported by this server"));
  }
  return kind;
}

}  // namespace

std::string VectorizerKindName(const v1::VectorizerConfig& config) {
  const google::protobuf::OneofDescriptor* oneof =
      v1::VectorizerConfig::descriptor()->FindOneofByName("kind");
  const google::protobuf::FieldDescriptor* field =
      v1::VectorizerConfig::GetReflection()->GetOneofFieldDescriptor(config, oneof);
  return field == nullptr ? "count" : std::string(field->name());
}

const VectorizerKind* FindVectorizerKind(std::string_view name) {
  for (const VectorizerKind* kind : kVectorizers) {
    if (kind->name == name) return kind;
  }
  return nullptr;
}

const v1::TextOptions& TextOptionsOf(const v1::VectorizerConfig& config) {
  return config.has_hashing() ? config.hashing().text() : config.count().text();
}

namespace {

using StringList = google::protobuf::RepeatedPtrField<std::string>;

// The lists of *config that a vectorizer made from it holds (its kind's held_lists).
std::vector<StringList*> HeldLists(v1::VectorizerConfig* config) {
  const VectorizerKind* kind = FindVectorizerKind(VectorizerKindName(*config));
  if (kind == nullptr || kind->held_lists == nullptr) return {};
  return kind->held_lists(config);
}

}  // namespace

void ClearHeldLists(v1::VectorizerConfig* config) {
  // Swapped with an empty list that then goes: Clear() would keep the strings for reuse.
  for (StringList* list : HeldLists(config)) StringList().Swap(list);
}

v1::VectorizerConfig CopyWithoutHeldLists(v1::VectorizerConfig* config) {
  const std::vector<StringList*> lists = HeldLists(config);
  std::vector<StringList> aside(lists.size());
  for (size_t i = 0; i < lists.size(); ++i) aside[i].Swap(lists[i]);
  v1::VectorizerConfig copy = *config;
  for (size_t i = 0; i < lists.size(); ++i) aside[i].Swap(lists[i]);
  return copy;
}

void CompactStoredState(v1::VectorizerState* state) {
  const VectorizerKind* kind = FindVectorizerKind(VectorizerKindName(state->config()));
  if (kind != nullptr && kind->compact_stored != nullptr) kind->compact_stored(state);
}

void ExpandStoredState(v1::VectorizerState* state) {
  const VectorizerKind* kind = FindVectorizerKind(VectorizerKindName(state->config()));
  if (kind != nullptr && kind->expand_stored != nullptr) kind->expand_stored(state);
}

absl::Status ValidateVectorizerConfig(const v1::VectorizerConfig& config) {
  absl::Status error;
  const VectorizerKind* kind = KindOf(config, &error);
  if (kind == nullptr) return error;
  MAAS_RETURN_IF_ERROR(kind->validate(config));
  if (config.has_tfidf()) MAAS_RETURN_IF_ERROR(ValidateTfidfConfig(config.tfidf()));
  return absl::OkStatus();
}

namespace {

// The TF-IDF layer over a kind's fitter. Keeps only the config's tfidf (all FitTfidf reads), not
// the kind's part, whose lists (a fixed vocabulary, stop words) the base fitter holds.
class TfidfFitter final : public VectorizerFitter {
 public:
  TfidfFitter(const v1::VectorizerConfig& config, std::unique_ptr<VectorizerFitter> base)
      : base_(std::move(base)) {
    *config_.mutable_tfidf() = config.tfidf();
  }
  absl::Status Add(std::string_view text) override { return base_->Add(text); }
  void Expect(size_t texts, size_t bytes) override { base_->Expect(texts, bytes); }
  int64_t MemoryBytes() const override { return base_->MemoryBytes(); }
  void SetMemoryBudget(int64_t bytes) override { base_->SetMemoryBudget(bytes); }
  absl::StatusOr<VectorizerFit> Finish() override {
    MAAS_ASSIGN_OR_RETURN(VectorizerFit fit, base_->Finish());
    return FitTfidf(config_, std::move(fit));
  }

 private:
  v1::VectorizerConfig config_;
  std::unique_ptr<VectorizerFitter> base_;
};

constexpr size_t kStopCheckInterval = 1024;

}  // namespace

absl::StatusOr<std::unique_ptr<VectorizerFitter>> StartVectorizerFit(
    const v1::VectorizerConfig& config) {
  MAAS_RETURN_IF_ERROR(ValidateVectorizerConfig(config));
  absl::Status error;
  const VectorizerKind* kind = KindOf(config, &error);
  MAAS_ASSIGN_OR_RETURN(std::unique_ptr<VectorizerFitter> fitter, kind->start_fit(config));
  if (config.has_tfidf()) return std::make_unique<TfidfFitter>(config, std::move(fitter));
  return fitter;
}

absl::StatusOr<VectorizerFit> FitVectorizer(const v1::VectorizerConfig& config,
                                            const std::vector<std::string_view>& texts,
                                            const exec::StopToken& stop) {
  for (size_t d = 0; d < texts.size(); ++d) {
    const absl::Status valid = ValidateUtf8(texts[d]);
    if (!valid.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("texts[", d, "]: ", valid.message()));
    }
  }
  MAAS_ASSIGN_OR_RETURN(std::unique_ptr<VectorizerFitter> fitter, StartVectorizerFit(config));
  size_t bytes = 0;
  for (const std::string_view text : texts) bytes += text.size();
  fitter->Expect(texts.size(), bytes);
  for (size_t d = 0; d < texts.size(); ++d) {
    if (d % kStopCheckInterval == 0) MAAS_RETURN_IF_ERROR(stop.Check());
    const absl::Status added = fitter->Add(texts[d]);
    if (!added.ok()) {
      return absl::Status(added.code(), absl::StrCat("texts[", d, "]: ", added.message()));
    }
  }
  return fitter->Finish();
}

absl::StatusOr<std::unique_ptr<Vectorizer>> VectorizerFromState(const v1::VectorizerState& state) {
  v1::VectorizerState taken = state;
  return VectorizerFromState(&taken);
}

absl::StatusOr<std::unique_ptr<Vectorizer>> VectorizerFromState(v1::VectorizerState* state,
                                                                StateForm form) {
  MAAS_RETURN_IF_ERROR(ValidateVectorizerConfig(state->config()));
  absl::Status error;
  const VectorizerKind* kind = KindOf(state->config(), &error);
  if (state->fixed_vocabulary_in_state()) {
    if (form == StateForm::kFull) {
      return absl::InvalidArgumentError(
          "vectorizer.fixed_vocabulary_in_state is set, but it is the model store's own field; "
          "leave it unset and give a fixed vocabulary in vectorizer.config.count.vocabulary (as "
          "GetModel returns it)");
    }
    if (kind->expand_stored == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("vectorizer.fixed_vocabulary_in_state is set, but the '",
                       std::string(kind->name), "' vectorizer has no fixed vocabulary"));
    }
  }
  MAAS_ASSIGN_OR_RETURN(std::unique_ptr<Vectorizer> base, kind->from_state(state));
  if (state->config().has_tfidf()) return TfidfFromState(state, std::move(base));
  if (state->idf_size() != 0) {
    return absl::InvalidArgumentError(
        "vectorizer.idf is set but the vectorizer config has no tfidf; leave idf empty");
  }
  return base;
}

absl::Status CheckPartialVectorizer(const v1::VectorizerConfig& config) {
  absl::Status error;
  const VectorizerKind* kind = KindOf(config, &error);
  if (kind == nullptr) return error;
  if (kind->check_partial == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("partial training is not possible with the '", std::string(kind->name),
                     "' vectorizer: its features depend on the training data"));
  }
  MAAS_RETURN_IF_ERROR(kind->check_partial(config));
  if (config.has_tfidf() && (!config.tfidf().has_use_idf() || config.tfidf().use_idf())) {
    return absl::InvalidArgumentError(
        "partial training with tfidf.use_idf is not possible: idf = log(n / df) needs the "
        "document frequencies of the whole corpus, so it would change with every batch and the "
        "counts learned from earlier batches would be on a different scale (scikit-learn's "
        "TfidfTransformer has no partial_fit either); set tfidf.use_idf false (sublinear_tf and "
        "norm are per document and work), or train on the whole corpus without partial");
  }
  return absl::OkStatus();
}

std::string VectorizerFamily(const v1::VectorizerConfig& config) {
  std::string family = VectorizerKindName(config);
  if (config.has_tfidf()) absl::StrAppend(&family, "+tfidf");
  return family;
}

}  // namespace maas::discriminative
