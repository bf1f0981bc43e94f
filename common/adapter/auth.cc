#include "common/adapter/auth.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace maas::adapter {
namespace {

// Equality whose duration depends only on the lengths, not on where the strings differ.
bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

}  // namespace

absl::Status WriteAuthorizer::Check(const grpc::ServerContextBase& context) const {
  if (token_.empty()) return absl::OkStatus();
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  std::string value;
  if (it != metadata.end()) value.assign(it->second.data(), it->second.size());
  return CheckAuthorization(it == metadata.end() ? nullptr : &value, context.peer());
}

absl::Status WriteAuthorizer::CheckAuthorization(const std::string* authorization,
                                                 std::string_view peer) const {
  if (token_.empty()) return absl::OkStatus();
  // The peer's host: "ipv4:1.2.3.4:5555" -> "ipv4:1.2.3.4", "ipv6:[::1]:5555" -> "ipv6:[::1]".
  const std::string_view host = peer.substr(0, std::min(peer.size(), peer.rfind(':')));
  const absl::Time now = limiter_->limit.clock();
  {
    absl::MutexLock lock(&limiter_->mu);
    auto found = limiter_->peers.find(host);
    if (found != limiter_->peers.end()) {
      if (now - found->second.start >= limiter_->limit.window) {
        limiter_->peers.erase(found);
      } else if (found->second.failures >= limiter_->limit.max_failures) {
        const absl::Duration left = limiter_->limit.window - (now - found->second.start);
        return absl::ResourceExhaustedError(absl::StrCat(
            "too many wrong bearer tokens from this client (", limiter_->limit.max_failures,
            " within ", absl::FormatDuration(limiter_->limit.window), "); retry in ",
            absl::FormatDuration(absl::Ceil(left, absl::Seconds(1)))));
      }
    }
  }
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization == nullptr) {
    return absl::UnauthenticatedError(
        "this call changes state and the server requires a token: send metadata 'authorization: "
        "Bearer "
        "<token>' (the maas CLI: --auth_token_file)");
  }
  const std::string_view value(*authorization);
  if (value.size() < kBearer.size() || value.substr(0, kBearer.size()) != kBearer) {
    return absl::UnauthenticatedError("the authorization metadata must read 'Bearer <token>'");
  }
  if (!ConstantTimeEquals(value.substr(kBearer.size()), token_)) {
    absl::MutexLock lock(&limiter_->mu);
    auto& peers = limiter_->peers;
    auto [it, inserted] = peers.try_emplace(std::string(host));
    if (inserted) {
      it->second.start = now;
      while (peers.size() > limiter_->limit.max_peers) {  // bounded memory: drop the oldest
        auto oldest = peers.begin();
        for (auto p = peers.begin(); p != peers.end(); ++p) {
          if (p->second.start < oldest->second.start) oldest = p;
        }
        if (oldest == it) break;
        peers.erase(oldest);
      }
    }
    ++it->second.failures;
    return absl::PermissionDeniedError(
        "the bearer token is not the server's; check --auth_token_file");
  }
  return absl::OkStatus();
}

absl::StatusOr<WriteAuthorizer> WriteAuthorizer::FromTokenFile(const std::string& path) {
  if (path.empty()) return WriteAuthorizer();
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int error = errno;
    const std::string message =
        absl::StrCat("cannot read token file ", path, ": ", std::strerror(error));
    return error == EACCES ? absl::PermissionDeniedError(message) : absl::NotFoundError(message);
  }
  std::ostringstream content;
  content << in.rdbuf();
  std::string token(absl::StripAsciiWhitespace(content.str()));
  if (token.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("token file ", path, " is empty; put the token in it"));
  }
  return WriteAuthorizer(std::move(token));
}

}  // namespace maas::adapter
