// Integer labels (TrainConfig.label_type / ClassifierState.label_type LABEL_TYPE_INT64): classes
// are ordered numerically as numpy orders integer y (9 before 10), everywhere classes are ordered:
// fit, partial fit with TrainConfig.classes, a stored or imported state, and so predict's tie-break
// (the first class wins). String labels keep code point order, however numeric they look. The
// scikit-learn oracle of the same cases is tests/python/test_client_integer_labels.py.
#include "services/discriminative/core/class_labels.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "services/discriminative/core/classifier.h"
#include "services/discriminative/core/pipeline.h"
#include "tests/services/discriminative/text_batch.h"

namespace maas::discriminative {
namespace {

using Strings = std::vector<std::string>;

using testing::Batch;

absl::StatusOr<TrainResult> Train(const v1::TrainConfig& config, const Strings& texts,
                                  const Strings& labels, const Pipeline* previous = nullptr) {
  absl::StatusOr<Trainer> trainer = Trainer::Create(config, {}, previous);
  if (!trainer.ok()) return trainer.status();
  const absl::Status added = trainer->AddBatch(Batch(texts, labels));
  if (!added.ok()) return added;
  return trainer->Finish();
}

v1::TrainConfig IntConfig() {
  v1::TrainConfig config;
  config.set_label_type(v1::LABEL_TYPE_INT64);
  return config;
}

TEST_CASE("ClassOrder orders canonical int64 labels numerically, strings by code point") {
  Strings labels = {
      "10",  "9", "-1", "0", "-10", "-9", "9223372036854775807", "-9223372036854775808",
      "100", "11"};
  SortClasses(&labels, v1::LABEL_TYPE_INT64);
  CHECK(labels == Strings{"-9223372036854775808", "-10", "-9", "-1", "0", "9", "10", "11", "100",
                          "9223372036854775807"});
  Strings strings = {"10", "9", "-1"};
  SortClasses(&strings, v1::LABEL_TYPE_STRING);
  CHECK(strings == Strings{"-1", "10", "9"});
}

TEST_CASE("ValidateLabel accepts canonical int64 decimals only") {
  for (const char* ok : {"0", "7", "-7", "9223372036854775807", "-9223372036854775808"}) {
    CHECK(ValidateLabel(ok, v1::LABEL_TYPE_INT64).ok());
  }
  for (const char* bad : {"07", "+7", "-0", "7.0", " 7", "7 ", "", "-", "x", "1e3", "00",
                          "9223372036854775808", "-9223372036854775809", "99999999999999999999"}) {
    INFO(bad);
    const absl::Status status = ValidateLabel(bad, v1::LABEL_TYPE_INT64);
    CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  }
  CHECK(ValidateLabel("07", v1::LABEL_TYPE_STRING).ok());
  CHECK(std::string(ValidateLabel("07", v1::LABEL_TYPE_INT64).message()).find("write '7'") !=
        std::string::npos);
  CHECK(std::string(ValidateLabel("9223372036854775808", v1::LABEL_TYPE_INT64).message())
            .find("int64 range") != std::string::npos);
}

TEST_CASE("A fit on int64 labels orders its classes numerically and breaks ties by that order") {
  const Strings texts = {"aa bb", "cc dd"};
  auto result = Train(IntConfig(), texts, {"9", "10"});
  REQUIRE(result.ok());
  const Pipeline& pipeline = result->pipeline;
  CHECK(pipeline.classes() == Strings{"9", "10"});
  CHECK(pipeline.classifier().label_type() == v1::LABEL_TYPE_INT64);
  CHECK(Strings(result->summary.classes().begin(), result->summary.classes().end()) ==
        Strings{"9", "10"});
  // A text without known words ties: the first class in numeric order wins, as in scikit-learn.
  auto classified = pipeline.Classify(std::vector<std::string>{"", "zz"}, {});
  REQUIRE(classified.ok());
  CHECK((*classified)[0].label() == "9");
  CHECK((*classified)[1].label() == "9");
  // The same labels as strings keep code point order.
  auto strings = Train(v1::TrainConfig(), texts, {"9", "10"});
  REQUIRE(strings.ok());
  CHECK(strings->pipeline.classes() == Strings{"10", "9"});
  CHECK(strings->pipeline.classifier().label_type() == v1::LABEL_TYPE_STRING);
}

TEST_CASE("The label type survives ToSpec / FromSpec, a spec's classes must be in its order") {
  auto result = Train(IntConfig(), {"a1 b1", "c1 d1", "e1"}, {"-3", "12", "2"});
  REQUIRE(result.ok());
  const v1::PipelineSpec spec = result->pipeline.ToSpec();
  CHECK(spec.classifier().label_type() == v1::LABEL_TYPE_INT64);
  CHECK(Strings(spec.classifier().classes().begin(), spec.classifier().classes().end()) ==
        Strings{"-3", "2", "12"});
  auto back = Pipeline::FromSpec(spec);
  REQUIRE(back.ok());
  CHECK(back->classes() == Strings{"-3", "2", "12"});
  CHECK(back->classifier().label_type() == v1::LABEL_TYPE_INT64);
  CHECK(back->ToSpec().SerializeAsString() == spec.SerializeAsString());

  // Code point order under LABEL_TYPE_INT64, and numeric order without it, are refused.
  v1::PipelineSpec swapped = spec;
  swapped.mutable_classifier()->set_classes(1, "12");
  swapped.mutable_classifier()->set_classes(2, "2");
  absl::Status status = Pipeline::FromSpec(swapped).status();
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(status.message()).find("numerically") != std::string::npos);
  v1::PipelineSpec as_strings = spec;
  as_strings.mutable_classifier()->set_label_type(v1::LABEL_TYPE_STRING);
  CHECK(Pipeline::FromSpec(as_strings).status().code() == absl::StatusCode::kInvalidArgument);
  // Non-canonical spellings and unknown label types.
  v1::PipelineSpec padded = spec;
  padded.mutable_classifier()->set_classes(1, "02");
  status = Pipeline::FromSpec(padded).status();
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(status.message()).find("canonical") != std::string::npos);
  v1::PipelineSpec unknown = spec;
  unknown.mutable_classifier()->set_label_type(static_cast<v1::LabelType>(7));
  CHECK(Pipeline::FromSpec(unknown).status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("Int64 labels that are not canonical are refused, naming the example or class") {
  auto result = Train(IntConfig(), {"a b", "c d", "e f"}, {"7", "07", "8"});
  REQUIRE(result.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(result.status().message()).find("example 1") != std::string::npos);
  CHECK(Train(IntConfig(), {"a b"}, {"x"}).status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Train(IntConfig(), {"a b"}, {"18446744073709551616"}).status().code() ==
        absl::StatusCode::kInvalidArgument);
  v1::TrainConfig with_classes = IntConfig();
  with_classes.add_classes("1");
  with_classes.add_classes("+2");
  const absl::Status status = Trainer::Create(with_classes).status();
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(status.message()).find("classes[1]") != std::string::npos);
  v1::TrainConfig unknown;
  unknown.set_label_type(static_cast<v1::LabelType>(5));
  CHECK(Trainer::Create(unknown).status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("Partial training with int64 classes orders them numerically and keeps the type") {
  v1::TrainConfig config = IntConfig();
  config.set_partial(true);
  config.mutable_vectorizer()->mutable_hashing()->set_n_features(16);
  config.mutable_vectorizer()->mutable_hashing()->set_alternate_sign(false);
  for (const char* c : {"10", "9", "100"}) config.add_classes(c);
  auto first = Train(config, {"aa", "bb"}, {"10", "9"});
  REQUIRE(first.ok());
  CHECK(first->pipeline.classes() == Strings{"9", "10", "100"});
  // Continued: label_type unset takes the stored one; given, it must match; classes in any order.
  v1::TrainConfig next;
  next.set_partial(true);
  next.add_classes("100");
  next.add_classes("9");
  next.add_classes("10");
  auto second = Train(next, {"cc"}, {"100"}, &first->pipeline);
  REQUIRE(second.ok());
  CHECK(second->pipeline.classes() == Strings{"9", "10", "100"});
  CHECK(second->pipeline.classifier().label_type() == v1::LABEL_TYPE_INT64);
  v1::TrainConfig as_strings = next;
  as_strings.set_label_type(v1::LABEL_TYPE_STRING);
  const absl::Status status = Trainer::Create(as_strings, {}, &first->pipeline).status();
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(status.message()).find("label_type") != std::string::npos);
  // A label outside the classes, canonical or not.
  CHECK(Train(next, {"cc"}, {"11"}, &first->pipeline).status().code() ==
        absl::StatusCode::kInvalidArgument);
  const absl::Status padded = Train(next, {"cc"}, {"010"}, &first->pipeline).status();
  CHECK(padded.code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(padded.message()).find("canonical") != std::string::npos);
}

}  // namespace
}  // namespace maas::discriminative
