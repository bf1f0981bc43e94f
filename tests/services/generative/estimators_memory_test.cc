// What the estimators hold at once, measured: this binary counts every byte live through operator
// new (tests/testing/counting_new.cc; std::vector allocates there, and Eigen's dynamic matrices,
// which use malloc, hold only latent-sized vectors here), so a test can check the memory bound
// EstimateRows documents. Its own binary, so that the counting allocator touches no other test.

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>

#include "services/generative/core/estimators.h"
#include "tests/services/generative/test_models.h"
#include "tests/services/generative/thread_executor.h"
#include "tests/testing/counting_new.h"

namespace maas::generative {
namespace {

TEST_CASE("AIS holds at most 2^22 step sizes at once, whatever rows x num_temperatures is") {
  // Each row's pilot freezes num_temperatures step sizes that its chains use. Rows used to run in
  // groups of 2^22 / num_samples rows, so 1 250 rows x 20 000 temperatures (num_samples 1) held all
  // 25 million step sizes (200 MB) at once; 12 000 rows x 100 000 temperatures, a 192 KB request,
  // crashed the server with bad_alloc. Now a group has at most 2^22 / num_temperatures rows too.
  testing::Gauss1d model(0.5, 1.0);
  const Eigen::Index rows = 1250;
  Eigen::MatrixXd x = Eigen::MatrixXd::Constant(rows, 1, 0.3);
  EstimateSettings settings;
  settings.estimator = McEstimator::kAis;
  settings.seed = 5;
  settings.num_samples = 1;
  settings.ais.num_temperatures = 20000;
  settings.ais.leapfrog_steps = 1;
  settings.ais.pilot_chains = 1;
  testing::ThreadExecutor executor(2);
  const int64_t before = maas::testing::StartPeakCount();
  auto result = EstimateRows(model, x, settings, executor, exec::StopToken());
  REQUIRE(result.ok());
  REQUIRE(result->size() == static_cast<size_t>(rows));
  const int64_t held = maas::testing::PeakLiveBytes() - before;
  // 2^22 step sizes and 2^22 weights are 64 MiB; the rest (results, per-row bookkeeping) is small.
  INFO("peak bytes held by EstimateRows: " << held);
  CHECK(held < (int64_t{72} << 20));
}

}  // namespace
}  // namespace maas::generative
