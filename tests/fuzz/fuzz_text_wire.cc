// Fuzz target: the discriminative adapter's request parse with texts as bytes (ParseWithRawTexts,
// adapter/text_wire) on arbitrary bytes read in chunks of a chosen size (as gRPC hands over a
// message in slices). The oracle is protobuf's own parser on the v1 schema with its text fields
// retyped `bytes` (derived here from the v1 descriptors, not from text_wire.proto): both accept
// the same inputs and read the same message (compared through the v1 type, texts in hex, unknown
// fields included); and what protobuf accepts under the v1 schema itself reads the same as well.
#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/stubs/logging.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "maas/discriminative/v1/discriminative.pb.h"
#include "services/discriminative/adapter/text_wire.h"
#include "tests/fuzz/fuzz_input.h"

namespace maas::fuzz {
namespace {

namespace pb = google::protobuf;
namespace dv1 = ::maas::discriminative::v1;

std::string WithSelector(uint8_t selector, const pb::Message& message) {
  return std::string(1, static_cast<char>(selector)) + message.SerializeAsString();
}

}  // namespace

std::vector<std::string> MaasFuzzSeeds() {
  dv1::ClassifyRequest classify;
  classify.mutable_model()->set_name("spam");
  classify.add_texts("win money now");
  classify.add_texts(std::string("caf\xe9 \xff", 6));  // not UTF-8
  classify.set_top_k(2);
  classify.set_compact(true);
  dv1::VectorizeRequest vectorize;
  vectorize.mutable_model()->set_name("m");
  vectorize.mutable_model()->set_version(3);
  vectorize.add_texts("\xce\xa3\xce\xbf\xcf\x86\xce\xaf\xce\xb1");
  dv1::TrainRequest config;
  config.mutable_config()->set_name("m");
  config.mutable_config()->mutable_vectorizer()->mutable_count()->set_max_features(10);
  dv1::TrainRequest batch;
  dv1::LabeledText* example = batch.mutable_batch()->add_examples();
  example->set_text("the match");
  example->set_label("sports");
  example->set_weight(0.5);
  example = batch.mutable_batch()->add_examples();
  example->set_text(std::string("\xc3\x28 bread", 8));
  example->set_label("food");
  dv1::TrainRequest rich;  // every TrainConfig field: nested configs, a map, repeated strings
  dv1::TrainConfig* c = rich.mutable_config();
  c->set_name("news");
  c->set_partial(true);
  c->add_classes("sports");
  c->add_classes("food");
  (*c->mutable_labels())["team"] = "ml";
  c->set_description("caf\xc3\xa9");
  c->mutable_vectorizer()->mutable_count()->set_max_features(100);
  c->mutable_vectorizer()->mutable_tfidf()->set_sublinear_tf(true);
  c->mutable_classifier()->mutable_complement_nb()->set_alpha(0.5);
  dv1::EvaluateRequest evaluate;
  evaluate.mutable_config()->mutable_model()->set_name("m");
  dv1::EvaluateRequest evaluate_batch;
  *evaluate_batch.mutable_batch() = batch.batch();
  return {
      WithSelector(0x00, classify),
      WithSelector(0x11, vectorize),
      WithSelector(0x22, config),
      WithSelector(0x32, batch),
      WithSelector(0x43, evaluate),
      WithSelector(0x73, evaluate_batch),
      WithSelector(0x20, config) + batch.SerializeAsString(),  // two messages: they merge
      WithSelector(0x02, rich),
      WithSelector(0x52, rich) + batch.SerializeAsString(),
  };
}

}  // namespace maas::fuzz

namespace {

namespace pb = google::protobuf;
namespace dv1 = ::maas::discriminative::v1;

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

// The v1 file with ClassifyRequest.texts, VectorizeRequest.texts and LabeledText.text retyped
// `bytes`, under another package (its own types referring to each other there), in a pool over
// the generated one (for its imports).
class BytesSchema {
 public:
  BytesSchema() : pool_(pb::DescriptorPool::generated_pool()), factory_(&pool_) {
    pb::FileDescriptorProto file;
    dv1::ClassifyRequest::descriptor()->file()->CopyTo(&file);
    const std::string from = "." + file.package() + ".";
    file.set_name("fuzz/bytes_" + file.name());
    file.set_package("fuzz.bytes");
    file.clear_service();  // its methods name the v1 types
    for (pb::DescriptorProto& message : *file.mutable_message_type()) Retype(from, &message);
    if (pool_.BuildFile(file) == nullptr) std::abort();
  }

  // A new message of the retyped version of type (a v1 type); owned by the caller.
  pb::Message* New(const pb::Descriptor* type) {
    const pb::Descriptor* retyped = pool_.FindMessageTypeByName("fuzz.bytes." + type->name());
    if (retyped == nullptr) std::abort();
    return factory_.GetPrototype(retyped)->New();
  }

 private:
  static void Retype(const std::string& from, pb::DescriptorProto* message) {
    for (pb::FieldDescriptorProto& field : *message->mutable_field()) {
      if (field.type_name().rfind(from, 0) == 0) {
        field.set_type_name(".fuzz.bytes." + field.type_name().substr(from.size()));
      }
      const bool text =
          (message->name() == "LabeledText" && field.name() == "text") ||
          ((message->name() == "ClassifyRequest" || message->name() == "VectorizeRequest") &&
           field.name() == "texts");
      if (text) field.set_type(pb::FieldDescriptorProto::TYPE_BYTES);
    }
    for (pb::DescriptorProto& nested : *message->mutable_nested_type()) Retype(from, &nested);
  }

  pb::DescriptorPool pool_;
  pb::DynamicMessageFactory factory_;
};

BytesSchema& Schema() {
  static BytesSchema* const schema = new BytesSchema();
  return *schema;
}

// Each text replaced by its bytes in hex (valid UTF-8, one-to-one), by reflection, on the v1
// messages and the oracle's alike: then the v1 parse can read the oracle's message.
std::string Hex(const std::string& bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (const char c : bytes) {
    out.push_back(kDigits[static_cast<unsigned char>(c) >> 4]);
    out.push_back(kDigits[static_cast<unsigned char>(c) & 15]);
  }
  return out;
}

void HexTexts(pb::Message* message) {
  const pb::Descriptor* type = message->GetDescriptor();
  const pb::Reflection* reflection = message->GetReflection();
  if (const pb::FieldDescriptor* texts = type->FindFieldByName("texts")) {
    for (int i = 0; i < reflection->FieldSize(*message, texts); ++i) {
      reflection->SetRepeatedString(message, texts, i,
                                    Hex(reflection->GetRepeatedString(*message, texts, i)));
    }
  }
  const pb::FieldDescriptor* batch = type->FindFieldByName("batch");
  if (batch == nullptr || !reflection->HasField(*message, batch)) return;
  pb::Message* examples_of = reflection->MutableMessage(message, batch);
  const pb::FieldDescriptor* examples = examples_of->GetDescriptor()->FindFieldByName("examples");
  const pb::Reflection* batch_reflection = examples_of->GetReflection();
  for (int i = 0; i < batch_reflection->FieldSize(*examples_of, examples); ++i) {
    pb::Message* example = batch_reflection->MutableRepeatedMessage(examples_of, examples, i);
    const pb::FieldDescriptor* text = example->GetDescriptor()->FindFieldByName("text");
    example->GetReflection()->SetString(example, text,
                                        Hex(example->GetReflection()->GetString(*example, text)));
  }
}

// Something for the parse to clear: what the message held before must not survive.
void Stale(dv1::ClassifyRequest* m) { m->mutable_model()->set_name("stale"); }
void Stale(dv1::VectorizeRequest* m) { m->mutable_model()->set_name("stale"); }
void Stale(dv1::TrainRequest* m) { m->mutable_config()->set_name("stale"); }
void Stale(dv1::EvaluateRequest* m) { m->mutable_config()->mutable_model()->set_name("stale"); }

template <class Msg>
void Check(std::string_view bytes, int block_size) {
  const int size = static_cast<int>(bytes.size());
  std::unique_ptr<pb::Message> expected(Schema().New(Msg::descriptor()));
  const bool expected_ok = expected->ParseFromArray(bytes.data(), size);
  Msg got;
  Stale(&got);
  pb::io::ArrayInputStream in(bytes.data(), size, block_size);
  const bool got_ok = maas::discriminative::ParseWithRawTexts(&in, &got);
  if (got_ok != expected_ok) std::abort();
  // What the v1 schema itself accepts (texts that are UTF-8), the raw parse reads alike.
  Msg v1;
  if (v1.ParseFromArray(bytes.data(), size) &&
      (!got_ok || Deterministic(got) != Deterministic(v1))) {
    std::abort();
  }
  if (!got_ok) return;
  // The same message as the oracle's, read by the v1 type (its rules for maps and unknown
  // fields), once the texts of both are in hex.
  HexTexts(expected.get());
  HexTexts(&got);
  Msg oracle;
  if (!oracle.ParseFromString(expected->SerializeAsString())) std::abort();
  if (Deterministic(oracle) != Deterministic(got)) std::abort();
}

}  // namespace

// Protobuf logs every string field it refuses as invalid UTF-8; here that is most inputs.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  maas::fuzz::FuzzInput input(data, size);
  const uint8_t selector = input.Byte();
  const std::string_view bytes = input.Rest();
  // Low 2 bits: the message type; high bits: the chunk size (1 to 16 bytes, or all at once).
  const int chunk = selector >> 4;
  const int block_size = chunk == 0 ? -1 : chunk;
  switch (selector & 3) {
    case 0:
      Check<dv1::ClassifyRequest>(bytes, block_size);
      break;
    case 1:
      Check<dv1::VectorizeRequest>(bytes, block_size);
      break;
    case 2:
      Check<dv1::TrainRequest>(bytes, block_size);
      break;
    default:
      Check<dv1::EvaluateRequest>(bytes, block_size);
      break;
  }
  return 0;
}
