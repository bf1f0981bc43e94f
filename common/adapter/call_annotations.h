// What the per-call log line and metrics learn about a call from its messages: the model it used
// (name and version), found by field names shared by every maas message (`model` ModelRef, `name`,
// `config.name`, `info` ModelInfo, `model_version`). The reactors send it as trailing metadata
// (kModelNameKey, kModelVersionKey), which the server kit's log interceptor reads; clients see it
// too.
#ifndef MAAS_COMMON_ADAPTER_CALL_ANNOTATIONS_H_
#define MAAS_COMMON_ADAPTER_CALL_ANNOTATIONS_H_

#include <cstdint>
#include <string>

#include "google/protobuf/message.h"

namespace maas::adapter {

inline constexpr char kModelNameKey[] = "maas-model-name";
inline constexpr char kModelVersionKey[] = "maas-model-version";
// Documents classified / samples produced by the call (decimal), for the per-model counters.
inline constexpr char kDocumentsKey[] = "maas-documents";
inline constexpr char kSamplesKey[] = "maas-samples";

// The model a call names or answers with.
struct ModelAnnotation {
  std::string name;
  int64_t version = 0;  // 0 = not known (e.g. "latest" before it was resolved)

  int64_t documents = 0;  // texts classified (ClassifyResponse.results, or .predicted if compact)
  int64_t samples = 0;    // samples produced (SampleBatch.x rows)

  // Updates from one message: a name or version found there replaces the current one.
  void Update(const google::protobuf::Message& message);
  // Adds what one response message carries to documents / samples.
  void CountOutput(const google::protobuf::Message& response);
};

}  // namespace maas::adapter

#endif  // MAAS_COMMON_ADAPTER_CALL_ANNOTATIONS_H_
