// Fuzz target: the custom token_pattern (Python re -> ICU translation, compilation, findall) on
// arbitrary patterns and texts. Invariants: a pattern the translator accepts always compiles in ICU
// (a failure there is a translation bug); every token is non-empty, valid UTF-8 and a substring of
// the text; matching never fails.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "services/discriminative/core/text_analysis.h"
#include "services/discriminative/core/token_pattern.h"
#include "tests/fuzz/fuzz_input.h"

namespace maas::fuzz {

std::vector<std::string> MaasFuzzSeeds() {
  return {
      EncodeChunks(0, {R"((?u)\b\w+\b)", "Hello w\xc3\xb6rld_1 foo@bar.com 12"}),
      EncodeChunks(0, {R"((\w+)@)", "ab@x \xf0\x9f\x98\x80z@ @"}),
      EncodeChunks(0, {R"([^\W\d_]{2,}|\S)", "x\xc2\xa0y\xe2\x80\xa8z \xe2\x80\x8bq 3.14"}),
      EncodeChunks(0, {R"((?m)^\s*(?:#|//)?\w+?$)", "a\nb\r\n#c\n"}),
      EncodeChunks(0, {R"((?<=[@#])\w|(?s:.)\B)", "#a @b\n\n"}),
      EncodeChunks(0, {R"([\x41-\u00ff\]\-]+\Z)", "AB-]\xc3\xa9"}),
      EncodeChunks(0, {R"((?a)(?P<t>\d)\D{1,3}?)", "1ab2\xd9\xa3x"}),
  };
}

}  // namespace maas::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace maas::discriminative;
  maas::fuzz::FuzzInput input(data, size);
  input.Byte();
  std::string pattern;
  input.Chunk(&pattern);
  // Short patterns and texts keep backtracking-heavy inputs fast.
  if (pattern.size() > 64) return 0;
  std::string_view text = input.Rest();
  if (text.size() > 48) text = text.substr(0, 48);
  const auto translated = TranslatePythonPattern(pattern);
  const auto compiled = TokenPattern::Compile(pattern);
  if (translated.ok() != compiled.ok()) std::abort();
  if (!compiled.ok()) return 0;
  if (!ValidateUtf8(text).ok()) return 0;
  TokenMatcherCache cache;
  (*compiled)->FindTokens(text, &cache, [&](std::string_view token) {
    if (token.empty() || !ValidateUtf8(token).ok()) std::abort();
    if (token.data() < text.data() || token.data() + token.size() > text.data() + text.size()) {
      std::abort();
    }
  });
  if (!cache.status().ok()) std::abort();
  return 0;
}
