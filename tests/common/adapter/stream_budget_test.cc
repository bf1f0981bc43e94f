// Tests of StreamBudget: the server-wide cap on the bytes client streams hold.
#include "common/adapter/stream_budget.h"

#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

namespace maas::adapter {
namespace {

TEST_CASE("StreamBudget adds up to its cap, refuses beyond it without adding, and releases") {
  StreamBudget budget(100, "--cap");
  CHECK(budget.TryAdd(60));
  CHECK(budget.TryAdd(40));  // exactly the cap
  CHECK_FALSE(budget.TryAdd(1));
  CHECK(budget.held() == 100);
  budget.Release(40);
  CHECK_FALSE(budget.TryAdd(41));
  CHECK(budget.held() == 60);
  CHECK(budget.TryAdd(40));
  budget.Release(100);
  CHECK(budget.held() == 0);
  CHECK(std::string(budget.flag()) == "--cap");
}

TEST_CASE("StreamBudget without a cap counts but never refuses") {
  StreamBudget budget(0);
  CHECK(budget.TryAdd(int64_t{1} << 40));
  CHECK(budget.TryAdd(int64_t{1} << 40));
  CHECK(budget.held() == int64_t{2} << 40);
}

TEST_CASE("StreamBudget never lets concurrent adders pass its cap together") {
  StreamBudget budget(1000);
  std::vector<std::thread> threads;
  std::vector<int> taken(8, 0);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&budget, &taken, t] {
      for (int i = 0; i < 10000; ++i) {
        if (budget.TryAdd(7)) ++taken[static_cast<size_t>(t)];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  int total = 0;
  for (int n : taken) total += n;
  CHECK(total == 1000 / 7);  // every add that fit was taken, none beyond
  CHECK(budget.held() == total * 7);
}

}  // namespace
}  // namespace maas::adapter
