// Class labels and their order (TrainConfig.label_type, ClassifierState.label_type). scikit-learn's
// classes_ is np.unique(y): strings sorted by code point, integers numerically. maas labels travel
// as strings; LABEL_TYPE_INT64 labels are int64 values in canonical decimal, which makes their
// numeric order a cheap comparison of the strings themselves (sign, then length, then bytes): no
// label is parsed to order or look up classes.
#ifndef MAAS_SERVICES_DISCRIMINATIVE_CORE_CLASS_LABELS_H_
#define MAAS_SERVICES_DISCRIMINATIVE_CORE_CLASS_LABELS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "maas/discriminative/v1/discriminative.pb.h"

namespace maas::discriminative {

// "string labels" / "int64 labels", for messages.
absl::string_view LabelTypeName(v1::LabelType type);

// INVALID_ARGUMENT when `type` is not a LabelType this server knows.
absl::Status ValidateLabelType(int type);

// OK when `label` (non-empty, valid UTF-8: checked by the caller) is a label of `type`: any string
// for LABEL_TYPE_STRING; for LABEL_TYPE_INT64 an int64 in canonical decimal. Otherwise
// INVALID_ARGUMENT saying what is wrong and how to write it (the caller prefixes where it is).
absl::Status ValidateLabel(absl::string_view label, v1::LabelType type);

// The class order of `type` over valid labels: a strict weak order, code point order for strings,
// numeric order for canonical int64 labels.
class ClassOrder {
 public:
  explicit ClassOrder(v1::LabelType type) : integers_(type == v1::LABEL_TYPE_INT64) {}
  bool operator()(absl::string_view a, absl::string_view b) const {
    return integers_ ? IntegerLess(a, b) : a < b;
  }

 private:
  static bool IntegerLess(absl::string_view a, absl::string_view b);
  bool integers_;
};

// Sorts valid labels of `type` into class order.
void SortClasses(std::vector<std::string>* classes, v1::LabelType type);

}  // namespace maas::discriminative

#endif  // MAAS_SERVICES_DISCRIMINATIVE_CORE_CLASS_LABELS_H_
