// Operator password hashing: Argon2id (libsodium crypto_pwhash_str, interactive limits),
// self-describing hash strings, verification in constant time.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace redflag::auth {

absl::StatusOr<std::string> HashPassword(absl::string_view password);
bool VerifyPassword(absl::string_view hash, absl::string_view password);
// Burns the same time as a real verification (used when the user does not exist).
void VerifyDummyPassword(absl::string_view password);

}  // namespace redflag::auth
