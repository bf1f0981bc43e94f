// Driver for the token_pattern differential test
// (tests/python/test_discriminative_token_pattern_oracle.py): runs many patterns over many texts in
// one process, for comparison with Python's re.findall.
//
// Input (stdin), strings hex-encoded UTF-8, one per line: the number of texts N, the N texts, then
// one pattern per line until the end. Output (stdout), one line per pattern:
//   "E <hex error message>"  when TokenPattern::Compile refuses it, or
//   "K t1;t2;...;tN"         where ti lists the tokens of text i, hex-encoded, comma-separated, or
//   "R <hex error message>"  when FindTokens refused to match some text (a pattern that
//                            backtracks past the server's step or stack limit).
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "services/discriminative/core/token_pattern.h"

namespace {

std::string Hex(std::string_view s) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() * 2);
  for (const char c : s) {
    out.push_back(kDigits[static_cast<unsigned char>(c) >> 4]);
    out.push_back(kDigits[static_cast<unsigned char>(c) & 15]);
  }
  return out;
}

bool Unhex(std::string_view hex, std::string* out) {
  const auto value = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  if (hex.size() % 2 != 0) return false;
  out->clear();
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = value(hex[i]), lo = value(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
  }
  return true;
}

}  // namespace

int main() {
  using maas::discriminative::TokenMatcherCache;
  using maas::discriminative::TokenPattern;
  std::string line;
  if (!std::getline(std::cin, line)) return 2;
  const size_t n = std::stoul(line);
  std::vector<std::string> texts(n);
  for (std::string& text : texts) {
    if (!std::getline(std::cin, line) || !Unhex(line, &text)) return 2;
  }
  TokenMatcherCache cache;
  std::string pattern;
  while (std::getline(std::cin, line)) {
    if (!Unhex(line, &pattern)) return 2;
    const auto compiled = TokenPattern::Compile(pattern);
    if (!compiled.ok()) {
      std::cout << "E " << Hex(std::string(compiled.status().message())) << "\n";
      continue;
    }
    std::string out = "K ";
    for (size_t i = 0; i < texts.size(); ++i) {
      if (i > 0) out.push_back(';');
      bool first = true;
      (*compiled)->FindTokens(texts[i], &cache, [&](std::string_view token) {
        if (!first) out.push_back(',');
        first = false;
        out += Hex(token);
      });
      if (!cache.status().ok()) {  // refused while matching (the step or backtrack stack limit)
        out = "R " + Hex(std::string(cache.status().message()));
        break;
      }
    }
    std::cout << out << "\n";
  }
  return 0;
}
