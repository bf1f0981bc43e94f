// Texts packed in one byte string (ClassifyRequest.packed_texts, VectorizeRequest.packed_texts):
// each text as its byte length, 4 bytes little-endian, then its bytes; the layout of KServe's raw
// BYTES tensors. A batch client sends one field instead of one per text, and the server reads the
// texts in place, without an allocation per text.
//
//   std::string packed = PackTexts({"a text", "another"});
//   std::vector<std::string_view> texts;
//   absl::Status unpacked = UnpackTexts(packed, /*max_texts=*/1000, &texts);
#ifndef MAAS_SERVICES_DISCRIMINATIVE_CORE_PACKED_TEXTS_H_
#define MAAS_SERVICES_DISCRIMINATIVE_CORE_PACKED_TEXTS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace maas::discriminative {

// Bytes of the length before each text.
inline constexpr size_t kPackedLengthBytes = 4;

// Packs texts (each below 4 GiB) into the layout above.
std::string PackTexts(absl::Span<const std::string_view> texts);

// Splits `packed` into `*texts` (views into `packed`; cleared first). Errors, each naming
// packed_texts, the text and its byte offset: INVALID_ARGUMENT when a length is cut short or
// claims more bytes than follow; RESOURCE_EXHAUSTED when there are more than `max_texts` texts
// (found before reading them all).
absl::Status UnpackTexts(std::string_view packed, uint64_t max_texts,
                         std::vector<std::string_view>* texts);

}  // namespace maas::discriminative

#endif  // MAAS_SERVICES_DISCRIMINATIVE_CORE_PACKED_TEXTS_H_
