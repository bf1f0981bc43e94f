// The C++ client's reconnect backoff (ClientOptions::reconnect_backoff_max, the CLI's
// --reconnect_backoff_max_ms, default 5 s): gRPC's own (1 s, x1.6, up to 120 s) kept calls failing
// at once with UNAVAILABLE for 6-13 s after a server that had been down a minute was back.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <optional>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clients/cpp/client.h"

namespace maas::client {
namespace {

// The integer value of channel argument `key` in args, if set.
std::optional<int> IntArg(const grpc::ChannelArguments& args, const char* key) {
  const grpc_channel_args c_args = args.c_channel_args();
  std::optional<int> value;
  for (size_t i = 0; i < c_args.num_args; ++i) {
    if (std::string(c_args.args[i].key) == key && c_args.args[i].type == GRPC_ARG_INTEGER) {
      value = c_args.args[i].value.integer;
    }
  }
  return value;
}

TEST_CASE("The reconnect backoff is capped at 5 s by default, the first wait staying 1 s") {
  const ClientOptions options;
  CHECK(options.reconnect_backoff_max == absl::Seconds(5));
  const grpc::ChannelArguments args = ChannelArgs(options);
  CHECK(IntArg(args, GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS) == 1000);
  CHECK(IntArg(args, GRPC_ARG_MAX_RECONNECT_BACKOFF_MS) == 5000);
  // Without it the gRPC built against kept its own backoff (the last test case); it is also the
  // shortest connection attempt, so the cap rather than the first wait.
  CHECK(IntArg(args, GRPC_ARG_MIN_RECONNECT_BACKOFF_MS) == 5000);
}

TEST_CASE("reconnect_backoff_max reaches the channel arguments in ms") {
  ClientOptions options;
  options.reconnect_backoff_max = absl::Seconds(30);
  CHECK(IntArg(ChannelArgs(options), GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS) == 1000);
  CHECK(IntArg(ChannelArgs(options), GRPC_ARG_MAX_RECONNECT_BACKOFF_MS) == 30000);
  options.reconnect_backoff_max = absl::Milliseconds(250);  // a shorter cap shortens the first wait
  CHECK(IntArg(ChannelArgs(options), GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS) == 250);
  CHECK(IntArg(ChannelArgs(options), GRPC_ARG_MAX_RECONNECT_BACKOFF_MS) == 250);
  CHECK(IntArg(ChannelArgs(options), GRPC_ARG_MIN_RECONNECT_BACKOFF_MS) == 250);
}

TEST_CASE("A reconnect_backoff_max gRPC cannot take fails every call, naming it") {
  for (const absl::Duration bad :
       {absl::ZeroDuration(), absl::Seconds(-1), absl::Microseconds(500),
        absl::Milliseconds(int64_t{1} << 31), absl::InfiniteDuration()}) {
    INFO(absl::FormatDuration(bad));
    const absl::Status check = CheckReconnectBackoffMax(bad);
    CHECK(absl::IsInvalidArgument(check));
    CHECK_THAT(std::string(check.message()),
               Catch::Contains("reconnect_backoff_max must be from 1ms to"));
    ClientOptions options;
    options.target = "127.0.0.1:1";
    options.reconnect_backoff_max = bad;
    CHECK(IntArg(ChannelArgs(options), GRPC_ARG_MAX_RECONNECT_BACKOFF_MS) == std::nullopt);
    Client client(options);
    const absl::StatusOr<gateway::v1::GetBackendsResponse> answer = client.GetBackends();
    CHECK(absl::IsInvalidArgument(answer.status()));
    CHECK_THAT(std::string(answer.status().message()), Catch::Contains("reconnect_backoff_max"));
  }
  CHECK(CheckReconnectBackoffMax(absl::Milliseconds(1)).ok());
  CHECK(CheckReconnectBackoffMax(absl::Milliseconds((int64_t{1} << 31) - 1)).ok());
}

// Accepts each connection on a loopback port and closes it at once (a failed connection attempt,
// as to a server that is down), counting them.
class AttemptCounter {
 public:
  AttemptCounter() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
    REQUIRE(listen(fd_, 16) == 0);
    socklen_t length = sizeof(address);
    REQUIRE(getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) == 0);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] {
      while (!done_) {
        pollfd readable{fd_, POLLIN, 0};
        if (poll(&readable, 1, 50) <= 0) continue;
        const int connection = accept(fd_, nullptr, nullptr);
        if (connection < 0) continue;
        close(connection);
        ++attempts_;
      }
    });
  }
  ~AttemptCounter() {
    done_ = true;
    thread_.join();
    close(fd_);
  }
  int port() const { return port_; }
  int attempts() const { return attempts_; }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> done_{false};
  std::atomic<int> attempts_{0};
  std::thread thread_;
};

// The cap reaches the channel MakeChannel makes. With 250 ms the 10th connection attempt comes
// within about 3 s (1.6^k backoff capped at 0.25 s, 20% jitter); with gRPC's default backoff it
// would come after about (1.6^9 - 1) / 0.6 = 110 s (at least 88 s with the jitter), far beyond the
// 20 s the test waits.
TEST_CASE("reconnect_backoff_max reaches the channel: attempts keep coming") {
  AttemptCounter counter;
  ClientOptions options;
  options.target = absl::StrCat("127.0.0.1:", counter.port());
  options.timeout = absl::Milliseconds(200);
  options.reconnect_backoff_max = absl::Milliseconds(250);
  Client client(options);
  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  while (counter.attempts() < 10 && absl::Now() < give_up) {
    CHECK_FALSE(client.GetBackends().ok());  // as a long-lived client keeps calling
    absl::SleepFor(absl::Milliseconds(50));
  }
  INFO("connection attempts in 20 s: " << counter.attempts());
  CHECK(counter.attempts() >= 10);
}

}  // namespace
}  // namespace maas::client
