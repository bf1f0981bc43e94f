// Fuzz target: UTF-8 validation and the word analyzer (lowercasing, the default token pattern, stop
// words, n-grams) on arbitrary bytes. Invariants: invalid UTF-8 is rejected, never tokenized; every
// token of valid text is valid UTF-8 and non-empty; n-grams join tokens with single spaces.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "services/discriminative/core/text_analysis.h"
#include "tests/fuzz/fuzz_input.h"

namespace maas::fuzz {

std::vector<std::string> MaasFuzzSeeds() {
  return {
      std::string("\x01The striker scored a LATE goal!"),
      std::string(
          "\x05\xc3\x89t\xc3\xa9 \xc3\xa0 Paris, caf\xc3\xa9 cr\xc3\xa8me br\xc3\xbbl\xc3\xa9"
          "e"),
      std::string(
          "\x02\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xce\xa3\xce\xbf\xcf\x86\xce\xaf\xce\xb1 "
          "\xc4\xb0stanbul foo_bar 3.14 e-mail"),
      std::string("\x07\xf0\x9f\x98\x80 emoji \xcc\x81 combining\t\n\v\f\r\xc2\x85 spaces"),
      std::string("\x03\xff\xfe invalid \xc0\xaf overlong \xed\xa0\x80 surrogate"),
      std::string("\x04the and of to in is it for on with this that"),
  };
}

}  // namespace maas::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace maas::discriminative;
  maas::fuzz::FuzzInput input(data, size);
  const uint8_t options_byte = input.Byte();
  const std::string_view text = input.Rest();
  if (!ValidateUtf8(text).ok()) return 0;
  const std::string lower = PythonLower(text);
  if (!ValidateUtf8(lower).ok()) std::abort();
  for (const std::string& token : DefaultTokenize(text)) {
    if (token.empty() || !ValidateUtf8(token).ok()) std::abort();
  }
  WordAnalyzerOptions options;
  options.lowercase = (options_byte & 1) != 0;
  options.english_stop_words = (options_byte & 2) != 0;
  options.ngram_min = 1 + ((options_byte >> 2) & 1);
  options.ngram_max = options.ngram_min + ((options_byte >> 3) & 3);
  for (const std::string& gram : AnalyzeWords(text, options)) {
    if (gram.empty() || gram.front() == ' ' || gram.back() == ' ' ||
        gram.find("  ") != std::string::npos || !ValidateUtf8(gram).ok()) {
      std::abort();
    }
  }
  return 0;
}
