#include "common/store/model_store.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"

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

// ModelStore::Open's default: a version read whole.
class BytesVersionReader : public VersionReader {
 public:
  explicit BytesVersionReader(std::string bytes) : bytes_(std::move(bytes)) {}
  int64_t size() const override { return static_cast<int64_t>(bytes_.size()); }
  absl::StatusOr<std::size_t> ReadAt(int64_t offset, char* out, std::size_t n) override {
    if (offset < 0) return absl::InvalidArgumentError("VersionReader::ReadAt: negative offset");
    if (static_cast<uint64_t>(offset) >= bytes_.size()) return 0;
    const std::size_t count = std::min(n, bytes_.size() - static_cast<std::size_t>(offset));
    std::memcpy(out, bytes_.data() + offset, count);
    return count;
  }

 private:
  const std::string bytes_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<VersionReader>> ModelStore::Open(std::string_view name,
                                                                int64_t version) {
  MAAS_RETURN_IF_ERROR(ValidateModelName(name));
  MAAS_RETURN_IF_ERROR(internal::ValidateOpenVersion(name, version));
  MAAS_ASSIGN_OR_RETURN(std::string bytes, Get(name, version));
  return std::make_unique<BytesVersionReader>(std::move(bytes));
}

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

absl::Status ValidateOpenVersion(std::string_view name, int64_t version) {
  if (version >= 1) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("invalid version ", version, " of model \"", Sv(name),
                   "\" to open: open a version >= 1 (list them first)"));
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
