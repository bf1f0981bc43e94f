#include "common/store/model_store.h"

#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace maas::store {
namespace {

// The name as it may appear in an error message: C-escaped, at most ~80 characters of the input.
std::string QuoteName(std::string_view name) {
  constexpr std::size_t kMaxShown = 80;
  if (name.size() <= kMaxShown)
    return absl::StrCat("\"", absl::CHexEscape(internal::Sv(name)), "\"");
  return absl::StrCat("\"", absl::CHexEscape(internal::Sv(name.substr(0, kMaxShown))), "\"... (",
                      name.size(), " bytes)");
}

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

}  // namespace

absl::Status ValidateModelName(std::string_view name) {
  bool ok = !name.empty() && name.size() <= kMaxModelNameLength && IsLowerAlnum(name[0]) &&
            name.find("..") == std::string_view::npos;
  for (std::size_t i = 1; ok && i < name.size(); ++i) {
    const char c = name[i];
    ok = IsLowerAlnum(c) || c == '.' || c == '_' || c == '-';
  }
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "invalid model name ", QuoteName(name),
      ": a model name has 1 to 63 characters from [a-z0-9._-], starts with a lowercase letter or a "
      "digit, and does not contain \"..\""));
}

namespace internal {

absl::Status ValidateVersionArgument(std::string_view name, int64_t version) {
  if (version >= 0) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("invalid version ", version, " of model \"",
                                                 Sv(name),
                                                 "\": versions are >= 1 (0 = latest / all)"));
}

absl::Status ModelNotFound(std::string_view name, int64_t version) {
  if (version == 0) return absl::NotFoundError(absl::StrCat("model \"", Sv(name), "\" not found"));
  return absl::NotFoundError(
      absl::StrCat("model \"", Sv(name), "\" version ", version, " not found"));
}

absl::Status ContinuedVersionGone(std::string_view name, int64_t continued, int64_t version) {
  return absl::AbortedError(absl::StrCat("model \"", Sv(name), "\": version ", version,
                                         " was to continue version ", continued,
                                         ", which is no longer stored"));
}

absl::Status VersionInTheWay(std::string_view name, int64_t continued, int64_t other,
                             int64_t version) {
  return absl::AbortedError(
      absl::StrCat("model \"", Sv(name), "\": version ", version, " was to continue ",
                   continued == 0 ? std::string("no version") : absl::StrCat("version ", continued),
                   ", but version ", other, " was written or is being written in between"));
}

}  // namespace internal
}  // namespace maas::store
