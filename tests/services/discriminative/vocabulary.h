// Test helper: a fitted CountVectorizer's terms in feature order (scikit-learn's
// get_feature_names_out()), copied into strings for comparisons (the vectorizer holds them once,
// in its index's arena).
#ifndef MAAS_TESTS_SERVICES_DISCRIMINATIVE_VOCABULARY_H_
#define MAAS_TESTS_SERVICES_DISCRIMINATIVE_VOCABULARY_H_

#include <string>
#include <vector>

#include "services/discriminative/core/count_vectorizer.h"

namespace maas::discriminative::testing {

inline std::vector<std::string> Vocabulary(const CountVectorizer& vectorizer) {
  std::vector<std::string> terms;
  terms.reserve(vectorizer.num_features());
  for (uint32_t id = 0; id < vectorizer.num_features(); ++id) {
    terms.emplace_back(vectorizer.term(id));
  }
  return terms;
}

}  // namespace maas::discriminative::testing

#endif  // MAAS_TESTS_SERVICES_DISCRIMINATIVE_VOCABULARY_H_
