#include "services/discriminative/core/class_labels.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace maas::discriminative {

absl::string_view LabelTypeName(v1::LabelType type) {
  return type == v1::LABEL_TYPE_INT64 ? "int64 labels" : "string labels";
}

absl::Status ValidateLabelType(int type) {
  if (v1::LabelType_IsValid(type)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("label_type ", type,
                   " is not a LabelType this server knows; use LABEL_TYPE_STRING (0) or "
                   "LABEL_TYPE_INT64 (1)"));
}

absl::Status ValidateLabel(absl::string_view label, v1::LabelType type) {
  if (type != v1::LABEL_TYPE_INT64) return absl::OkStatus();
  const absl::string_view digits = absl::StripPrefix(label, "-");
  const bool decimal = !digits.empty() && std::all_of(digits.begin(), digits.end(), [](char c) {
    return absl::ascii_isdigit(static_cast<unsigned char>(c));
  });
  const std::string shown(label.substr(0, 100));
  int64_t value = 0;
  if (decimal && !absl::SimpleAtoi(label, &value)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", shown,
        "' is outside the int64 range -9223372036854775808 .. 9223372036854775807 of "
        "LABEL_TYPE_INT64 labels; use string labels (LABEL_TYPE_STRING) for such values"));
  }
  if (!decimal || absl::StrCat(value) != label) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", shown,
        "' is not an integer in canonical decimal, as LABEL_TYPE_INT64 labels must be (an "
        "optional '-' and digits without leading zeros, '+' or spaces: '7', not '07', '+7' or "
        "'7.0'; '0', not '-0'), so that one integer cannot be two classes; write ",
        decimal ? absl::StrCat("'", value, "'") : "the integer's decimal digits",
        ", or use string labels (LABEL_TYPE_STRING)"));
  }
  return absl::OkStatus();
}

bool ClassOrder::IntegerLess(absl::string_view a, absl::string_view b) {
  const bool a_negative = !a.empty() && a.front() == '-';
  const bool b_negative = !b.empty() && b.front() == '-';
  if (a_negative != b_negative) return a_negative;
  // Same sign: more digits is larger in magnitude; equal lengths compare as their digits do.
  const bool magnitude_less = a.size() != b.size() ? a.size() < b.size() : a < b;
  if (!a_negative) return magnitude_less;
  return a.size() != b.size() ? a.size() > b.size() : b < a;
}

void SortClasses(std::vector<std::string>* classes, v1::LabelType type) {
  if (type == v1::LABEL_TYPE_INT64) {
    const ClassOrder order(type);
    std::sort(classes->begin(), classes->end(),
              [&](const std::string& a, const std::string& b) { return order(a, b); });
  } else {
    std::sort(classes->begin(), classes->end());
  }
}

}  // namespace maas::discriminative
