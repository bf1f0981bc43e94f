// Tests of admission control: the concurrent-call limit, the queue bound, ticket release, and the
// retry hint in the refusal.
#include "common/adapter/dispatcher.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"

namespace maas::adapter {
namespace {

TEST_CASE("Dispatcher refuses above max_concurrent_calls and admits again once a call ends") {
  exec::WorkerPool pool({2});
  DispatcherOptions options;
  options.max_concurrent_calls = 2;
  options.retry_after = absl::Milliseconds(250);
  Dispatcher dispatcher(&pool, options);
  auto a = dispatcher.Admit();
  auto b = dispatcher.Admit();
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(dispatcher.in_flight() == 2);
  auto c = dispatcher.Admit();
  REQUIRE(absl::IsResourceExhausted(c.status()));
  CHECK(std::string(c.status().message()).find("--max_concurrent_calls") != std::string::npos);
  CHECK(std::string(c.status().message()).find("retry in 250 ms") != std::string::npos);
  CHECK(dispatcher.retry_after_ms() == 250);
  CHECK(dispatcher.in_flight() == 2);  // a refusal holds nothing
  Dispatcher::Ticket copy = *a;        // the slot is freed with the last copy
  a->reset();
  CHECK_FALSE(dispatcher.Admit().ok());
  copy.reset();
  CHECK(dispatcher.in_flight() == 1);
  CHECK(dispatcher.Admit().ok());  // the temporary ticket is released at once
  CHECK(dispatcher.in_flight() == 1);
}

TEST_CASE("Dispatcher refuses new calls while max_queued tasks wait for a worker") {
  exec::WorkerPool pool({1});
  DispatcherOptions options;
  options.max_queued = 1;
  Dispatcher dispatcher(&pool, options);
  absl::Notification started, release;
  auto first = dispatcher.Admit();
  REQUIRE(first.ok());
  dispatcher.Run([&] {
    started.Notify();
    release.WaitForNotification();
  });
  REQUIRE(started.WaitForNotificationWithTimeout(absl::Seconds(30)));
  auto second = dispatcher.Admit();
  REQUIRE(second.ok());  // nothing waits yet
  absl::Notification second_ran;
  dispatcher.Run([&] { second_ran.Notify(); });
  auto third = dispatcher.Admit();
  REQUIRE(absl::IsResourceExhausted(third.status()));
  CHECK(std::string(third.status().message()).find("--max_queued_calls") != std::string::npos);
  release.Notify();
  REQUIRE(second_ran.WaitForNotificationWithTimeout(absl::Seconds(30)));
}

TEST_CASE("Dispatcher without a pool runs tasks inline") {
  Dispatcher dispatcher(nullptr, {});
  bool ran = false;
  dispatcher.Run([&] { ran = true; });
  CHECK(ran);
  CHECK(dispatcher.executor().parallelism() == 1);
}

}  // namespace
}  // namespace maas::adapter
