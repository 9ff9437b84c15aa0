// Checks for untrusted input at the edge, before anything is stored or logged: machine
// fingerprints and short free-text fields. Each returns INVALID_ARGUMENT naming the field
// and what was wrong.
#pragma once

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace redflag {

// A machine fingerprint: SHA-256 as 64 lowercase hex characters.
absl::Status ValidateMachineId(absl::string_view field, absl::string_view value);
// At most `max_bytes`, no control characters (C0, DEL) and no NUL; empty allowed only with
// `allow_empty`.
absl::Status ValidateText(absl::string_view field, absl::string_view value, size_t max_bytes,
                          bool allow_empty = true);

// A name used as a file name by agents (package names, channels, platforms): 1 to
// `max_bytes` of a-z, 0-9, '.', '_', '-' (A-Z too with `allow_upper`), starting with a
// letter or digit — so never ".", "..", a hidden file or a path.
absl::Status ValidateSafeName(absl::string_view field, absl::string_view value, size_t max_bytes,
                              bool allow_upper = false);

// A UUID in its canonical text form: 8-4-4-4-12 hex digits (either case).
absl::Status ValidateUuid(absl::string_view field, absl::string_view value);

// The longest prefix of `value` of at most `max_bytes` that does not end inside a UTF-8
// sequence (so a valid UTF-8 input stays valid when cut).
std::string TruncateUtf8(absl::string_view value, size_t max_bytes);

// Untrusted free text made storable instead of refused (an outcome must not be lost for the
// shape of its message): control characters and NUL — which PostgreSQL text cannot hold —
// escaped as for logs, then cut to at most `max_bytes` on a UTF-8 boundary.
std::string StorableText(absl::string_view value, size_t max_bytes);

}  // namespace redflag
