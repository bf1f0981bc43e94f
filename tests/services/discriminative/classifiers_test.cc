// ComplementNB, BernoulliNB and the classifier registry, each alone, on the reference notes'
// known-answer vectors (sklearn-text-nb-spec.md appendix E.3, E.4).
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "services/discriminative/core/bernoulli_nb.h"
#include "services/discriminative/core/classifier.h"
#include "services/discriminative/core/complement_nb.h"
#include "services/discriminative/core/count_vectorizer.h"
#include "services/discriminative/core/discrete_nb.h"
#include "services/discriminative/core/multinomial_nb.h"
#include "services/discriminative/core/numpy_compat.h"

namespace maas::discriminative {
namespace {

using Strings = std::vector<std::string>;
using Doubles = std::vector<double>;

const Strings kCorpus = {"This is the first document.", "This document is the second document.",
                         "And this is the third one.", "Is this the first document?"};
const Strings kTest = {"this document is new", "first second third", "nothing known"};
const Strings kLabels = {"q", "p", "q", "r"};

void CheckClose(const Doubles& actual, const std::vector<const char*>& expected) {
  REQUIRE(actual.size() == expected.size());
  for (size_t i = 0; i < actual.size(); ++i) {
    INFO("index " << i);
    CHECK(actual[i] == Approx(std::strtod(expected[i], nullptr)).epsilon(1e-14).margin(0));
  }
}

struct Classic {
  CountVectorizer::FitResult fit;
  std::vector<SparseVector> test;
};

Classic ClassicCounts() {
  auto fit = CountVectorizer::FitTransform(kCorpus, {});
  REQUIRE(fit.ok());
  Classic c{*std::move(fit), {}};
  for (const std::string& t : kTest) c.test.push_back(c.fit.vectorizer.Transform(t));
  return c;
}

Doubles Row(const DiscreteNb& nb, size_t c) {
  const size_t f = nb.num_features();
  const std::vector<double> flp = nb.feature_log_prob();
  return Doubles(flp.begin() + c * f, flp.begin() + (c + 1) * f);
}

TEST_CASE("ComplementNB on the classic corpus (spec E.3)") {
  const Classic c = ClassicCounts();
  auto nb = ComplementNb::Fit(c.fit.rows, 9, kLabels, {}, NbOptions(), /*norm=*/false);
  REQUIRE(nb.ok());
  CheckClose(Row(*nb, 0), {"2.5257286443082556", "2.120263536200091", "2.120263536200091",
                           "1.8325814637483102", "2.5257286443082556", "3.2188758248682006",
                           "1.8325814637483102", "2.5257286443082556", "1.8325814637483102"});
  CheckClose(nb->Predict(c.test[0]).joint_log_likelihood,
             {"5.785426463696711", "5.403677882205863", "5.6154065307047745"});
  CheckClose(nb->Predict(c.test[1]).log_probability,
             {"-0.9599814396988879", "-1.2239469855333525", "-1.130001372690824"});
  CHECK(nb->Predict(c.test[2]).joint_log_likelihood == Doubles{0, 0, 0});
  CHECK(nb->Predict(c.test[0]).predicted == 0);

  auto normed = ComplementNb::Fit(c.fit.rows, 9, kLabels, {}, NbOptions(), /*norm=*/true);
  REQUIRE(normed.ok());
  CheckClose(Row(*normed, 1),
             {"0.14338336444752703", "0.07703179112212033", "0.11020757778482368",
              "0.09080098665521716", "0.14338336444752703", "0.11020757778482368",
              "0.09080098665521716", "0.14338336444752703", "0.09080098665521716"});
  CheckClose(normed->Predict(c.test[0]).joint_log_likelihood,
             {"0.2817440625564924", "0.25863376443255465", "0.27645819390018"});
  // A single class: the prior enters (spec E.4).
  std::vector<SparseVector> x(3);
  x[0] = {{0, 2}, {1, 2}};
  x[1] = {{1}, {3}};
  x[2] = {{0, 1, 2}, {1, 1, 1}};
  auto single = ComplementNb::Fit(x, 3, {"5", "5", "5"}, {}, NbOptions(), false);
  REQUIRE(single.ok());
  CheckClose(single->Predict(x[0]).joint_log_likelihood, {"3.295836866004329"});
}

// 30 rows over 3 classes ('a', 'b', 'c' in turn) x kWideFeatures: row i has features i, i + 7, ...
// with counts 1-5. Each C x F matrix is 96 KiB, far above the rest of a model.
constexpr size_t kWideFeatures = 4096;
constexpr int64_t kWideMatrix = 3 * kWideFeatures * sizeof(double);
struct WideRows {
  std::vector<SparseVector> rows = std::vector<SparseVector>(30);
  Strings labels;
  WideRows() {
    for (size_t i = 0; i < rows.size(); ++i) {
      for (uint32_t j = static_cast<uint32_t>(i); j < kWideFeatures; j += 7) {
        rows[i].indices.push_back(j);
        rows[i].values.push_back(static_cast<double>(1 + (i + j) % 5));
      }
      labels.push_back(std::string(1, static_cast<char>('a' + i % 3)));
    }
  }
};

TEST_CASE("MultinomialNB and ComplementNB hold feature_log_prob once: as the weight table") {
  constexpr size_t kFeatures = kWideFeatures;
  constexpr int64_t matrix = kWideMatrix;
  const WideRows wide;
  // prior: whether the class prior enters the joint log-likelihood (MultinomialNB; ComplementNB
  // only with a single class).
  const auto check = [&](const DiscreteNb& nb, bool prior) {
    // feature_count_ and the feature-major weight table; not a third C x F copy.
    CHECK(nb.MemoryBytes() < 2 * matrix + matrix / 4);
    // Transposed back, bit for bit: the state's matrix, and the joint log-likelihood of a text
    // of one feature with count 1 (the class prior plus that feature's weight).
    const Doubles flp = nb.feature_log_prob();
    v1::ClassifierState state;
    nb.ToState(&state);
    REQUIRE(state.feature_log_prob().values_size() == static_cast<int>(flp.size()));
    CHECK(Doubles(state.feature_log_prob().values().begin(),
                  state.feature_log_prob().values().end()) == flp);
    for (const uint32_t j : {0u, 1u, 2049u, 4095u}) {
      const Doubles jll = nb.Predict(SparseVector{{j}, {1.0}}).joint_log_likelihood;
      for (size_t c = 0; c < 3; ++c) {
        INFO("feature " << j << " class " << c);
        const double weight = flp[c * kFeatures + j];
        CHECK(jll[c] == (prior ? weight + nb.class_log_prior()[c] : weight));
      }
    }
  };
  auto multinomial =
      MultinomialNb::Fit(wide.rows, kFeatures, wide.labels, {}, MultinomialNbOptions());
  REQUIRE(multinomial.ok());
  check(*multinomial, /*prior=*/true);
  auto complement =
      ComplementNb::Fit(wide.rows, kFeatures, wide.labels, {}, NbOptions(), /*norm=*/false);
  REQUIRE(complement.ok());
  check(*complement, /*prior=*/false);
}

TEST_CASE("BernoulliNB holds feature_log_prob only when its counts do not give it back") {
  // Its weight table holds flp - log(1 - exp(flp)), from which flp cannot be read back; the
  // counts give it back bit for bit (the same operations), so a fitted model, or one loaded
  // from such a state, frees it (binarized WideRows).
  constexpr size_t kFeatures = kWideFeatures;
  constexpr int64_t matrix = kWideMatrix;
  const WideRows wide;
  NbOptions options;
  options.alpha = 0.5;
  auto fitted = BernoulliNb::Fit(wide.rows, kFeatures, wide.labels, {}, options, 0.0);
  REQUIRE(fitted.ok());
  // feature_count_ and the feature-major weight table; not a third C x F copy.
  CHECK(fitted->MemoryBytes() < 2 * matrix + matrix / 4);
  v1::ClassifierState state;
  fitted->ToState(&state);
  REQUIRE(state.feature_log_prob().values_size() == static_cast<int>(3 * kFeatures));
  // Loaded back: the same, and the same state written again, bit for bit.
  auto loaded = ClassifierFromState(state, kFeatures);
  REQUIRE(loaded.ok());
  CHECK((*loaded)->MemoryBytes() < 2 * matrix + matrix / 4);
  v1::ClassifierState again;
  (*loaded)->ToState(&again);
  CHECK(again.SerializeAsString() == state.SerializeAsString());
  // A stored feature_log_prob that its counts do not give back (an imported model's, from numpy's
  // log, may differ in a last bit; here one value a bit lower) is kept and served as given.
  const int at = static_cast<int>(kFeatures) + 100;  // class 1, feature 100
  const double given = std::nextafter(state.feature_log_prob().values(at), -HUGE_VAL);
  v1::ClassifierState imported = state;
  imported.mutable_feature_log_prob()->set_values(at, given);
  auto kept = ClassifierFromState(imported, kFeatures);
  REQUIRE(kept.ok());
  CHECK((*kept)->MemoryBytes() > 3 * matrix);
  v1::ClassifierState written;
  (*kept)->ToState(&written);
  CHECK(written.SerializeAsString() == imported.SerializeAsString());
  // Its weight (flp - log(1 - exp(flp))) is the given value's.
  CHECK((*kept)->FeatureContribution(1, 100, 1.0) != (*loaded)->FeatureContribution(1, 100, 1.0));
  CHECK((*kept)->FeatureContribution(0, 100, 1.0) == (*loaded)->FeatureContribution(0, 100, 1.0));
}

TEST_CASE("Features without counts in a class take the logs every feature would") {
  // Rows of 5 features out of 4096: nearly all of a class's features have no counts, and their
  // logs are taken once per table (LogOfMostlyOne, BernoulliNb::BuildTable). Every value must be
  // std::log's of that feature's own smoothed count, bit for bit, as before.
  constexpr size_t kFeatures = 4096;
  std::vector<SparseVector> rows(12);
  Strings labels;
  for (size_t i = 0; i < rows.size(); ++i) {
    for (uint32_t t = 0; t < 5; ++t) {
      rows[i].indices.push_back(static_cast<uint32_t>(i * 7 + t * 811));
      rows[i].values.push_back(0.5 + t);
    }
    labels.push_back(std::string(1, static_cast<char>('a' + i % 3)));
  }
  for (const double alpha : {1.0, 0.01, 1e-12}) {
    INFO("alpha " << alpha);
    NbOptions options;
    options.alpha = alpha;
    MultinomialNbOptions multinomial_options;
    multinomial_options.alpha = alpha;
    auto multinomial = MultinomialNb::Fit(rows, kFeatures, labels, {}, multinomial_options);
    auto bernoulli = BernoulliNb::Fit(rows, kFeatures, labels, {}, options, 0.0);
    REQUIRE(multinomial.ok());
    REQUIRE(bernoulli.ok());
    size_t differ = 0;
    for (size_t c = 0; c < 3; ++c) {
      const double* fc = multinomial->feature_count().data() + c * kFeatures;
      Doubles smoothed(kFeatures);
      for (size_t j = 0; j < kFeatures; ++j) smoothed[j] = fc[j] + alpha;
      const double log_total = std::log(NumpySum(smoothed.data(), kFeatures));
      const double* bc = bernoulli->feature_count().data() + c * kFeatures;
      const double log_documents = std::log(bernoulli->class_count()[c] + alpha * 2);
      const Doubles m = Row(*multinomial, c), b = Row(*bernoulli, c);
      Doubles neg(kFeatures);
      for (size_t j = 0; j < kFeatures; ++j) {
        differ += m[j] != std::log(smoothed[j]) - log_total;
        differ += b[j] != std::log(bc[j] + alpha) - log_documents;
        neg[j] = std::log(1 - std::exp(b[j]));
      }
      // A text without features: the class prior plus the sum of log(1 - p).
      CHECK(bernoulli->Predict(SparseVector{}).joint_log_likelihood[c] ==
            bernoulli->class_log_prior()[c] + NumpySum(neg.data(), kFeatures));
    }
    for (const bool norm : {false, true}) {
      auto complement = ComplementNb::Fit(rows, kFeatures, labels, {}, options, norm);
      REQUIRE(complement.ok());
      const Doubles& fc = complement->feature_count();
      for (size_t c = 0; c < 3; ++c) {
        Doubles comp(kFeatures), logged(kFeatures);
        for (size_t j = 0; j < kFeatures; ++j) {
          const double all = (fc[j] + fc[kFeatures + j]) + fc[2 * kFeatures + j];
          comp[j] = (all + alpha) - fc[c * kFeatures + j];
        }
        const double total = NumpySum(comp.data(), kFeatures);
        for (size_t j = 0; j < kFeatures; ++j) logged[j] = std::log(comp[j] / total);
        const double sum = NumpySum(logged.data(), kFeatures);
        const Doubles flp = Row(*complement, c);
        for (size_t j = 0; j < kFeatures; ++j) {
          differ += flp[j] != (norm ? logged[j] / sum : -logged[j]);
        }
      }
    }
    CHECK(differ == 0);
  }
}

TEST_CASE("BernoulliNB on the classic corpus (spec E.3)") {
  const Classic c = ClassicCounts();
  auto nb = BernoulliNb::Fit(c.fit.rows, 9, kLabels, {}, NbOptions(), 0.0);
  REQUIRE(nb.ok());
  CHECK(Doubles(nb->feature_count().begin(), nb->feature_count().begin() + 9) ==
        Doubles{0, 1, 0, 1, 0, 1, 1, 0, 1});  // binarized
  CheckClose(Row(*nb, 1), {"-0.6931471805599453", "-0.6931471805599453", "-0.6931471805599453",
                           "-0.2876820724517808", "-0.6931471805599453", "-1.3862943611198906",
                           "-0.2876820724517808", "-0.6931471805599453", "-0.2876820724517808"});
  CheckClose(nb->Predict(c.test[0]).joint_log_likelihood,
             {"-6.4217746952132595", "-6.408223661834905", "-6.4217746952132595"});
  CheckClose(nb->Predict(c.test[2]).joint_log_likelihood,
             {"-8.501216236893095", "-8.605448239171125", "-8.501216236893095"});
  CHECK(nb->Predict(c.test[0]).predicted == 1);
  CHECK(nb->Predict(c.test[1]).predicted == 0);
  // binarize=1.0 keeps only values > 1 (spec 6.2).
  std::vector<SparseVector> x(3);
  x[0] = {{0, 2}, {1, 2}};
  x[1] = {{1}, {3}};
  x[2] = {{0, 1, 2}, {1, 1, 1}};
  auto strict = BernoulliNb::Fit(x, 3, {"a", "a", "a"}, {}, NbOptions(), 1.0);
  REQUIRE(strict.ok());
  CHECK(strict->feature_count() == Doubles{0, 1, 1});
}

TEST_CASE("BernoulliNB with alpha 0 refuses a class without documents naming it") {
  // Class 'b' has one document of weight 0: p = 0 / 0 for each of its features, binarized or not
  // (scikit-learn's feature_log_prob_ row is NaN, and so is every text's probability).
  std::vector<SparseVector> x(2);
  x[0] = {{0}, {1}};
  x[1] = {{1}, {1}};
  NbOptions options;
  options.alpha = 0.0;
  for (const std::optional<double> binarize :
       {std::optional<double>(0.0), std::optional<double>()}) {
    INFO((binarize.has_value() ? "binarize 0.0" : "binarize disabled"));
    const absl::Status status =
        BernoulliNb::Fit(x, 2, {"a", "b"}, {1.0, 0.0}, options, binarize).status();
    REQUIRE(status.code() == absl::StatusCode::kInvalidArgument);
    const std::string message(status.message());
    CHECK_THAT(message, Catch::Contains("class 'b' has no documents"));
    CHECK_THAT(message, Catch::Contains("use alpha > 0"));
  }
  // A positive alpha, or force_alpha false (alpha 1e-10), fits it.
  options.force_alpha = false;
  CHECK(BernoulliNb::Fit(x, 2, {"a", "b"}, {1.0, 0.0}, options, 0.0).ok());
}

TEST_CASE("BernoulliNB without binarize refuses features that are not 0 or 1, saying why") {
  // Counts of 2 and 3 in one class of two documents: probability (5 + 1) / (2 + 2) > 1, so
  // log(1 - p) would be NaN (scikit-learn's probabilities are NaN there).
  std::vector<SparseVector> x(2);
  x[0] = {{0, 1}, {2, 1}};
  x[1] = {{0}, {3}};
  auto counts = BernoulliNb::Fit(x, 2, {"a", "a"}, {}, NbOptions(), std::nullopt);
  REQUIRE(counts.status().code() == absl::StatusCode::kInvalidArgument);
  const std::string message(counts.status().message());
  CHECK_THAT(message, Catch::Contains("binarize disabled: feature 0 of class 'a'"));
  CHECK_THAT(message, Catch::Contains("log(1 - p) is NaN"));
  CHECK_THAT(message, Catch::Contains("binary=true"));
  // A negative value (the hashing vectorizer's alternate_sign) likewise.
  x[1] = {{1}, {-1}};
  CHECK(BernoulliNb::Fit(x, 2, {"a", "b"}, {}, NbOptions(), std::nullopt).status().code() ==
        absl::StatusCode::kInvalidArgument);
  // A count of exactly -alpha (alpha 1) gives p = 0, log-probability -inf: refused, named as such
  // (the message had blamed alpha: "with alpha > 0 ... every probability is > 0").
  x[0] = {{0}, {-1}};
  x[1] = {{1}, {1}};
  const absl::Status zero =
      BernoulliNb::Fit(x, 2, {"a", "b"}, {}, NbOptions(), std::nullopt).status();
  CHECK(zero.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(zero.message()),
             Catch::Contains("feature 0 of class 'a' has a negative count of exactly -alpha"));
  // Binary features fit.
  x[0] = {{0, 1}, {1, 1}};
  x[1] = {{0}, {1}};
  CHECK(BernoulliNb::Fit(x, 2, {"a", "b"}, {}, NbOptions(), std::nullopt).ok());
}

TEST_CASE("BernoulliNB without binarize loads back the negative counts its fit accepts") {
  // The hashing vectorizer's alternate_sign (with norm l1) gives negative values; with binarize
  // disabled BernoulliNB counts them as they are (scikit-learn too): a feature count may be < 0
  // while every log-probability log(count + alpha) - log(class count + 2 alpha) is finite and < 0.
  std::vector<SparseVector> x(3);
  x[0] = {{0, 1}, {0.5, -0.25}};
  x[1] = {{1, 2}, {-0.125, 0.75}};
  x[2] = {{0}, {1}};
  NbOptions options;
  options.alpha = 0.5;
  auto nb = BernoulliNb::Fit(x, 3, {"a", "a", "b"}, {}, options, std::nullopt);
  INFO(nb.status().ToString());
  REQUIRE(nb.ok());
  REQUIRE(nb->feature_count()[1] == -0.375);
  v1::ClassifierState state;
  nb->ToState(&state);
  auto loaded = ClassifierFromState(state, 3);
  INFO(loaded.status().ToString());
  REQUIRE(loaded.ok());
  v1::ClassifierState again;
  (*loaded)->ToState(&again);
  CHECK(again.SerializeAsString() == state.SerializeAsString());
  // Not infinite or NaN counts, though.
  state.mutable_feature_count()->set_values(1, -HUGE_VAL);
  CHECK(ClassifierFromState(state, 3).status().code() == absl::StatusCode::kInvalidArgument);
  // With binarize (counts of 0 / 1 times weights >= 0), MultinomialNB and ComplementNB (which
  // refuse negative X, as scikit-learn does) a negative count is still refused.
  for (const char* kind : {"bernoulli_nb", "multinomial_nb", "complement_nb"}) {
    CAPTURE(kind);
    v1::ClassifierState other = state;
    other.mutable_feature_count()->set_values(1, -0.375);
    v1::ClassifierConfig config;
    if (std::string(kind) == "bernoulli_nb") {
      config.mutable_bernoulli_nb()->set_alpha(0.5);
    } else if (std::string(kind) == "multinomial_nb") {
      config.mutable_multinomial_nb()->set_alpha(0.5);
    } else {
      config.mutable_complement_nb()->set_alpha(0.5);
    }
    *other.mutable_config() = config;
    const absl::Status status = ClassifierFromState(other, 3).status();
    CHECK(status.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(status.message()), Catch::Contains("feature_count value 1"));
  }
}

TEST_CASE("The classifier registry maps config kinds to implementations") {
  v1::ClassifierConfig config;
  CHECK(ClassifierKindName(config) == "multinomial_nb");
  const Classic c = ClassicCounts();
  for (const char* name : {"multinomial_nb", "complement_nb", "bernoulli_nb"}) {
    const ClassifierKind* kind = FindClassifierKind(name);
    REQUIRE(kind != nullptr);
    v1::ClassifierConfig cfg;
    const auto* field = cfg.GetDescriptor()->FindFieldByName(name);
    cfg.GetReflection()->MutableMessage(&cfg, field);
    CHECK(ClassifierKindName(cfg) == name);
    auto fitted = FitClassifier(cfg, v1::LABEL_TYPE_STRING, c.fit.rows, 9, kLabels, {});
    REQUIRE(fitted.ok());
    v1::ClassifierState state;
    (*fitted)->ToState(&state);
    *state.mutable_config() = cfg;
    auto back = ClassifierFromState(state, 9);
    REQUIRE(back.ok());
    for (const SparseVector& row : c.test) {
      CHECK((*back)->Predict(row).joint_log_likelihood ==
            (*fitted)->Predict(row).joint_log_likelihood);
    }
    // Weights all 0 are refused by every kind (issue 5 item 2).
    CHECK(FitClassifier(cfg, v1::LABEL_TYPE_STRING, c.fit.rows, 9, kLabels, {0, 0, 0, 0})
              .status()
              .code() == absl::StatusCode::kInvalidArgument);
  }
  CHECK(FindClassifierKind("svm") == nullptr);
  config.mutable_bernoulli_nb()->set_binarize(-1);
  CHECK(ValidateClassifierConfig(config).code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("The table checks find a bad value at any place of any length") {
  // AllWithin takes 4 values a step, then the rest one by one: a bad value in a step's either
  // half, in the rest, first or last is found, and one in range everywhere is not.
  const double inf = std::numeric_limits<double>::infinity();
  const double max = std::numeric_limits<double>::max();
  for (size_t n = 1; n <= 13; ++n) {
    const Doubles good(n, -0.5);
    CHECK(AllWithin(good, -1.0, 0.0));
    CHECK(AllLogProbabilities(good, false, false));
    CHECK(CheckLogProbabilities(good, "t", false, false).ok());
    for (size_t at = 0; at < n; ++at) {
      for (const double bad : {std::nan(""), 0.25, -2.0, inf, -inf}) {
        Doubles values = good;
        values[at] = bad;
        INFO("n " << n << ", at " << at << ", value " << bad);
        CHECK_FALSE(AllWithin(values, -1.0, 0.0));
        const bool log_probability = !std::isnan(bad) && bad <= 0.0 && bad >= -max;
        CHECK(AllLogProbabilities(values, false, false) == log_probability);
        CHECK(AllLogProbabilities(values, true, true) == (!std::isnan(bad) && bad != inf));
        const absl::Status status = CheckLogProbabilities(values, "t", false, false);
        CHECK(status.ok() == log_probability);
        if (!status.ok()) {
          CHECK_THAT(std::string(status.message()),
                     Catch::Contains("t value " + std::to_string(at)));
        }
      }
    }
  }
  CHECK(AllWithin(Doubles{}, 0.0, 0.0));
}

}  // namespace
}  // namespace maas::discriminative
