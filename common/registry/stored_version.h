// How both services read one stored version: the status of a stored message that does not parse,
// holds no ModelInfo, or holds a spec that does not build. Each is the stored data's fault, not a
// request's, so each is DATA_LOSS, whatever the loader's own validation answered.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/store/stored_bytes.h"

namespace maas::registry {

// Parses `bytes` into *stored, a service's Stored*Model message (its ModelInfo in `info`), then
// releases them (a load's own bytes are freed before the model is built from *stored).
// DATA_LOSS when the bytes do not parse, or parse without a ModelInfo: every version is written
// with one, so without it the file is empty (an empty file parses as an empty message) or foreign.
template <typename Stored>
absl::Status ParseStoredVersion(store::StoredBytes& bytes, absl::string_view message_name,
                                Stored* stored) {
  const bool parsed = stored->ParseFromString(bytes.str());
  bytes.Release();
  if (!parsed) {
    return absl::DataLossError(
        absl::StrCat("stored model is not a valid ", message_name, " message"));
  }
  if (!stored->has_info()) {
    return absl::DataLossError(absl::StrCat("stored model holds no ModelInfo (", bytes.size(),
                                            " bytes): the file is empty or not a ", message_name));
  }
  return absl::OkStatus();
}

// The status of building a stored spec into what serves it (`what`: "a model", "a pipeline"): a
// spec the builder calls INVALID_ARGUMENT was not written by a server, so it is DATA_LOSS; other
// failures (UNIMPLEMENTED: a family this binary lacks; RESOURCE_EXHAUSTED) keep their code.
inline absl::Status StoredSpecStatus(const absl::Status& built, absl::string_view what) {
  if (absl::IsInvalidArgument(built)) {
    return absl::DataLossError(
        absl::StrCat("the stored spec does not build ", what, ": ", built.message()));
  }
  return built;
}

}  // namespace maas::registry
