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
  // Whole characters, each escaped as for logs, while they fit: neither an escape nor a
  // UTF-8 sequence is ever split.
  std::string out;
  for (size_t i = 0; i < value.size();) {
    size_t n = 1;
    while (i + n < value.size() && (static_cast<unsigned char>(value[i + n]) & 0xC0) == 0x80) ++n;
    std::string piece = EscapeForLog(value.substr(i, n));
    if (out.size() + piece.size() > max_bytes) break;
    out += piece;
    i += n;
  }
  return out;
}

}  // namespace redflag
