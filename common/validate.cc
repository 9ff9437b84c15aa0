#include "common/validate.h"

#include "absl/strings/str_cat.h"
#include "common/log.h"

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

absl::Status ValidateUuid(absl::string_view field, absl::string_view value) {
  bool ok = value.size() == 36;
  for (size_t i = 0; ok && i < value.size(); ++i) {
    char c = value[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      ok = c == '-';
    } else {
      ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    }
  }
  if (!ok) return absl::InvalidArgumentError(absl::StrCat(field, " must be a UUID"));
  return absl::OkStatus();
}

std::string TruncateUtf8(absl::string_view value, size_t max_bytes) {
  if (value.size() <= max_bytes) return std::string(value);
  size_t end = max_bytes;
  // Step back over continuation bytes (10xxxxxx) to the start of the cut sequence.
  while (end > 0 && (static_cast<unsigned char>(value[end]) & 0xC0) == 0x80) --end;
  return std::string(value.substr(0, end));
}

std::string StorableText(absl::string_view value, size_t max_bytes) {
  // The longest prefix of the input whose escaped form fits, cut before a UTF-8 lead byte:
  // neither an escape nor a character is ever split.
  size_t cut = 0;
  size_t escaped = 0;
  for (size_t i = 0; i <= value.size(); ++i) {
    bool boundary = i == value.size() || (static_cast<unsigned char>(value[i]) & 0xC0) != 0x80;
    if (boundary && escaped <= max_bytes) cut = i;
    if (i == value.size() || escaped > max_bytes) break;
    auto c = static_cast<unsigned char>(value[i]);
    escaped += c == '\\' ? 2 : (c < 0x20 || c == 0x7f) ? 4 : 1;
  }
  return EscapeForLog(value.substr(0, cut));
}

}  // namespace redflag
