// ParseWithRawTexts against protobuf's own parse of the v1 types: on random messages with every
// field the v1 types have (filled by reflection, so a field added to the contract later is
// covered), on unknown fields, repeated and reordered occurrences, and corrupt bytes. The only
// difference allowed: texts need not be UTF-8.
#include "services/discriminative/adapter/text_wire.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/message_differencer.h>

#include <catch2/catch.hpp>
#include <random>
#include <string>

namespace maas::discriminative {
namespace {

namespace pb = google::protobuf;

template <class Msg>
bool ParseRaw(const std::string& bytes, Msg* out) {
  pb::io::ArrayInputStream in(bytes.data(), static_cast<int>(bytes.size()));
  return ParseWithRawTexts(&in, out);
}

// Sets each field of `message` (recursively, to `depth` levels) with probability 0.7 to a random
// value, and sometimes an unknown field; a oneof keeps the last member set.
void Fill(pb::Message* message, std::mt19937_64& rng, int depth) {
  const pb::Descriptor* type = message->GetDescriptor();
  const pb::Reflection* reflection = message->GetReflection();
  std::uniform_int_distribution<int> pick(0, 9);
  auto text = [&] {
    static const char* kTexts[] = {"", "goal", "caf\xc3\xa9 \xce\xa3", "x y z", "\xe6\x97\xa5"};
    return std::string(kTexts[pick(rng) % 5]);
  };
  // A field no version of the type knows (protobuf keeps it as an unknown field).
  if (pick(rng) < 2) reflection->MutableUnknownFields(message)->AddVarint(111, pick(rng));
  for (int f = 0; f < type->field_count(); ++f) {
    const pb::FieldDescriptor* field = type->field(f);
    if (pick(rng) < 3) continue;
    const int count = field->is_repeated() ? pick(rng) % 4 : 1;
    for (int i = 0; i < count; ++i) {
      const bool rep = field->is_repeated();
      switch (field->cpp_type()) {
        case pb::FieldDescriptor::CPPTYPE_MESSAGE:
          if (depth > 0) {
            Fill(rep ? reflection->AddMessage(message, field)
                     : reflection->MutableMessage(message, field),
                 rng, depth - 1);
          }
          break;
        case pb::FieldDescriptor::CPPTYPE_STRING:
          rep ? reflection->AddString(message, field, text())
              : reflection->SetString(message, field, text());
          break;
        case pb::FieldDescriptor::CPPTYPE_BOOL:
          rep ? reflection->AddBool(message, field, pick(rng) % 2)
              : reflection->SetBool(message, field, pick(rng) % 2);
          break;
        case pb::FieldDescriptor::CPPTYPE_ENUM: {
          const pb::EnumDescriptor* e = field->enum_type();
          const int v = e->value(pick(rng) % e->value_count())->number();
          rep ? reflection->AddEnumValue(message, field, v)
              : reflection->SetEnumValue(message, field, v);
          break;
        }
        case pb::FieldDescriptor::CPPTYPE_DOUBLE:
          rep ? reflection->AddDouble(message, field, pick(rng) * 0.25)
              : reflection->SetDouble(message, field, pick(rng) * 0.25);
          break;
        case pb::FieldDescriptor::CPPTYPE_FLOAT:
          rep ? reflection->AddFloat(message, field, pick(rng) * 0.5f)
              : reflection->SetFloat(message, field, pick(rng) * 0.5f);
          break;
        case pb::FieldDescriptor::CPPTYPE_INT32:
          rep ? reflection->AddInt32(message, field, pick(rng) - 3)
              : reflection->SetInt32(message, field, pick(rng) - 3);
          break;
        case pb::FieldDescriptor::CPPTYPE_INT64:
          rep ? reflection->AddInt64(message, field, pick(rng) - 3)
              : reflection->SetInt64(message, field, pick(rng) - 3);
          break;
        case pb::FieldDescriptor::CPPTYPE_UINT32:
          rep ? reflection->AddUInt32(message, field, pick(rng))
              : reflection->SetUInt32(message, field, pick(rng));
          break;
        case pb::FieldDescriptor::CPPTYPE_UINT64:
          rep ? reflection->AddUInt64(message, field, pick(rng))
              : reflection->SetUInt64(message, field, pick(rng));
          break;
      }
    }
  }
}

// `message` serialized with map entries sorted (a map's own order is not stable).
std::string Deterministic(const pb::Message& message) {
  std::string out;
  {
    pb::io::StringOutputStream stream(&out);
    pb::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    message.SerializeToCodedStream(&coded);
  }
  return out;
}

// Both parses of `bytes` agree: both refuse it, or both give the same message (unknown fields
// included).
template <class Msg>
void CheckAgrees(const std::string& bytes) {
  Msg expected;
  const bool expected_ok = expected.ParseFromString(bytes);
  Msg got;
  std::mt19937_64 rng(1);
  Fill(&got, rng, 1);  // what the message held before must be cleared
  const bool got_ok = ParseRaw(bytes, &got);
  REQUIRE(got_ok == expected_ok);
  if (!expected_ok) return;
  pb::util::MessageDifferencer differ;
  std::string report;
  differ.ReportDifferencesToString(&report);
  INFO(report);
  CHECK(differ.Compare(expected, got));
  CHECK(Deterministic(got) == Deterministic(expected));
}

TEMPLATE_TEST_CASE("ParseWithRawTexts equals protobuf's parse on random v1 messages", "",
                   v1::ClassifyRequest, v1::VectorizeRequest, v1::TrainRequest,
                   v1::EvaluateRequest) {
  std::mt19937_64 rng(20261202);
  for (int round = 0; round < 300; ++round) {
    TestType message;
    Fill(&message, rng, 5);
    const std::string bytes = message.SerializeAsString();
    CheckAgrees<TestType>(bytes);
    // An unknown field after the known ones (Fill also puts some inside).
    CheckAgrees<TestType>(bytes + std::string("\xf8\x06\x2a", 3));  // field 111, varint 42
    // Two messages concatenated: repeated fields append, singular fields and oneofs: last wins,
    // submessages merge.
    TestType second;
    Fill(&second, rng, 5);
    CheckAgrees<TestType>(bytes + second.SerializeAsString());
    // Truncated: refused by both (or, cut at a field boundary, read alike).
    if (!bytes.empty()) CheckAgrees<TestType>(bytes.substr(0, rng() % bytes.size()));
  }
}

TEMPLATE_TEST_CASE("ParseWithRawTexts refuses corrupt bytes as protobuf does", "",
                   v1::ClassifyRequest, v1::TrainRequest) {
  std::mt19937_64 rng(7);
  for (int round = 0; round < 2000; ++round) {
    std::string bytes(rng() % 24, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    CheckAgrees<TestType>(bytes);
  }
}

// Found by fuzz_text_wire: a config replaced by a later batch (a oneof: the last one wins) was kept
// as opaque bytes and dropped unparsed, so a malformed config there passed where protobuf refuses
// the whole message.
TEMPLATE_TEST_CASE("A config replaced by a batch is still checked as protobuf checks it", "",
                   v1::TrainRequest, v1::EvaluateRequest) {
  // config { 1: "m"; 2: { 1: <109 bytes, but 0 follow> } } then batch { examples { 4: 11 } }.
  const std::string malformed_config("\x0a\x09\x0a\x01\x6d\x12\x04\x0a\x02\x0a\x6d", 11);
  const std::string batch("\x12\x04\x0a\x02\x20\x0b", 6);
  TestType v1;
  REQUIRE_FALSE(v1.ParseFromString(malformed_config + batch));
  CheckAgrees<TestType>(malformed_config + batch);
  // A well-formed config replaced by a batch: read alike.
  TestType config;
  config.mutable_config();
  CheckAgrees<TestType>(config.SerializeAsString() + batch);
}

TEST_CASE("Texts need not be UTF-8, every other string field still must be") {
  const std::string broken(
      "go\xc3"
      "al \xff\xfe",
      8);
  v1::ClassifyRequest classify;
  classify.mutable_model()->set_name("m");
  classify.add_texts("fine");
  classify.add_texts(broken);
  classify.set_top_k(2);
  v1::ClassifyRequest read;
  REQUIRE(ParseRaw(classify.SerializeAsString(), &read));
  CHECK(read.texts(1) == broken);
  CHECK(read.SerializeAsString() == classify.SerializeAsString());

  v1::VectorizeRequest vectorize;
  vectorize.add_texts(broken);
  v1::VectorizeRequest vectorize_read;
  REQUIRE(ParseRaw(vectorize.SerializeAsString(), &vectorize_read));
  CHECK(vectorize_read.texts(0) == broken);

  v1::TrainRequest train;
  v1::LabeledText* example = train.mutable_batch()->add_examples();
  example->set_text(broken);
  example->set_label("food");
  example->set_weight(0.5);
  v1::TrainRequest train_read;
  REQUIRE(ParseRaw(train.SerializeAsString(), &train_read));
  CHECK(train_read.batch().examples(0).text() == broken);
  CHECK(train_read.SerializeAsString() == train.SerializeAsString());
  v1::EvaluateRequest evaluate;
  *evaluate.mutable_batch() = train.batch();
  v1::EvaluateRequest evaluate_read;
  REQUIRE(ParseRaw(evaluate.SerializeAsString(), &evaluate_read));
  CHECK(evaluate_read.batch().examples(0).text() == broken);

  // Not texts: a label, a model name, a config's name or vocabulary term, an unknown field
  // (parsed by protobuf only as bytes, so it may hold anything).
  v1::TrainRequest bad_label = train;
  bad_label.mutable_batch()->mutable_examples(0)->set_label(broken);
  v1::ClassifyRequest bad_model = classify;
  bad_model.mutable_model()->set_name(broken);
  v1::TrainRequest bad_name;
  bad_name.mutable_config()->set_name(broken);
  v1::TrainRequest bad_term;
  bad_term.mutable_config()->mutable_vectorizer()->mutable_count()->add_vocabulary(broken);
  v1::EvaluateRequest bad_eval_model;
  bad_eval_model.mutable_config()->mutable_model()->set_name(broken);
  CHECK_FALSE(ParseRaw(bad_label.SerializeAsString(), &train_read));
  CHECK_FALSE(ParseRaw(bad_model.SerializeAsString(), &read));
  CHECK_FALSE(ParseRaw(bad_name.SerializeAsString(), &train_read));
  CHECK_FALSE(ParseRaw(bad_term.SerializeAsString(), &train_read));
  CHECK_FALSE(ParseRaw(bad_eval_model.SerializeAsString(), &evaluate_read));
  CHECK(ParseRaw(classify.SerializeAsString() + std::string("\xfa\x06\x02\xc3\x28", 5), &read));
}

}  // namespace
}  // namespace maas::discriminative
