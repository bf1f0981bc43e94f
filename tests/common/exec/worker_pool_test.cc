// Tests of the worker pool: every item once, nested ParallelFor without deadlock when every worker
// is busy, bounded queue, draining destructor. Waits are event-based with generous caps.
#include "common/exec/worker_pool.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <set>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace maas::exec {
namespace {

constexpr absl::Duration kCap = absl::Seconds(30);  // generous: only a deadlock reaches it

TEST_CASE("ParallelFor runs every item exactly once and uses several threads") {
  WorkerPool pool({4});
  CHECK(pool.parallelism() == 4);
  constexpr int64_t kN = 2000;
  std::vector<std::atomic<int>> hits(kN);
  absl::Mutex mu;
  std::set<std::thread::id> threads;
  pool.ParallelFor(kN, [&](int64_t i) {
    hits[static_cast<size_t>(i)].fetch_add(1);
    absl::MutexLock lock(&mu);
    threads.insert(std::this_thread::get_id());
  });
  for (const auto& h : hits) REQUIRE(h.load() == 1);
  CHECK(!threads.empty());
  pool.ParallelFor(0, [](int64_t) { FAIL("n = 0 runs nothing"); });
  pool.ParallelFor(-3, [](int64_t) { FAIL("n < 0 runs nothing"); });
}

TEST_CASE("Nested ParallelFor inside pool tasks completes even when every worker is busy") {
  WorkerPool pool({2});
  std::atomic<int64_t> sum{0};
  absl::Notification all_done;
  std::atomic<int> tasks_left{4};
  // More outer tasks than workers, each running a ParallelFor whose items run ParallelFor again:
  // only caller participation lets this finish.
  for (int t = 0; t < 4; ++t) {
    pool.Submit([&] {
      pool.ParallelFor(
          8, [&](int64_t) { pool.ParallelFor(16, [&](int64_t j) { sum.fetch_add(j); }); });
      if (tasks_left.fetch_sub(1) == 1) all_done.Notify();
    });
  }
  REQUIRE(all_done.WaitForNotificationWithTimeout(kCap));
  CHECK(sum.load() == 4 * 8 * (15 * 16 / 2));
}

TEST_CASE("TrySubmit refuses once max_queued tasks wait, Submit always queues") {
  WorkerPool pool({1});
  absl::Notification started, release;
  pool.Submit([&] {
    started.Notify();
    release.WaitForNotification();
  });
  REQUIRE(started.WaitForNotificationWithTimeout(kCap));
  std::atomic<int> ran{0};
  CHECK(pool.TrySubmit([&] { ran.fetch_add(1); }, 2));
  CHECK(pool.TrySubmit([&] { ran.fetch_add(1); }, 2));
  CHECK(pool.queued() == 2);
  CHECK_FALSE(pool.TrySubmit([&] { ran.fetch_add(100); }, 2));  // dropped
  CHECK(pool.TrySubmit([&] { ran.fetch_add(1); }, -1));         // no bound
  pool.Submit([&] { ran.fetch_add(1); });
  CHECK(pool.queued() == 4);
  CHECK(pool.running() == 1);
  release.Notify();
  absl::Notification drained;
  pool.Submit([&] { drained.Notify(); });
  REQUIRE(drained.WaitForNotificationWithTimeout(kCap));
  CHECK(ran.load() == 4);
}

TEST_CASE("The destructor runs every queued task before joining") {
  std::atomic<int> ran{0};
  {
    WorkerPool pool({1});
    for (int i = 0; i < 50; ++i) pool.Submit([&] { ran.fetch_add(1); });
  }
  CHECK(ran.load() == 50);
}

// A ParallelFor's helpers claimed items until none was left: a call split over the pool held every
// worker to its end, and a call queued meanwhile (a 5 ms Classify behind a 90 s one) waited for all
// of it. A helper now steps aside between items while another task waits.
TEST_CASE("A task queued during a long ParallelFor runs before the ParallelFor's last item") {
  WorkerPool pool({2});
  constexpr int64_t kItems = 40;
  std::atomic<int64_t> items_done{0};
  std::atomic<int64_t> done_when_other_ran{-1};
  absl::Notification other_ran, call_done;
  pool.Submit([&] {
    pool.ParallelFor(kItems, [&](int64_t i) {
      if (i == 1) {
        pool.Submit([&] {  // another call, arriving while the long one has items left
          done_when_other_ran.store(items_done.load());
          other_ran.Notify();
        });
      }
      // Each item takes a while until the other call has run (100 ms at most: the long call
      // always ends, in ~2 s when the other call waits for it to the end).
      if (i >= 1) other_ran.WaitForNotificationWithTimeout(absl::Milliseconds(100));
      items_done.fetch_add(1);
    });
    call_done.Notify();
  });
  REQUIRE(call_done.WaitForNotificationWithTimeout(kCap));
  REQUIRE(other_ran.WaitForNotificationWithTimeout(kCap));
  CHECK(items_done.load() == kItems);
  CHECK(done_when_other_ran.load() < kItems);
}

TEST_CASE("A one-thread pool runs ParallelFor on the caller, in order") {
  WorkerPool pool({1});
  std::vector<int64_t> order;
  pool.ParallelFor(5, [&](int64_t i) { order.push_back(i); });
  CHECK(order == std::vector<int64_t>{0, 1, 2, 3, 4});
  CHECK(HardwareThreads() >= 1);
  WorkerPool defaults({0});
  CHECK(defaults.parallelism() == HardwareThreads());
}

}  // namespace
}  // namespace maas::exec
