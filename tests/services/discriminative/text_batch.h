// Test helper: a TextBatch of texts and their labels.
#ifndef MAAS_TESTS_SERVICES_DISCRIMINATIVE_TEXT_BATCH_H_
#define MAAS_TESTS_SERVICES_DISCRIMINATIVE_TEXT_BATCH_H_

#include <string>
#include <vector>

#include "maas/discriminative/v1/discriminative.pb.h"

namespace maas::discriminative::testing {

inline v1::TextBatch Batch(const std::vector<std::string>& texts,
                           const std::vector<std::string>& labels) {
  v1::TextBatch batch;
  for (size_t i = 0; i < texts.size(); ++i) {
    v1::LabeledText* example = batch.add_examples();
    example->set_text(texts[i]);
    example->set_label(labels[i]);
  }
  return batch;
}

}  // namespace maas::discriminative::testing

#endif  // MAAS_TESTS_SERVICES_DISCRIMINATIVE_TEXT_BATCH_H_
