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

}  // namespace redflag
