#include "common/adapter/auth.h"

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
  constexpr std::string_view kBearer = "Bearer ";
  if (it == metadata.end()) {
    return absl::UnauthenticatedError(
        "this call changes state and the server requires a token: send metadata 'authorization: "
        "Bearer "
        "<token>' (the maas CLI: --auth_token_file)");
  }
  const std::string_view value(it->second.data(), it->second.size());
  if (value.size() < kBearer.size() || value.substr(0, kBearer.size()) != kBearer) {
    return absl::UnauthenticatedError("the authorization metadata must read 'Bearer <token>'");
  }
  if (!ConstantTimeEquals(value.substr(kBearer.size()), token_)) {
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
