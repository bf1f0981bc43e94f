// Helpers shared by the fuzz targets: cut one fuzz input into several messages.
//
// An input is read as a sequence of chunks, each a 2-byte little-endian length followed by that
// many bytes (a short final chunk takes what is left). The first byte of the input, taken before
// the chunks, lets a target choose among its entry points, so one corpus exercises all of them.
#ifndef MAAS_TESTS_FUZZ_FUZZ_INPUT_H_
#define MAAS_TESTS_FUZZ_FUZZ_INPUT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace maas::fuzz {

class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size) : rest_(reinterpret_cast<const char*>(data), size) {}

  // The next byte (0 when the input is exhausted).
  uint8_t Byte() {
    if (rest_.empty()) return 0;
    const uint8_t b = static_cast<uint8_t>(rest_[0]);
    rest_.remove_prefix(1);
    return b;
  }

  // The next length-prefixed chunk; false when nothing is left.
  bool Chunk(std::string* out) {
    if (rest_.empty()) return false;
    size_t length = static_cast<uint8_t>(rest_[0]);
    if (rest_.size() >= 2) length |= static_cast<size_t>(static_cast<uint8_t>(rest_[1])) << 8;
    rest_.remove_prefix(rest_.size() >= 2 ? 2 : 1);
    if (length > rest_.size()) length = rest_.size();
    out->assign(rest_.data(), length);
    rest_.remove_prefix(length);
    return true;
  }

  // Everything not consumed yet.
  std::string_view Rest() const { return rest_; }

 private:
  std::string_view rest_;
};

// The inverse of FuzzInput::Chunk, for writing seed corpora.
inline std::string EncodeChunks(uint8_t selector, const std::vector<std::string>& chunks) {
  std::string out(1, static_cast<char>(selector));
  for (const std::string& c : chunks) {
    out.push_back(static_cast<char>(c.size() & 0xff));
    out.push_back(static_cast<char>((c.size() >> 8) & 0xff));
    out += c;
  }
  return out;
}

}  // namespace maas::fuzz

#endif  // MAAS_TESTS_FUZZ_FUZZ_INPUT_H_
