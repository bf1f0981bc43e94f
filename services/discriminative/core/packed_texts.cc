#include "services/discriminative/core/packed_texts.h"

#include "absl/strings/str_cat.h"

namespace maas::discriminative {
namespace {

uint32_t LoadLength(const char* at) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(at);
  return uint32_t{bytes[0]} | uint32_t{bytes[1]} << 8 | uint32_t{bytes[2]} << 16 |
         uint32_t{bytes[3]} << 24;
}

}  // namespace

std::string PackTexts(absl::Span<const std::string_view> texts) {
  size_t total = 0;
  for (std::string_view text : texts) total += kPackedLengthBytes + text.size();
  std::string packed;
  packed.reserve(total);
  for (std::string_view text : texts) {
    const auto length = static_cast<uint32_t>(text.size());
    for (size_t b = 0; b < kPackedLengthBytes; ++b)
      packed.push_back(static_cast<char>(length >> (8 * b)));
    packed.append(text.data(), text.size());
  }
  return packed;
}

absl::Status UnpackTexts(std::string_view packed, uint64_t max_texts,
                         std::vector<std::string_view>* texts) {
  texts->clear();
  size_t at = 0;
  while (at < packed.size()) {
    const size_t index = texts->size();
    if (index >= max_texts) {
      return absl::ResourceExhaustedError(
          absl::StrCat("packed_texts holds more than ", max_texts,
                       " texts, above this server's limit per request (--max_texts_per_request); "
                       "split them over several calls"));
    }
    const size_t left = packed.size() - at;
    if (left < kPackedLengthBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "packed_texts: text ", index, "'s length at byte ", at, " is cut short (", left,
          " of 4 bytes); each text is its byte length, 4 bytes little-endian, then its bytes"));
    }
    const uint32_t length = LoadLength(packed.data() + at);
    if (length > left - kPackedLengthBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "packed_texts: text ", index, " at byte ", at, " claims ", length, " bytes, but ",
          left - kPackedLengthBytes,
          " follow; each text is its byte length, 4 bytes little-endian, then its bytes"));
    }
    texts->push_back(packed.substr(at + kPackedLengthBytes, length));
    at += kPackedLengthBytes + length;
  }
  return absl::OkStatus();
}

}  // namespace maas::discriminative
