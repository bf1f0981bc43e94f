#include "services/discriminative/core/multinomial_nb.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "services/discriminative/core/count_vectorizer.h"
#include "services/discriminative/core/numpy_compat.h"

namespace maas::discriminative {
namespace {

using Strings = std::vector<std::string>;
using Doubles = std::vector<double>;

const Strings kCorpus = {"This is the first document.", "This document is the second document.",
                         "And this is the third one.", "Is this the first document?"};
const Strings kTest = {"this document is new", "first second third", "nothing known"};
const Strings kLabels = {"q", "p", "q", "r"};

// Known-answer vectors: scikit-learn on this corpus (reference notes, appendix E.3), computed with
// glibc log/exp; 1e-14 relative allows for another libm's last bit.
void CheckClose(const Doubles& actual, const Doubles& expected) {
  REQUIRE(actual.size() == expected.size());
  for (size_t i = 0; i < actual.size(); ++i) {
    INFO("index " << i);
    CHECK(actual[i] == Approx(expected[i]).epsilon(1e-14).margin(0));
  }
}

struct Fitted {
  CountVectorizer vectorizer;
  MultinomialNb nb;
};

Fitted FitClassic(const MultinomialNbOptions& options, const Doubles& weights = {}) {
  auto fit = CountVectorizer::FitTransform(kCorpus, {});
  REQUIRE(fit.ok());
  auto nb =
      MultinomialNb::Fit(fit->rows, fit->vectorizer.num_features(), kLabels, weights, options);
  REQUIRE(nb.ok());
  return {std::move(fit->vectorizer), *std::move(nb)};
}

TEST_CASE("MultinomialNB(alpha=1.0) known-answer vectors (spec E.3)") {
  const Fitted f = FitClassic({});
  const MultinomialNb& nb = f.nb;
  CHECK(nb.classes() == Strings{"p", "q", "r"});
  CHECK(nb.class_count() == Doubles{1, 2, 1});
  CHECK(nb.feature_count() == Doubles{0, 2, 0, 1, 0, 1, 1, 0, 1,  //
                                      1, 1, 1, 2, 1, 0, 2, 1, 2,  //
                                      0, 1, 1, 1, 0, 0, 1, 0, 1});
  CheckClose(nb.class_log_prior(), {-1.3862943611198906, -0.6931471805599453, -1.3862943611198906});
  CheckClose(nb.feature_log_prob(),
             {-2.70805020110221,   -1.6094379124341003, -2.70805020110221,   -2.0149030205422647,
              -2.70805020110221,   -2.0149030205422647, -2.0149030205422647, -2.70805020110221,
              -2.0149030205422647, -2.3025850929940455, -2.3025850929940455, -2.3025850929940455,
              -1.897119984885881,  -2.3025850929940455, -2.995732273553991,  -1.897119984885881,
              -2.3025850929940455, -1.897119984885881,  -2.6390573296152584, -1.945910149055313,
              -1.945910149055313,  -1.945910149055313,  -2.6390573296152584, -2.6390573296152584,
              -1.945910149055313,  -2.6390573296152584, -1.945910149055313});
  const Doubles jll[] = {{-7.025538314638521, -6.789972243325753, -7.224024808285829},
                         {-8.817297783866575, -8.294049640102028, -8.61031916940572},
                         {-1.3862943611198906, -0.6931471805599453, -1.3862943611198906}};
  const Doubles log_proba[] = {{-1.1267447814892257, -0.8911787101764581, -1.3252312751365345},
                               {-1.3654425320004266, -0.8421943882358791, -1.1584639175395717},
                               {-1.3862943611198906, -0.6931471805599453, -1.3862943611198906}};
  const Doubles proba[] = {{0.3240865136192512, 0.41017199379936514, 0.26574149258138346},
                           {0.25526768686915674, 0.43076422159170186, 0.31396809153914157},
                           {0.25, 0.5, 0.25}};
  for (size_t i = 0; i < kTest.size(); ++i) {
    INFO("test text " << i);
    const ClassScores s = nb.Predict(f.vectorizer.Transform(kTest[i]));
    CheckClose(s.joint_log_likelihood, jll[i]);
    CheckClose(s.log_probability, log_proba[i]);
    CheckClose(s.probability, proba[i]);
    CHECK(s.predicted == 1);  // 'q'
  }
}

TEST_CASE("MultinomialNB(alpha=0.5, fit_prior=False) known-answer vectors (spec E.3)") {
  MultinomialNbOptions options;
  options.alpha = 0.5;
  options.fit_prior = false;
  const Fitted f = FitClassic(options);
  CheckClose(f.nb.class_log_prior(),
             {-1.0986122886681098, -1.0986122886681098, -1.0986122886681098});
  const std::vector<double> flp = f.nb.feature_log_prob();
  CheckClose({flp.begin(), flp.begin() + 9},
             {-3.044522437723423, -1.4350845252893225, -3.044522437723423, -1.9459101490553132,
              -3.044522437723423, -1.9459101490553132, -1.9459101490553132, -3.044522437723423,
              -1.9459101490553132});
  const Doubles proba[] = {{0.42951127486432394, 0.22253387021351556, 0.3479548549221609},
                           {0.3046185736786516, 0.2840863963114358, 0.4112950300099126},
                           {0.3333333333333333, 0.3333333333333333, 0.3333333333333333}};
  const size_t predicted[] = {0, 2, 0};  // p, r, p (all-tie row: first class)
  for (size_t i = 0; i < kTest.size(); ++i) {
    const ClassScores s = f.nb.Predict(f.vectorizer.Transform(kTest[i]));
    CheckClose(s.probability, proba[i]);
    CHECK(s.predicted == predicted[i]);
  }
}

TEST_CASE("MultinomialNB closed forms: weights, class_prior, tiny alpha, single class") {
  // Weighted counts: fc[c] = sum of weight * count (closed form on the classic corpus).
  const Fitted w = FitClassic({}, {0.5, 2.0, 0.0, 3.0});
  CHECK(w.nb.class_count() == Doubles{2.0, 0.5, 3.0});  // p: 2; q: 0.5 + 0; r: 3
  // Class prior verbatim (no renormalisation, as scikit-learn).
  MultinomialNbOptions prior;
  prior.class_prior = {0.5, 2.0, 1.0};
  const Fitted p = FitClassic(prior);
  CheckClose(p.nb.class_log_prior(), {std::log(0.5), std::log(2.0), 0.0});
  // alpha = 0 with force_alpha=False is clipped to 1e-10; spec 5.8 vector.
  MultinomialNbOptions tiny;
  tiny.alpha = 0.0;
  tiny.force_alpha = false;
  const std::vector<SparseVector> rows = {{{0, 2}, {1, 2}}, {{1}, {3}}, {{0, 1, 2}, {1, 1, 1}}};
  auto nb = MultinomialNb::Fit(rows, 3, {"b", "a", "b"}, {}, tiny);
  REQUIRE(nb.ok());
  const std::vector<double> flp = nb->feature_log_prob();
  CheckClose({flp.begin(), flp.begin() + 3},
             {-24.124463218708566, -6.66666721826914e-11, -24.124463218708566});
  // force_alpha=True (scikit-learn's default) keeps alpha = 0: an unseen feature has
  // log-probability -inf.
  MultinomialNbOptions forced;
  forced.alpha = 0.0;
  auto nb_forced = MultinomialNb::Fit(rows, 3, {"b", "a", "b"}, {}, forced);
  REQUIRE(nb_forced.ok());
  CHECK(nb_forced->feature_log_prob()[0] == -std::numeric_limits<double>::infinity());
  CHECK(nb_forced->feature_log_prob()[1] == 0.0);
  // Single class: log-probabilities are all 0 (spec E.4).
  auto single = MultinomialNb::Fit(rows, 3, {"5", "5", "5"}, {}, {});
  REQUIRE(single.ok());
  CheckClose(single->feature_log_prob(),
             {-1.3862943611198908, -0.8754687373539001, -1.0986122886681098});
  const ClassScores s = single->Predict(rows[0]);
  CHECK(s.log_probability == Doubles{0.0});
  CHECK(s.probability == Doubles{1.0});
}

TEST_CASE("MultinomialNB rejects bad input") {
  const std::vector<SparseVector> rows = {{{0}, {1}}, {{1}, {2}}};
  const auto code = [&](const std::vector<SparseVector>& r, const Strings& labels,
                        const Doubles& weights, const MultinomialNbOptions& options) {
    return MultinomialNb::Fit(r, 2, labels, weights, options).status().code();
  };
  constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;
  CHECK(code({}, {}, {}, {}) == kInvalid);
  CHECK(code(rows, {"a"}, {}, {}) == kInvalid);
  CHECK(code(rows, {"a", ""}, {}, {}) == kInvalid);
  CHECK(code(rows, {"a", "b"}, {1.0}, {}) == kInvalid);
  CHECK(code(rows, {"a", "b"}, {1.0, -1.0}, {}) == kInvalid);
  CHECK(code(rows, {"a", "b"}, {1.0, std::nan("")}, {}) == kInvalid);
  CHECK(code(rows, {"a", "b"}, {1.0, HUGE_VAL}, {}) == kInvalid);
  CHECK(code({{{0}, {-1}}, {{1}, {2}}}, {"a", "b"}, {}, {}) == kInvalid);
  CHECK(code({{{5}, {1}}, {{1}, {2}}}, {"a", "b"}, {}, {}) == kInvalid);
  MultinomialNbOptions bad_alpha;
  bad_alpha.alpha = -1;
  CHECK(code(rows, {"a", "b"}, {}, bad_alpha) == kInvalid);
  MultinomialNbOptions bad_prior;
  bad_prior.class_prior = {1.0};
  CHECK(code(rows, {"a", "b"}, {}, bad_prior) == kInvalid);
  CHECK(code(rows, {"a", "b"}, {}, {}) == absl::StatusCode::kOk);

  v1::ClassifierConfig config;
  CHECK(MultinomialNbOptionsFromConfig(config).ok());
  config.mutable_complement_nb();
  CHECK(MultinomialNbOptionsFromConfig(config).status().code() == kInvalid);
  config.mutable_bernoulli_nb();
  CHECK(MultinomialNbOptionsFromConfig(config).status().code() == kInvalid);
  config.mutable_multinomial_nb()->set_alpha(std::nan(""));
  CHECK(MultinomialNbOptionsFromConfig(config).status().code() == kInvalid);
  config.mutable_multinomial_nb()->set_alpha(0.5);
  config.mutable_multinomial_nb()->add_class_prior(-0.1);
  CHECK(MultinomialNbOptionsFromConfig(config).status().code() == kInvalid);
}

TEST_CASE("numpy-compatible reductions") {
  // Pairwise summation differs from a naive loop; exact small cases and the argmax tie rule.
  const Doubles ones(1000, 0.1);
  double naive = 0.0;
  for (double v : ones) naive += v;
  const double pairwise = NumpySum(ones.data(), ones.size());
  CHECK(pairwise == Approx(100.0).epsilon(1e-14));
  CHECK(pairwise != naive);  // 0.1 * 1000 accumulates differently
  CHECK(NumpySum(nullptr, 0) == 0.0);
  const Doubles tie = {1.0, 3.0, 3.0};
  CHECK(NumpyArgmax(tie.data(), 3) == 1);
  const Doubles with_nan = {1.0, std::nan(""), 5.0};
  CHECK(NumpyArgmax(with_nan.data(), 3) == 1);
  const Doubles lp = LogProbabilitiesFromJointLogLikelihood({-1.0, -1.0});
  CHECK(lp[0] == Approx(-std::log(2.0)).epsilon(1e-15));
  const double inf = std::numeric_limits<double>::infinity();
  const Doubles with_zero_prior = LogProbabilitiesFromJointLogLikelihood({-inf, -2.0});
  CHECK(with_zero_prior[0] == -inf);
  CHECK(with_zero_prior[1] == 0.0);
  // np.sum(a + add) without the array: each length's pairwise order (below 8, up to 128, halved
  // above), on values whose sums round.
  for (const size_t n : {0, 1, 7, 8, 9, 17, 127, 128, 129, 300, 1000, 5003}) {
    Doubles a(n), shifted(n);
    for (size_t i = 0; i < n; ++i) {
      a[i] = 0.1 * static_cast<double>(i % 97) + 1e-3 / static_cast<double>(i + 1);
      shifted[i] = a[i] + 0.37;
    }
    INFO("n " << n);
    CHECK(NumpySumPlus(a.data(), n, 0.37) == NumpySum(shifted.data(), n));
  }
}

}  // namespace
}  // namespace maas::discriminative
