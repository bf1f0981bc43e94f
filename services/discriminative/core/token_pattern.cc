#include "services/discriminative/core/token_pattern.h"

#include <algorithm>
#include <array>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "services/discriminative/core/text_analysis.h"
#include "unicode/regex.h"
#include "unicode/uchar.h"
#include "unicode/uniset.h"
#include "unicode/unistr.h"
#include "unicode/utf16.h"
#include "unicode/utf8.h"

namespace maas::discriminative {
namespace {

// ICU's RegexMatcher::setTimeLimit counts in quanta of this many match steps (backtracking state
// saves; TIMER_INITIAL_VALUE in ICU's rematch.cpp).
constexpr int64_t kIcuStepQuantum = 10'000;

// Python's sre MAXREPEAT (an unbounded repeat) and its width arithmetic (SubPattern.getwidth caps
// the minimum at MAXREPEAT - 1 and the maximum at MAXREPEAT).
constexpr uint64_t kMaxRepeat = 4294967295u;

uint64_t MulWidth(uint64_t a, uint64_t b, uint64_t cap) {
  if (a == 0 || b == 0) return 0;
  if (a >= cap || b >= cap || a > cap / b) return cap;
  return std::min(a * b, cap);
}
uint64_t AddWidth(uint64_t a, uint64_t b, uint64_t cap) { return std::min(a + b, cap); }

std::string Hex(UChar32 c) { return absl::StrFormat("\\x{%X}", c); }

// ICU text for one literal code point.
std::string IcuLiteral(UChar32 c) {
  if ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')) {
    return std::string(1, static_cast<char>(c));
  }
  return Hex(c);
}

// ICU text for a set of code points, as explicit ranges.
std::string IcuSet(const icu::UnicodeSet& set) {
  if (set.isEmpty()) return "[^\\x{0}-\\x{10FFFF}]";
  std::string out = "[";
  for (int32_t i = 0; i < set.getRangeCount(); ++i) {
    const UChar32 lo = set.getRangeStart(i), hi = set.getRangeEnd(i);
    absl::StrAppend(&out, Hex(lo));
    if (hi > lo) absl::StrAppend(&out, "-", Hex(hi));
  }
  out.push_back(']');
  return out;
}

icu::UnicodeSet SetFromPattern(const char* pattern) {
  UErrorCode status = U_ZERO_ERROR;
  icu::UnicodeSet set(icu::UnicodeString(pattern, -1, US_INV), status);
  if (U_FAILURE(status)) set.clear();  // Unreachable: fixed, valid patterns.
  return set;
}

// Python 3.11 re's categories for str patterns.
struct Categories {
  icu::UnicodeSet word, digit, space;
};

// Python's Unicode \w and \d in ICU regex syntax: L = Lu Ll Lt Lm Lo, N = Nd Nl No, of the code
// points Unicode 14.0 assigns (Python 3.11's; \p{Age=14.0}: see AssignedAfterUnicode14); the same
// ICU property data as UnicodeCategories() (checked equal over every code point in the unit test).
constexpr char kIcuUnicodeWord[] = "[[\\p{L}\\p{N}_]&&\\p{Age=14.0}]";
constexpr char kIcuUnicodeNonWord[] = "[^[\\p{L}\\p{N}_]&&\\p{Age=14.0}]";
constexpr char kIcuUnicodeDigit[] = "[\\p{Nd}&&\\p{Age=14.0}]";
constexpr char kIcuUnicodeNonDigit[] = "[^\\p{Nd}&&\\p{Age=14.0}]";

Categories UnicodeCategories() {
  Categories c;
  // Python 3.11's Unicode 14.0: ICU's categories of the code points it assigns.
  const icu::UnicodeSet unicode14 = SetFromPattern(kUnicode14AssignedSet);
  c.word = SetFromPattern("[[:Lu:][:Ll:][:Lt:][:Lm:][:Lo:][:Nd:][:Nl:][:No:]_]");
  c.word.retainAll(unicode14);
  c.digit = SetFromPattern("[:Nd:]");
  c.digit.retainAll(unicode14);
  c.space = SetFromPattern(
      "[\\u0009-\\u000D\\u001C-\\u0020\\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F"
      "\\u205F\\u3000]");
  return c;
}

Categories AsciiCategories() {
  Categories c;
  c.word = SetFromPattern("[0-9A-Za-z_]");
  c.digit = SetFromPattern("[0-9]");
  c.space = SetFromPattern("[\\u0009-\\u000D\\u0020]");
  return c;
}

// Immutable tables, built once (thread-safe static initialisation), frozen for concurrent reads.
const Categories& SharedUnicodeCategories() {
  static const Categories* const categories = [] {
    auto* c = new Categories(UnicodeCategories());
    c->word.freeze();
    c->digit.freeze();
    c->space.freeze();
    return c;
  }();
  return *categories;
}
const Categories& SharedAsciiCategories() {
  static const Categories* const categories = [] {
    auto* c = new Categories(AsciiCategories());
    c->word.freeze();
    c->digit.freeze();
    c->space.freeze();
    return c;
  }();
  return *categories;
}

struct Flags {
  bool ascii = false;
  bool dotall = false;
  bool multiline = false;
};

// A parsed subexpression: its ICU text and what the checks need.
struct Piece {
  std::string icu;
  uint64_t min = 0;  // width in code points (Python's getwidth)
  uint64_t max = 0;
  bool at = false;          // ^ $ \A \Z \b \B: "nothing to repeat"
  bool lookaround = false;  // (?=...) (?!...) (?<=...) (?<!...)
  bool quantified = false;
  bool has_group = false;
  bool group_certain = false;  // the group takes part in every match of this piece
  uint64_t group_min = 0;
  // For the run fast path: the set of a one-code-point piece (a literal, a class, \w ...), its
  // repeat counts and laziness; and whether the piece is \b.
  std::optional<icu::UnicodeSet> set;
  uint64_t repeat_min = 1;
  uint64_t repeat_max = 1;
  bool lazy = false;
  bool word_boundary = false;
};

bool IsAsciiLetter(UChar32 c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigit(UChar32 c) { return c >= '0' && c <= '9'; }
bool IsOctal(UChar32 c) { return c >= '0' && c <= '7'; }
int HexValue(UChar32 c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void AppendUtf8(UChar32 c, std::string* out) {
  char buf[U8_MAX_LENGTH];
  int32_t len = 0;
  U8_APPEND_UNSAFE(buf, len, c);
  out->append(buf, len);
}

class Translator {
 public:
  explicit Translator(std::vector<UChar32> pattern)
      : p_(std::move(pattern)),
        unicode_(SharedUnicodeCategories()),
        ascii_(SharedAsciiCategories()) {}

  absl::StatusOr<TranslatedTokenPattern> Run() {
    Flags flags;  // The global flags once parsed.
    auto top = ParseAlternation(&flags, /*top_level=*/true);
    if (!top.ok()) return top.status();
    if (pos_ < p_.size()) return Error(pos_, "unbalanced parenthesis");
    if (seen_ascii_ && seen_unicode_) {
      return Error(0, "bad inline flags: flags 'a' and 'u' are incompatible (ASCII and UNICODE)");
    }
    if (groups_ > 1) {
      return absl::InvalidArgumentError(
          "token_pattern: More than 1 capturing group in token pattern. Only a single group "
          "should be captured (scikit-learn's rule; use (?:...) for the others)");
    }
    if (top->min == 0) {
      return absl::InvalidArgumentError(
          "token_pattern can match the empty string (e.g. \\w* or a pattern of only assertions); "
          "re.findall would yield empty tokens, which is not supported: make every match "
          "consume at least one character");
    }
    if (groups_ == 1 && !(top->has_group && top->group_certain)) {
      return absl::InvalidArgumentError(
          "token_pattern's capturing group may not take part in a match (it is inside ?, *, "
          "{0,n}, an alternative or a negative lookaround); re.findall would yield empty tokens "
          "for such matches, which is not supported");
    }
    if (groups_ == 1 && top->group_min == 0) {
      return absl::InvalidArgumentError(
          "token_pattern's capturing group can match the empty string; re.findall would yield "
          "empty tokens, which is not supported");
    }
    TranslatedTokenPattern out;
    out.icu_pattern = std::move(top->icu);
    out.has_group = groups_ == 1;
    if (top_branches_ == 1 && groups_ == 0) DetectRuns(flags, &out);
    return out;
  }

 private:
  // Python's re.error, positions in code points of the pattern.
  absl::Status Error(size_t pos, absl::string_view message) const {
    return absl::InvalidArgumentError(absl::StrCat(
        "token_pattern does not compile (Python re): ", message, " at position ", pos));
  }
  absl::Status Refuse(size_t pos, absl::string_view construct, absl::string_view why) const {
    return absl::InvalidArgumentError(absl::StrCat("token_pattern: ", construct, " at position ",
                                                   pos, " is not supported: ", why));
  }

  // The pattern text p_[begin, end) as UTF-8.
  std::string Source(size_t begin, size_t end) const {
    std::string out;
    for (size_t i = begin; i < end && i < p_.size(); ++i) AppendUtf8(p_[i], &out);
    return out;
  }

  bool AtEnd() const { return pos_ >= p_.size(); }
  UChar32 Peek(size_t ahead = 0) const { return pos_ + ahead < p_.size() ? p_[pos_ + ahead] : -1; }
  bool Match(UChar32 c) {
    if (Peek() != c) return false;
    ++pos_;
    return true;
  }

  const Categories& Cat(const Flags& flags) const { return flags.ascii ? ascii_ : unicode_; }

  absl::StatusOr<Piece> ParseAlternation(Flags* flags, bool top_level) {
    std::vector<Piece> branches;
    bool first = top_level;
    while (true) {
      auto branch = ParseSequence(flags, first);
      if (!branch.ok()) return branch.status();
      branches.push_back(*std::move(branch));
      first = false;
      if (!Match('|')) break;
    }
    if (top_level) top_branches_ = branches.size();
    if (branches.size() == 1) return std::move(branches[0]);
    Piece out;
    out.min = kMaxRepeat;
    for (size_t i = 0; i < branches.size(); ++i) {
      const Piece& b = branches[i];
      if (i > 0) out.icu.push_back('|');
      out.icu += b.icu;
      out.min = std::min(out.min, b.min);
      out.max = std::max(out.max, b.max);
      out.has_group = out.has_group || b.has_group;
      if (b.has_group) out.group_min = b.group_min;
    }
    out.group_certain = false;  // Another alternative may match without the group.
    out.icu = absl::StrCat("(?:", out.icu, ")");
    return out;
  }

  absl::StatusOr<Piece> ParseSequence(Flags* flags, bool first) {
    std::vector<Piece> items;
    while (!AtEnd()) {
      const size_t start = pos_;
      const UChar32 c = Peek();
      if (c == '|' || c == ')') break;
      ++pos_;
      if (c == '*' || c == '+' || c == '?' || c == '{') {
        uint64_t lo = 0, hi = kMaxRepeat;
        if (c == '+') lo = 1;
        if (c == '?') hi = 1;
        if (c == '{') {
          if (Peek() == '}') {
            items.push_back(LiteralPiece('{'));
            continue;
          }
          const size_t here = pos_;
          std::string lo_text, hi_text;
          while (IsDigit(Peek())) lo_text.push_back(static_cast<char>(p_[pos_++]));
          if (Match(',')) {
            while (IsDigit(Peek())) hi_text.push_back(static_cast<char>(p_[pos_++]));
          } else {
            hi_text = lo_text;
          }
          if (!Match('}')) {
            pos_ = here;
            items.push_back(LiteralPiece('{'));
            continue;
          }
          for (const std::string* text : {&lo_text, &hi_text}) {
            if (text->empty()) continue;
            if (text->size() > 12 || std::stoull(*text) >= kMaxRepeat) {
              return Error(start, "the repetition number is too large");
            }
            if (std::stoull(*text) > kMaxTokenPatternRepeat) {
              return Refuse(start, absl::StrCat("repeat count ", *text),
                            absl::StrCat("at most ", kMaxTokenPatternRepeat));
            }
          }
          if (!lo_text.empty()) lo = std::stoull(lo_text);
          if (!hi_text.empty()) hi = std::stoull(hi_text);
          if (hi < lo) return Error(here, "min repeat greater than max repeat");
        }
        if (items.empty() || items.back().at) return Error(start, "nothing to repeat");
        if (items.back().quantified) return Error(start, "multiple repeat");
        bool lazy = false;
        if (Match('?')) {
          lazy = true;
        } else if (Peek() == '+') {
          return Refuse(pos_, "a possessive quantifier (*+, ++, ?+, {m,n}+)",
                        "use a greedy or lazy quantifier");
        }
        Piece& item = items.back();
        if (item.lookaround) {
          return Refuse(start, "a quantifier on a lookaround assertion", "remove the quantifier");
        }
        if (hi > 1 && item.min == 0) {
          return Refuse(start, "a repeated subpattern that can match the empty string",
                        "Python and ICU differ on empty iterations; make the repeated part "
                        "consume at least one character");
        }
        std::string q;
        if (c == '{') {
          q = hi == kMaxRepeat
                  ? absl::StrCat("{", lo, ",}")
                  : (lo == hi ? absl::StrCat("{", lo, "}") : absl::StrCat("{", lo, ",", hi, "}"));
        } else {
          q = std::string(1, static_cast<char>(c));
        }
        if (lazy) q.push_back('?');
        item.icu = absl::StrCat("(?:", item.icu, ")", q);
        item.min = MulWidth(item.min, lo, kMaxRepeat - 1);
        item.max =
            hi == kMaxRepeat && item.max > 0 ? kMaxRepeat : MulWidth(item.max, hi, kMaxRepeat);
        if (item.has_group && (lo == 0 || hi > 1)) item.group_certain = false;
        item.quantified = true;
        item.repeat_min = lo;
        item.repeat_max = hi;
        item.lazy = lazy;
        continue;
      }
      if (c == '(') {
        auto group = ParseGroup(flags, first && items.empty(), start);
        if (!group.ok()) return group.status();
        if (group->has_value()) items.push_back(**std::move(group));
        continue;
      }
      if (c == '[') {
        auto set = ParseClass(*flags, start);
        if (!set.ok()) return set.status();
        items.push_back(SetPiece(*set));
        continue;
      }
      if (c == '\\') {
        auto escape = ParseEscape(*flags, start);
        if (!escape.ok()) return escape.status();
        items.push_back(*std::move(escape));
        continue;
      }
      if (c == '.') {
        icu::UnicodeSet any(0, 0x10FFFF);
        if (!flags->dotall) any.remove('\n');
        items.push_back(SetPiece(any));
        continue;
      }
      if (c == '^') {
        Piece at;
        at.at = true;
        at.icu = flags->multiline ? "(?:\\A|(?<=\\x{A}))" : "\\A";
        items.push_back(at);
        continue;
      }
      if (c == '$') {
        Piece at;
        at.at = true;
        at.icu = flags->multiline ? "(?=\\x{A}|\\z)" : "(?=\\x{A}?\\z)";
        items.push_back(at);
        continue;
      }
      items.push_back(LiteralPiece(c));
    }
    Piece out;
    int group_items = 0;
    for (const Piece& item : items) {
      out.icu += item.icu;
      out.min = AddWidth(out.min, item.min, kMaxRepeat - 1);
      out.max = AddWidth(out.max, item.max, kMaxRepeat);
      if (item.has_group) {
        ++group_items;
        out.has_group = true;
        out.group_certain = item.group_certain;
        out.group_min = item.group_min;
      }
    }
    if (group_items > 1) out.group_certain = false;  // More than one group: refused anyway.
    if (first) top_items_ = std::move(items);
    return out;
  }

  static Piece LiteralPiece(UChar32 c) {
    Piece p;
    p.icu = IcuLiteral(c);
    p.min = p.max = 1;
    p.set.emplace(c, c);
    return p;
  }
  static Piece SetPiece(const icu::UnicodeSet& set) {
    Piece p;
    p.icu = IcuSet(set);
    p.min = p.max = 1;
    p.set = set;
    return p;
  }

  // Whether the top-level items are "maximal runs of one set S of at least k code points": S
  // repeated (S S S{m,} or S{k,} or S+, greedy, the last one unbounded), optionally between \b
  // when S is the word set W, or between two \b when S is inside W. Leftmost-greedy matching of
  // such a pattern takes exactly the maximal runs of S that are at least k long (a \b at either
  // end of a maximal \w run always holds), or, for S inside W, the maximal runs of W that are
  // made of S and at least k long.
  void DetectRuns(const Flags& flags, TranslatedTokenPattern* out) const {
    std::vector<const Piece*> items;
    for (const Piece& item : top_items_) items.push_back(&item);
    bool front_boundary = false, back_boundary = false;
    if (!items.empty() && items.front()->word_boundary) {
      front_boundary = true;
      items.erase(items.begin());
    }
    if (!items.empty() && items.back()->word_boundary) {
      back_boundary = true;
      items.pop_back();
    }
    if (items.empty() || !items.front()->set.has_value()) return;
    const icu::UnicodeSet& set = *items.front()->set;
    uint64_t length = 0;
    for (size_t i = 0; i < items.size(); ++i) {
      const Piece& item = *items[i];
      if (!item.set.has_value() || *item.set != set || item.lazy) return;
      const bool last = i + 1 == items.size();
      if (last ? item.repeat_max != kMaxRepeat : item.repeat_min != item.repeat_max) return;
      length += item.repeat_min;
    }
    if (length == 0 || length > kMaxTokenPatternRepeat) return;
    const icu::UnicodeSet& word = Cat(flags).word;
    // S = W: a \b at either end of a maximal run of W always holds. S inside W between two \b: a
    // match starts after a non-word code point (or the text's start) and ends before one, and
    // holds only code points of S in between, so it is a whole maximal run of W made of S; and
    // every such run at least `length` long matches. With one \b and S inside W the matches are
    // not whole runs of W (\b[a-z]+ takes "ab" of "ab1"), so the ICU engine keeps those.
    const bool whole_word_runs = front_boundary && back_boundary && set != word;
    if ((front_boundary || back_boundary) && set != word &&
        !(whole_word_runs && word.containsAll(set))) {
      return;
    }
    out->run_min_length = static_cast<uint32_t>(length);
    for (int32_t r = 0; r < set.getRangeCount(); ++r) {
      out->run_ranges.emplace_back(set.getRangeStart(r), set.getRangeEnd(r));
    }
    if (whole_word_runs) {
      for (int32_t r = 0; r < word.getRangeCount(); ++r) {
        out->run_word_ranges.emplace_back(word.getRangeStart(r), word.getRangeEnd(r));
      }
    }
  }

  // After '(' (at `start`). Returns no piece for comments and global flags.
  absl::StatusOr<std::optional<Piece>> ParseGroup(Flags* flags, bool at_start, size_t start) {
    bool capture = true;
    Flags inner = *flags;
    enum { kGroup, kLookahead, kNegLookahead, kLookbehind, kNegLookbehind } kind = kGroup;
    if (Match('?')) {
      const UChar32 c = Peek();
      if (c < 0) return Error(pos_, "unexpected end of pattern");
      ++pos_;
      if (c == 'P') {
        if (Match('<')) {
          const size_t name_start = pos_;
          std::string name;
          bool closed = false;
          while (!AtEnd()) {
            const UChar32 d = p_[pos_++];
            if (d == '>') {
              closed = true;
              break;
            }
            AppendUtf8(d, &name);
          }
          if (!closed) return Error(name_start, "missing >, unterminated name");
          if (name.empty()) return Error(name_start, "missing group name");
          if (!IsIdentifier(name_start, pos_ - 1)) {
            return Error(name_start, absl::StrCat("bad character in group name '", name, "'"));
          }
          const auto [it, added] = group_names_.try_emplace(name, groups_ + 1);
          if (!added) {
            return Error(name_start,
                         absl::StrCat("redefinition of group name '", name, "' as group ",
                                      groups_ + 1, "; was group ", it->second));
          }
        } else if (Peek() == '=') {
          return Refuse(start, "a named backreference (?P=name)",
                        "backreferences are not supported");
        } else {
          if (AtEnd()) return Error(pos_, "unexpected end of pattern");
          std::string ext = "unknown extension ?P";
          AppendUtf8(p_[pos_], &ext);
          return Error(start + 1, ext);
        }
      } else if (c == ':') {
        capture = false;
      } else if (c == '#') {
        while (true) {
          if (AtEnd()) return Error(start, "missing ), unterminated comment");
          if (p_[pos_++] == ')') break;
        }
        return std::optional<Piece>();
      } else if (c == '=' || c == '!') {
        capture = false;
        kind = c == '=' ? kLookahead : kNegLookahead;
      } else if (c == '<') {
        const UChar32 d = Peek();
        if (d < 0) return Error(pos_, "unexpected end of pattern");
        ++pos_;
        if (d != '=' && d != '!') {
          std::string ext = "unknown extension ?<";
          AppendUtf8(d, &ext);
          return Error(start + 1, ext);
        }
        capture = false;
        kind = d == '=' ? kLookbehind : kNegLookbehind;
      } else if (c == '(') {
        return Refuse(start, "a conditional group (?(...)...)", "use an alternation");
      } else if (c == '>') {
        return Refuse(start, "an atomic group (?>...)", "use a non-capturing group (?:...)");
      } else if (c == '-' || IsFlagLetter(c)) {
        --pos_;
        auto global = ParseFlags(&inner, start);
        if (!global.ok()) return global.status();
        if (*global) {
          if (!at_start) {
            return Error(start, "global flags not at the start of the expression");
          }
          *flags = inner;
          return std::optional<Piece>();
        }
        capture = false;
      } else {
        std::string ext = "unknown extension ?";
        AppendUtf8(c, &ext);
        return Error(start + 1, ext);
      }
    }
    if (capture) ++groups_;
    auto body = ParseAlternation(&inner, /*top_level=*/false);
    if (!body.ok()) return body.status();
    if (!Match(')')) return Error(start, "missing ), unterminated subpattern");
    Piece out = *std::move(body);
    switch (kind) {
      case kGroup:
        if (capture) {
          out.icu = absl::StrCat("(", out.icu, ")");
          out.has_group = true;
          out.group_certain = true;
          out.group_min = out.min;
        } else {
          out.icu = absl::StrCat("(?:", out.icu, ")");
        }
        out.quantified = false;
        out.at = false;
        out.lookaround = false;
        return std::optional<Piece>(std::move(out));
      case kLookbehind:
      case kNegLookbehind:
        if (out.min != out.max) {
          // Python's message has no position.
          return absl::InvalidArgumentError(
              "token_pattern does not compile (Python re): look-behind requires fixed-width "
              "pattern");
        }
        [[fallthrough]];
      case kLookahead:
      case kNegLookahead: {
        const char* open = kind == kLookahead      ? "(?="
                           : kind == kNegLookahead ? "(?!"
                           : kind == kLookbehind   ? "(?<="
                                                   : "(?<!";
        out.icu = absl::StrCat(open, out.icu, ")");
        out.min = out.max = 0;
        out.lookaround = true;
        out.quantified = false;
        out.at = false;
        if (kind == kNegLookahead || kind == kNegLookbehind) out.group_certain = false;
        return std::optional<Piece>(std::move(out));
      }
    }
    return std::optional<Piece>();
  }

  static bool IsFlagLetter(UChar32 c) {
    return c == 'a' || c == 'i' || c == 'L' || c == 'm' || c == 's' || c == 'u' || c == 'x';
  }

  // Python 3.11 identifier (str.isidentifier, Unicode 14.0) over p_[begin, end).
  bool IsIdentifier(size_t begin, size_t end) const {
    for (size_t i = begin; i < end; ++i) {
      const UChar32 c = p_[i];
      const bool ok = i == begin ? (c == '_' || u_hasBinaryProperty(c, UCHAR_XID_START))
                                 : u_hasBinaryProperty(c, UCHAR_XID_CONTINUE);
      if (!ok || AssignedAfterUnicode14(c)) return false;
    }
    return end > begin;
  }

  // Python 3.11 str.isalpha() of one code point (Unicode 14.0), which picks re's error message.
  static bool IsAlpha(UChar32 c) { return u_isalpha(c) && !AssignedAfterUnicode14(c); }

  // Python's _parse_flags from the first flag letter (or '-'). Returns true for global flags
  // "(?flags)", false for scoped "(?flags-flags:". Updates *flags.
  absl::StatusOr<bool> ParseFlags(Flags* flags, size_t start) {
    bool add_ascii = false, add_unicode = false;
    auto apply = [&](UChar32 c, bool on) -> absl::Status {
      switch (c) {
        case 'i':
          return Refuse(start, "the flag (?i) (IGNORECASE)",
                        "Python's and ICU's case-insensitive matching differ; keep lowercase=true "
                        "(the default) and write lowercase patterns");
        case 'x':
          return Refuse(start, "the flag (?x) (VERBOSE)", "write the pattern without it");
        case 's':
          flags->dotall = on;
          return absl::OkStatus();
        case 'm':
          flags->multiline = on;
          return absl::OkStatus();
        case 'a':
          flags->ascii = true;
          return absl::OkStatus();
        case 'u':
          flags->ascii = false;
          return absl::OkStatus();
      }
      return absl::OkStatus();
    };
    UChar32 c = p_[pos_++];
    std::vector<UChar32> on;
    if (c != '-') {
      while (true) {
        if (c == 'L')
          return Error(pos_, "bad inline flags: cannot use 'L' flag with a str pattern");
        if (c == 'a') add_ascii = true;
        if (c == 'u') add_unicode = true;
        if (add_ascii && add_unicode) {
          return Error(pos_, "bad inline flags: flags 'a', 'u' and 'L' are incompatible");
        }
        on.push_back(c);
        if (AtEnd()) return Error(pos_, "missing -, : or )");
        c = p_[pos_++];
        if (c == ')' || c == '-' || c == ':') break;
        if (!IsFlagLetter(c)) {
          return Error(pos_ - 1, IsAlpha(c) ? "unknown flag" : "missing -, : or )");
        }
      }
    }
    if (c == ')') {
      for (const UChar32 f : on) {
        const absl::Status applied = apply(f, true);
        if (!applied.ok()) return applied;
      }
      if (add_ascii) seen_ascii_ = true;
      if (add_unicode) seen_unicode_ = true;
      return true;
    }
    std::vector<UChar32> off;
    if (c == '-') {
      if (AtEnd()) return Error(pos_, "missing flag");
      c = p_[pos_++];
      if (!IsFlagLetter(c)) return Error(pos_ - 1, IsAlpha(c) ? "unknown flag" : "missing flag");
      while (true) {
        if (c == 'a' || c == 'u' || c == 'L') {
          return Error(pos_, "bad inline flags: cannot turn off flags 'a', 'u' and 'L'");
        }
        off.push_back(c);
        if (AtEnd()) return Error(pos_, "missing :");
        c = p_[pos_++];
        if (c == ':') break;
        if (!IsFlagLetter(c)) return Error(pos_ - 1, IsAlpha(c) ? "unknown flag" : "missing :");
      }
    }
    for (const UChar32 f : on) {
      if (std::find(off.begin(), off.end(), f) != off.end()) {
        return Error(pos_ - 1, "bad inline flags: flag turned on and off");
      }
    }
    for (const UChar32 f : on) {
      const absl::Status applied = apply(f, true);
      if (!applied.ok()) return applied;
    }
    for (const UChar32 f : off) {
      const absl::Status applied = apply(f, false);
      if (!applied.ok()) return applied;
    }
    return false;
  }

  // After '\\' (at `start`), outside a class.
  absl::StatusOr<Piece> ParseEscape(const Flags& flags, size_t start) {
    if (AtEnd()) return Error(start, "bad escape (end of pattern)");
    const UChar32 c = p_[pos_++];
    const Categories& cat = Cat(flags);
    switch (c) {
      case 'A': {
        Piece at;
        at.at = true;
        at.icu = "\\A";
        return at;
      }
      case 'Z': {
        Piece at;
        at.at = true;
        at.icu = "\\z";
        return at;
      }
      case 'b':
      case 'B': {
        const std::string w = flags.ascii ? IcuSet(cat.word) : std::string(kIcuUnicodeWord);
        Piece at;
        at.at = true;
        at.word_boundary = c == 'b';
        at.icu = c == 'b' ? absl::StrCat("(?:(?<=", w, ")(?!", w, ")|(?<!", w, ")(?=", w, "))")
                          : absl::StrCat("(?:(?<=", w, ")(?=", w, ")|(?<!", w, ")(?!", w, "))");
        return at;
      }
      case 'w':
      case 'W':
      case 'd':
      case 'D':
      case 's':
      case 'S': {
        Piece piece;
        piece.min = piece.max = 1;
        piece.set.emplace();
        AddCategory(c, cat, &*piece.set);
        // The same sets in ICU's property syntax compile ~10x faster than explicit ranges.
        if (!flags.ascii && c == 'w') {
          piece.icu = kIcuUnicodeWord;
        } else if (!flags.ascii && c == 'W') {
          piece.icu = kIcuUnicodeNonWord;
        } else if (!flags.ascii && c == 'd') {
          piece.icu = kIcuUnicodeDigit;
        } else if (!flags.ascii && c == 'D') {
          piece.icu = kIcuUnicodeNonDigit;
        } else {
          piece.icu = IcuSet(*piece.set);
        }
        return piece;
      }
      default:
        break;
    }
    if (c >= '1' && c <= '9') {
      // Octal escape (three octal digits) or a group reference.
      if (IsDigit(Peek())) {
        if (IsOctal(c) && IsOctal(Peek()) && IsOctal(Peek(1))) {
          const UChar32 value = (c - '0') * 64 + (Peek() - '0') * 8 + (Peek(1) - '0');
          pos_ += 2;
          if (value > 0377) {
            return Error(start, absl::StrCat("octal escape value ", Source(start, pos_),
                                             " outside of range 0-0o377"));
          }
          return LiteralPiece(value);
        }
      }
      return Refuse(start, "a backreference (\\1 ... \\99)", "backreferences are not supported");
    }
    auto literal = LiteralEscape(c, start, /*in_class=*/false);
    if (!literal.ok()) return literal.status();
    return LiteralPiece(*literal);
  }

  // The code point of an escape that stands for one literal (after "\\c"), as both Python's
  // _escape and _class_escape read it, except the digits 1-9 outside classes (handled above).
  absl::StatusOr<UChar32> LiteralEscape(UChar32 c, size_t start, bool in_class) {
    switch (c) {
      case 'a':
        return 0x07;
      case 'f':
        return 0x0C;
      case 'n':
        return 0x0A;
      case 'r':
        return 0x0D;
      case 't':
        return 0x09;
      case 'v':
        return 0x0B;
      case '\\':
        return '\\';
      case 'x':
      case 'u':
      case 'U': {
        const int digits = c == 'x' ? 2 : (c == 'u' ? 4 : 8);
        uint32_t value = 0;
        int got = 0;
        while (got < digits && HexValue(Peek()) >= 0) {
          value = value * 16 + static_cast<uint32_t>(HexValue(Peek()));
          ++pos_;
          ++got;
        }
        if (got != digits) {
          std::string escape = "\\";
          for (size_t i = start + 1; i < pos_; ++i) AppendUtf8(p_[i], &escape);
          return Error(start, absl::StrCat("incomplete escape ", escape));
        }
        if (value > 0x10FFFF) {
          std::string escape = "\\";
          for (size_t i = start + 1; i < pos_; ++i) AppendUtf8(p_[i], &escape);
          return Error(start, absl::StrCat("bad escape ", escape));
        }
        return static_cast<UChar32>(value);
      }
      case 'N':
        return Refuse(start, "a named character \\N{...}",
                      "write the character itself or \\uXXXX / \\UXXXXXXXX");
      default:
        break;
    }
    if (IsOctal(c) && (c == '0' || in_class)) {
      UChar32 value = c - '0';
      for (int k = 0; k < 2 && IsOctal(Peek()); ++k) value = value * 8 + (p_[pos_++] - '0');
      if (value > 0377) {
        return Error(start, absl::StrCat("octal escape value ", Source(start, pos_),
                                         " outside of range 0-0o377"));
      }
      return value;
    }
    if (IsDigit(c) || IsAsciiLetter(c)) {
      std::string escape = "\\";
      AppendUtf8(c, &escape);
      return Error(start, absl::StrCat("bad escape ", escape));
    }
    return c;  // An escaped non-letter stands for itself.
  }

  static void AddCategory(UChar32 c, const Categories& cat, icu::UnicodeSet* set) {
    const icu::UnicodeSet& base = (c == 'w' || c == 'W')   ? cat.word
                                  : (c == 'd' || c == 'D') ? cat.digit
                                                           : cat.space;
    if (c == 'w' || c == 'd' || c == 's') {
      set->addAll(base);
    } else {
      icu::UnicodeSet complement(0, 0x10FFFF);  // (A copy of a frozen set stays frozen.)
      complement.removeAll(base);
      set->addAll(complement);
    }
  }

  // After '[' (at `start`): Python's set syntax, computed here.
  absl::StatusOr<icu::UnicodeSet> ParseClass(const Flags& flags, size_t start) {
    if (Peek() == '[') {
      return Refuse(pos_, "a character class starting with '[' (possible nested set)",
                    "Python reads it literally and warns it may change; escape it as \\[");
    }
    const bool negate = Match('^');
    icu::UnicodeSet set;
    bool any = false;
    const Categories& cat = Cat(flags);
    while (true) {
      if (AtEnd()) return Error(start, "unterminated character set");
      const size_t item_start = pos_;
      const UChar32 c = p_[pos_++];
      if (c == ']' && any) break;
      // code1: a literal (value >= 0) or a category (value < 0, category letter in `category`).
      UChar32 value = -1;
      UChar32 category = 0;
      if (c == '\\') {
        auto item = ClassEscape(item_start, &category);
        if (!item.ok()) return item.status();
        value = *item;
      } else {
        if (any && (c == '-' || c == '&' || c == '~' || c == '|') && Peek() == c) {
          return Refuse(item_start,
                        absl::StrCat("'", std::string(2, static_cast<char>(c)),
                                     "' inside a character class (possible set operation)"),
                        "Python reads it literally and warns it may change; escape the "
                        "characters");
        }
        if (c == '[' && Peek() == ':') {
          return Refuse(item_start, "a POSIX class [:name:]",
                        "Python has none (it reads the characters literally); use \\w, \\d, \\s "
                        "or explicit ranges");
        }
        value = c;
      }
      const size_t item_end = pos_;
      if (Match('-')) {
        if (AtEnd()) return Error(start, "unterminated character set");
        const size_t that_start = pos_;
        const UChar32 that = p_[pos_++];
        if (that == ']') {
          AddItem(value, category, cat, &set);
          set.add('-');
          any = true;
          break;
        }
        UChar32 value2 = -1;
        UChar32 category2 = 0;
        if (that == '\\') {
          auto item = ClassEscape(that_start, &category2);
          if (!item.ok()) return item.status();
          value2 = *item;
        } else {
          if (that == '-') {
            return Refuse(that_start - 1, "'--' inside a character class (possible set difference)",
                          "Python reads it literally and warns it may change; escape the "
                          "characters");
          }
          value2 = that;
        }
        if (category != 0 || category2 != 0 || value2 < value) {
          return Error(item_start,
                       absl::StrCat("bad character range ", Source(item_start, item_end), "-",
                                    Source(that_start, pos_)));
        }
        set.add(value, value2);
      } else {
        AddItem(value, category, cat, &set);
      }
      any = true;
    }
    if (negate) set.complement();
    return set;
  }

  static void AddItem(UChar32 value, UChar32 category, const Categories& cat,
                      icu::UnicodeSet* set) {
    if (category != 0) {
      AddCategory(category, cat, set);
    } else {
      set->add(value);
    }
  }

  // After '\\' (at `start`) inside a class: a literal, or a category (*category set, returns -1).
  absl::StatusOr<UChar32> ClassEscape(size_t start, UChar32* category) {
    if (AtEnd()) return Error(start, "unterminated character set");
    const UChar32 c = p_[pos_++];
    if (c == 'w' || c == 'W' || c == 'd' || c == 'D' || c == 's' || c == 'S') {
      *category = c;
      return -1;
    }
    if (c == 'b') return 0x08;
    return LiteralEscape(c, start, /*in_class=*/true);
  }

  const std::vector<UChar32> p_;
  size_t pos_ = 0;
  int groups_ = 0;
  size_t top_branches_ = 0;
  std::vector<Piece> top_items_;  // the items of the first top-level branch
  bool seen_ascii_ = false;
  bool seen_unicode_ = false;
  absl::flat_hash_map<std::string, int> group_names_;  // name -> group number
  const Categories& unicode_;
  const Categories& ascii_;
};

// UTF-8 -> UTF-16 with the UTF-8 byte offset of every UTF-16 index (and of the end).
void ToUtf16WithOffsets(std::string_view text, std::u16string* out,
                        std::vector<uint32_t>* offsets) {
  out->clear();
  offsets->clear();
  int32_t i = 0;
  const int32_t n = static_cast<int32_t>(text.size());
  const auto* bytes = reinterpret_cast<const uint8_t*>(text.data());
  while (i < n) {
    const uint32_t start = static_cast<uint32_t>(i);
    UChar32 c;
    U8_NEXT(bytes, i, n, c);
    if (c < 0) c = 0xFFFD;  // Unreachable for valid UTF-8.
    if (c <= 0xFFFF) {
      out->push_back(static_cast<char16_t>(c));
      offsets->push_back(start);
    } else {
      out->push_back(static_cast<char16_t>(U16_LEAD(c)));
      out->push_back(static_cast<char16_t>(U16_TRAIL(c)));
      offsets->push_back(start);
      offsets->push_back(start);  // Never a match boundary: ICU matches whole code points.
    }
  }
  offsets->push_back(static_cast<uint32_t>(n));
}

}  // namespace

absl::StatusOr<TranslatedTokenPattern> TranslatePythonPattern(std::string_view pattern) {
  const absl::Status valid = ValidateUtf8(pattern);
  if (!valid.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("token_pattern: ", valid.message()));
  }
  std::vector<UChar32> code_points;
  int32_t i = 0;
  const int32_t n = static_cast<int32_t>(pattern.size());
  const auto* bytes = reinterpret_cast<const uint8_t*>(pattern.data());
  while (i < n) {
    UChar32 c;
    U8_NEXT(bytes, i, n, c);
    code_points.push_back(c);
  }
  if (code_points.size() > kMaxTokenPatternLength) {
    return absl::InvalidArgumentError(absl::StrCat("token_pattern has ", code_points.size(),
                                                   " code points; at most ",
                                                   kMaxTokenPatternLength));
  }
  return Translator(std::move(code_points)).Run();
}

struct TokenPattern::Runs {
  icu::UnicodeSet set;     // frozen
  icu::UnicodeSet word;    // frozen; empty: plain runs of `set`
  bool word_runs = false;  // TranslatedTokenPattern::run_word_ranges is not empty
  // Per ASCII byte: kInSet, kInWord (the bounding set: `word`, or `set` for plain runs).
  static constexpr uint8_t kInSet = 1, kInWord = 2;
  std::array<uint8_t, 128> ascii{};
  std::array<uint8_t, 128> ascii_lower{};  // ascii of each byte's lowercase
  uint32_t min_length = 1;
  // Plain runs: `set`'s ASCII bytes, as themselves and as their lowercase (ascii_run_set).
  AsciiByteSet ascii_set, ascii_set_lower;
};

absl::StatusOr<std::shared_ptr<const TokenPattern>> TokenPattern::Compile(
    std::string_view python_pattern, bool use_runs) {
  auto translated = TranslatePythonPattern(python_pattern);
  if (!translated.ok()) return translated.status();
  UErrorCode status = U_ZERO_ERROR;
  UParseError parse_error;
  const icu::UnicodeString icu_text = icu::UnicodeString::fromUTF8(icu::StringPiece(
      translated->icu_pattern.data(), static_cast<int32_t>(translated->icu_pattern.size())));
  std::unique_ptr<icu::RegexPattern> regex(
      icu::RegexPattern::compile(icu_text, 0, parse_error, status));
  if (U_FAILURE(status) || regex == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "token_pattern could not be compiled by ICU after translation: ", u_errorName(status),
        " at offset ", parse_error.offset, " of the translated pattern"));
  }
  std::shared_ptr<TokenPattern> out(new TokenPattern());
  out->python_pattern_ = std::string(python_pattern);
  out->translated_ = *std::move(translated);
  out->regex_ = std::shared_ptr<const icu::RegexPattern>(std::move(regex));
  if (use_runs && out->translated_.run_min_length > 0) {
    auto runs = std::make_shared<Runs>();
    for (const auto& [lo, hi] : out->translated_.run_ranges) runs->set.add(lo, hi);
    runs->set.freeze();
    for (const auto& [lo, hi] : out->translated_.run_word_ranges) runs->word.add(lo, hi);
    runs->word.freeze();
    runs->word_runs = !out->translated_.run_word_ranges.empty();
    const icu::UnicodeSet& bound = runs->word_runs ? runs->word : runs->set;
    for (int c = 0; c < 128; ++c) {
      runs->ascii[c] =
          (runs->set.contains(c) ? Runs::kInSet : 0) | (bound.contains(c) ? Runs::kInWord : 0);
    }
    for (int c = 0; c < 128; ++c) {
      runs->ascii_lower[c] = runs->ascii[c >= 'A' && c <= 'Z' ? c + 32 : c];
    }
    runs->min_length = out->translated_.run_min_length;
    for (int c = 0; c < 128; ++c) {
      if (runs->ascii[c] & Runs::kInSet) runs->ascii_set.Add(static_cast<unsigned char>(c));
      if (runs->ascii_lower[c] & Runs::kInSet) {
        runs->ascii_set_lower.Add(static_cast<unsigned char>(c));
      }
    }
    out->runs_ = std::move(runs);
  }
  return std::shared_ptr<const TokenPattern>(std::move(out));
}

template <typename Emit>
void TokenPattern::ScanRuns(std::string_view text, const uint8_t* ascii, Emit&& emit) const {
  const Runs& runs = *runs_;
  const auto* bytes = reinterpret_cast<const uint8_t*>(text.data());
  const int32_t n = static_cast<int32_t>(text.size());
  int32_t i = 0, run_start = 0;
  uint32_t run_length = 0;  // code points in the current run, capped at min_length
  bool pure = true;         // every code point of the current run is in runs.set
  while (i < n) {
    const int32_t start = i;
    uint8_t in;
    if (bytes[i] < 0x80) {
      in = ascii[bytes[i]];
      ++i;
    } else {
      UChar32 c;
      U8_NEXT(bytes, i, n, c);
      if (c < 0) {
        in = 0;
      } else if (runs.word_runs) {
        in =
            (runs.set.contains(c) ? Runs::kInSet : 0) | (runs.word.contains(c) ? Runs::kInWord : 0);
      } else {
        in = runs.set.contains(c) ? Runs::kInSet | Runs::kInWord : 0;
      }
    }
    if (in & Runs::kInWord) {
      if (run_length == 0) {
        run_start = start;
        pure = true;
      }
      pure &= (in & Runs::kInSet) != 0;
      if (run_length < runs.min_length) ++run_length;
    } else if (run_length > 0) {
      if (pure && run_length >= runs.min_length) emit(run_start, start);
      run_length = 0;
    }
  }
  if (pure && run_length >= runs.min_length) emit(run_start, n);
}

void TokenPattern::FindRuns(std::string_view text,
                            absl::FunctionRef<void(std::string_view)> emit) const {
  ScanRuns(text, runs_->ascii.data(), [&](int32_t start, int32_t end) {
    emit(text.substr(static_cast<size_t>(start), static_cast<size_t>(end - start)));
  });
}

const AsciiByteSet* TokenPattern::ascii_run_set(bool lower_ascii) const {
  if (runs_ == nullptr || runs_->word_runs) return nullptr;
  return lower_ascii ? &runs_->ascii_set_lower : &runs_->ascii_set;
}

bool TokenPattern::RunSetContains(int32_t c) const { return runs_->set.contains(c); }

size_t TokenPattern::FindRunBounds(std::string_view text, bool lower_ascii, uint32_t* starts,
                                   uint32_t* ends) const {
  size_t count = 0;
  ScanRuns(text, lower_ascii ? runs_->ascii_lower.data() : runs_->ascii.data(),
           [&](int32_t start, int32_t end) {
             starts[count] = static_cast<uint32_t>(start);
             ends[count] = static_cast<uint32_t>(end);
             ++count;
           });
  return count;
}

void TokenPattern::FindTokens(std::string_view text, TokenMatcherCache* cache,
                              absl::FunctionRef<void(std::string_view)> emit) const {
  cache->status_ = absl::OkStatus();
  if (runs_ != nullptr) return FindRuns(text, emit);
  UErrorCode status = U_ZERO_ERROR;
  if (cache->pattern_ != regex_ || cache->matcher_ == nullptr) {
    cache->matcher_.reset();
    cache->pattern_ = regex_;
    cache->matcher_.reset(regex_->matcher(status));
    if (U_FAILURE(status) || cache->matcher_ == nullptr) {
      cache->matcher_.reset();
      cache->pattern_.reset();
      cache->status_ = absl::ResourceExhaustedError(
          absl::StrCat("token_pattern: ICU could not create a matcher: ", u_errorName(status)));
      return;
    }
    cache->matcher_->setStackLimit(kTokenPatternStackBytes, status);
    if (U_FAILURE(status)) {
      cache->matcher_.reset();
      cache->pattern_.reset();
      cache->status_ = absl::ResourceExhaustedError(absl::StrCat(
          "token_pattern: ICU could not set the backtrack stack limit: ", u_errorName(status)));
      return;
    }
  }
  ToUtf16WithOffsets(text, &cache->utf16_, &cache->utf8_offsets_);
  if (cache->text_ == nullptr) cache->text_ = std::make_unique<icu::UnicodeString>();
  cache->text_->setTo(false, reinterpret_cast<const UChar*>(cache->utf16_.data()),
                      static_cast<int32_t>(cache->utf16_.size()));
  icu::RegexMatcher& m = *cache->matcher_;
  m.reset(*cache->text_);  // Also restarts ICU's step count: the limit is per text.
  const int64_t step_limit = TokenPatternStepLimit(cache->utf16_.size());
  m.setTimeLimit(static_cast<int32_t>(step_limit / kIcuStepQuantum), status);
  if (U_FAILURE(status)) {
    cache->status_ = absl::ResourceExhaustedError(
        absl::StrCat("token_pattern: ICU could not set the step limit: ", u_errorName(status)));
    return;
  }
  const int group = translated_.has_group ? 1 : 0;
  const std::vector<uint32_t>& offsets = cache->utf8_offsets_;
  while (m.find(status)) {
    const int32_t begin = m.start(group, status);
    const int32_t end = m.end(group, status);
    if (U_FAILURE(status)) break;
    if (begin < 0 || end <= begin) continue;  // Excluded by the translation's checks.
    const uint32_t b = offsets[static_cast<size_t>(begin)];
    const uint32_t e = offsets[static_cast<size_t>(end)];
    emit(text.substr(b, e - b));
  }
  if (status == U_REGEX_TIME_OUT) {
    cache->status_ = absl::InvalidArgumentError(absl::StrCat(
        "token_pattern needed more than ", step_limit,
        " match steps (backtracking states, ICU's deterministic unit of regex work) on this text "
        "of ",
        cache->utf16_.size(), " UTF-16 code units, this server's limit (",
        kTokenPatternStepsPerText, " per text + ", kTokenPatternStepsPerCodeUnit,
        " per code unit): catastrophic backtracking, as in (a+)+b or (?:a|aa)+c on a long run of "
        "a's; rewrite the pattern so that each character can be matched in only one way"));
  } else if (status == U_REGEX_STACK_OVERFLOW) {
    cache->status_ = absl::InvalidArgumentError(absl::StrCat(
        "token_pattern needed more than ", kTokenPatternStackBytes,
        " bytes of backtracking state on this text, this server's limit: a single match spans too "
        "much text with pending alternatives; rewrite the pattern so that each character can be "
        "matched in only one way, or shorten the text"));
  } else if (U_FAILURE(status)) {
    cache->status_ = absl::ResourceExhaustedError(
        absl::StrCat("token_pattern matching stopped: ", u_errorName(status)));
  }
}

int64_t TokenPatternStepLimit(size_t utf16_length) {
  const int64_t max_units = std::numeric_limits<int32_t>::max();
  const int64_t length =
      static_cast<int64_t>(std::min<size_t>(utf16_length, static_cast<size_t>(max_units)));
  const int64_t steps = kTokenPatternStepsPerText + length * kTokenPatternStepsPerCodeUnit;
  const int64_t units = std::min(max_units, (steps + kIcuStepQuantum - 1) / kIcuStepQuantum);
  return units * kIcuStepQuantum;
}

TokenMatcherCache::TokenMatcherCache() = default;
TokenMatcherCache::~TokenMatcherCache() = default;
TokenMatcherCache::TokenMatcherCache(const TokenMatcherCache&) : TokenMatcherCache() {}
TokenMatcherCache& TokenMatcherCache::operator=(const TokenMatcherCache& other) {
  if (this != &other) *this = TokenMatcherCache();
  return *this;
}
TokenMatcherCache::TokenMatcherCache(TokenMatcherCache&&) noexcept = default;
TokenMatcherCache& TokenMatcherCache::operator=(TokenMatcherCache&&) noexcept = default;

}  // namespace maas::discriminative
