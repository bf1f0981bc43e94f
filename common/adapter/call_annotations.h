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

// The model a call names or answers with.
struct ModelAnnotation {
  std::string name;
  int64_t version = 0;  // 0 = not known (e.g. "latest" before it was resolved)

  // Updates from one message: a name or version found there replaces the current one.
  void Update(const google::protobuf::Message& message);
};

}  // namespace maas::adapter

#endif  // MAAS_COMMON_ADAPTER_CALL_ANNOTATIONS_H_
