// The server kit's line writer: synchronous, or on its own thread so that a stalled output never
// holds up the threads that log (the services' call threads, the gateway's h2 data plane). Every
// wait has a generous cap; nothing asserts timing.
#include "common/server/line_writer.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <iostream>
#include <memory>
#include <ostream>
#include <streambuf>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"

namespace maas::server {
namespace {

constexpr absl::Duration kCap = absl::Seconds(20);

// An output whose content can be read while another thread writes to it.
class RecordingBuf : public std::streambuf {
 public:
  std::string Text() {
    absl::MutexLock lock(&mu_);
    return text_;
  }
  bool WaitFor(const std::string& text) {
    absl::MutexLock lock(&mu_);
    auto has = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return text_.find(text) != std::string::npos;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&has), kCap);
  }

 protected:
  int_type overflow(int_type c) override {
    if (c == traits_type::eof()) return traits_type::not_eof(c);
    const char ch = static_cast<char>(c);
    return xsputn(&ch, 1) == 1 ? c : traits_type::eof();
  }

  absl::Mutex mu_;
  std::string text_ ABSL_GUARDED_BY(mu_);
};

// An output whose writes can be held (as a stalled disk would).
class HoldableBuf : public RecordingBuf {
 public:
  void Hold() {
    absl::MutexLock lock(&mu_);
    held_ = true;
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    held_ = false;
  }
  // Whether a write is waiting in Hold().
  bool Stalled() {
    absl::MutexLock lock(&mu_);
    return stalled_;
  }

 protected:
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    absl::MutexLock lock(&mu_);
    stalled_ = true;
    auto free = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return !held_; };
    mu_.Await(absl::Condition(&free));
    stalled_ = false;
    text_.append(s, static_cast<size_t>(n));
    return n;
  }

 private:
  bool held_ ABSL_GUARDED_BY(mu_) = false;
  bool stalled_ ABSL_GUARDED_BY(mu_) = false;
};

// An output that refuses writes while full, as a file on a full disk does.
class FillableBuf : public RecordingBuf {
 public:
  void SetFull(bool full) {
    absl::MutexLock lock(&mu_);
    full_ = full;
  }

 protected:
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    absl::MutexLock lock(&mu_);
    if (full_) return 0;
    text_.append(s, static_cast<size_t>(n));
    return n;
  }

 private:
  bool full_ ABSL_GUARDED_BY(mu_) = false;
};

// Once the log file's disk had been full, no line was ever written again (the stream kept its
// error state) and nothing said so.
TEST_CASE("line writer resumes once a refusing output takes lines again, counting the lost ones") {
  for (const absl::Duration interval : {absl::ZeroDuration(), absl::Milliseconds(2)}) {
    FillableBuf buf;
    std::ostream out(&buf);
    LineWriter writer("maas-test", &out, interval);
    writer.Write("{\"a\":1}\n");
    REQUIRE(buf.WaitFor("{\"a\":1}\n"));
    buf.SetFull(true);
    writer.Write("{\"lost\":1}\n{\"lost\":2}\n");
    const absl::Time limit = absl::Now() + kCap;
    while (writer.dropped_lines() < 2 && absl::Now() < limit) absl::SleepFor(absl::Milliseconds(1));
    CHECK(writer.dropped_lines() == 2);
    buf.SetFull(false);
    writer.Write("{\"b\":2}\n");
    REQUIRE(buf.WaitFor("{\"b\":2}\n"));
    CHECK(buf.Text() == "{\"a\":1}\n{\"b\":2}\n");
    CHECK(writer.dropped_lines() == 2);
  }
}

TEST_CASE("line writer without a flush interval writes each line before returning") {
  HoldableBuf buf;
  std::ostream out(&buf);
  LineWriter writer("maas-test", &out);
  writer.Write("{\"a\":1}\n");
  CHECK(buf.Text() == "{\"a\":1}\n");
  writer.Write("{\"b\":2}\n{\"c\":3}\n");
  CHECK(buf.Text() == "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n");
}

TEST_CASE("line writer with a flush interval writes every line, in order, on its own thread") {
  HoldableBuf buf;
  std::ostream out(&buf);
  std::string expected;
  {
    LineWriter writer("maas-test", &out, absl::Milliseconds(5));
    for (int i = 0; i < 2000; ++i) {
      const std::string line = absl::StrCat("{\"n\":", i, "}\n");
      writer.Write(line);
      expected += line;
    }
    // Written within the interval while the writer lives, not only when it is destroyed.
    REQUIRE(buf.WaitFor("{\"n\":1999}\n"));
    writer.Write("{\"last\":true}\n");
    expected += "{\"last\":true}\n";
    CHECK(writer.dropped_lines() == 0);
  }
  CHECK(buf.Text() == expected);  // the destructor wrote the rest
}

// Regression guard for every thread that logs calls (the gateway's one h2 data-plane thread, the
// services' call threads): a log output that stalls (a full or slow disk, a stopped reader of
// stderr) must not stall them. Lines beyond the buffer are dropped and counted.
TEST_CASE("line writer with a flush interval never blocks the caller on a stalled output") {
  HoldableBuf buf;
  std::ostream out(&buf);
  LineWriter writer("maas-test", &out, absl::Milliseconds(1));
  buf.Hold();
  writer.Write("{\"first\":true}\n");
  const absl::Time limit = absl::Now() + kCap;
  while (!buf.Stalled() && absl::Now() < limit) absl::SleepFor(absl::Milliseconds(1));
  REQUIRE(buf.Stalled());  // the writer's thread waits in the output
  // Had the caller written itself, this would block until Release() (never, the test would hang
  // past ctest's timeout): it returns, fills the buffer, then drops.
  const std::string line(1000, 'x');
  const std::string row = line + "\n";
  const size_t fits = LineWriter::kMaxBufferedBytes / row.size();
  for (size_t i = 0; i < fits + 10; ++i) writer.Write(row);
  CHECK(writer.dropped_lines() == 10);
  buf.Release();
  REQUIRE(buf.WaitFor("{\"first\":true}\n"));
}

// A server shutting down with a stderr nobody drains (a stopped log agent) must still exit: the
// destructor's join used to wait for the writer's thread, blocked in write() until the reader came
// back, so the process hung at SIGTERM. Now it waits at most kShutdownWait, then drops the rest;
// what did go out is whole lines.
TEST_CASE("line writer on a stalled stderr gives up at destruction after kShutdownWait") {
  int pipe_fds[2];
  REQUIRE(pipe(pipe_fds) == 0);
  const int saved_stderr = dup(STDERR_FILENO);
  REQUIRE(saved_stderr >= 0);
  REQUIRE(dup2(pipe_fds[1], STDERR_FILENO) == STDERR_FILENO);
  const std::string row = std::string(99, 'x') + "\n";
  auto writer = std::make_unique<LineWriter>("maas-test", &std::cerr, absl::Milliseconds(1));
  for (int i = 0; i < 3000; ++i) writer->Write(row);  // 300 kB: a pipe takes 64 KiB
  absl::Notification destroyed;
  std::thread destroyer([&] {
    writer.reset();
    destroyed.Notify();
  });
  const bool returned = destroyed.WaitForNotificationWithTimeout(kCap);
  // Restore stderr, then read the pipe (before the fix, this is what let the destructor return).
  REQUIRE(dup2(saved_stderr, STDERR_FILENO) == STDERR_FILENO);
  close(saved_stderr);
  std::string text;
  char chunk[65536];
  while (!destroyed.HasBeenNotified()) {
    const ssize_t n = read(pipe_fds[0], chunk, sizeof(chunk));
    if (n > 0) text.append(chunk, static_cast<size_t>(n));
  }
  destroyer.join();
  close(pipe_fds[1]);
  for (ssize_t n; (n = read(pipe_fds[0], chunk, sizeof(chunk))) > 0;) {
    text.append(chunk, static_cast<size_t>(n));
  }
  close(pipe_fds[0]);
  CHECK(returned);
  CHECK(text.size() % row.size() == 0);
  CHECK(text.size() < 3000 * row.size());
  CHECK(text.find_first_not_of(row) == std::string::npos);
}

// A stderr whose reader went away (SIGPIPE ignored, as the servers do): the lines are dropped and
// counted, and only they. The note about them, itself not written, used to be counted as one more
// dropped line, so every later round wrote another note to the closed pipe, for ever.
TEST_CASE("line writer on a closed stderr counts the lost call lines, not its own notes") {
  const auto previous_sigpipe = signal(SIGPIPE, SIG_IGN);
  int pipe_fds[2];
  REQUIRE(pipe(pipe_fds) == 0);
  close(pipe_fds[0]);  // no reader
  const int saved_stderr = dup(STDERR_FILENO);
  REQUIRE(saved_stderr >= 0);
  REQUIRE(dup2(pipe_fds[1], STDERR_FILENO) == STDERR_FILENO);
  uint64_t dropped_at_first = 0, dropped_later = 0;
  {
    LineWriter writer("maas-test", &std::cerr, absl::Milliseconds(1));
    writer.Write("{\"a\":1}\n{\"b\":2}\n");
    const absl::Time limit = absl::Now() + kCap;
    while (writer.dropped_lines() == 0 && absl::Now() < limit)
      absl::SleepFor(absl::Milliseconds(1));
    dropped_at_first = writer.dropped_lines();
    absl::SleepFor(absl::Milliseconds(200));  // ~200 of the writer's rounds
    dropped_later = writer.dropped_lines();
  }
  REQUIRE(dup2(saved_stderr, STDERR_FILENO) == STDERR_FILENO);
  close(saved_stderr);
  close(pipe_fds[1]);
  signal(SIGPIPE, previous_sigpipe);
  CHECK(dropped_at_first == 2);
  CHECK(dropped_later == 2);
}

}  // namespace
}  // namespace maas::server
