#include "common/validate.h"

#include "absl/strings/str_cat.h"

namespace redflag {

absl::Status ValidateMachineId(absl::string_view field, absl::string_view value) {
  if (value.size() != 64) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " must be 64 hex characters (SHA-256), got ", value.size()));
  }
  for (char c : value) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return absl::InvalidArgumentError(absl::StrCat(field, " must be lowercase hexadecimal"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateText(absl::string_view field, absl::string_view value, size_t max_bytes,
                          bool allow_empty) {
  if (value.empty() && !allow_empty) {
    return absl::InvalidArgumentError(absl::StrCat(field, " is required"));
  }
  if (value.size() > max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is longer than ", max_bytes, " bytes (", value.size(), ")"));
  }
  for (unsigned char c : value) {
    if (c < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError(absl::StrCat(field, " contains control characters"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateSafeName(absl::string_view field, absl::string_view value, size_t max_bytes,
                              bool allow_upper) {
  auto alnum = [allow_upper](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (allow_upper && c >= 'A' && c <= 'Z');
  };
  bool ok = !value.empty() && value.size() <= max_bytes && alnum(value[0]);
  for (char c : value) ok = ok && (alnum(c) || c == '.' || c == '_' || c == '-');
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " must be 1-", max_bytes, " characters of ", allow_upper ? "letters" : "a-z",
        ", 0-9, '.', '_', '-', starting with a letter or digit"));
  }
  return absl::OkStatus();
}

}  // namespace redflag
