#include "services/auth/password.h"

#include <sodium.h>

namespace redflag::auth {

absl::StatusOr<std::string> HashPassword(absl::string_view password) {
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(out, password.data(), password.size(),
                            crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE,
                            crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return absl::ResourceExhaustedError("out of memory while hashing password");
  }
  return std::string(out);
}

bool VerifyPassword(absl::string_view hash, absl::string_view password) {
  std::string h(hash);
  return crypto_pwhash_str_verify(h.c_str(), password.data(), password.size()) == 0;
}

void VerifyDummyPassword(absl::string_view password) {
  static const std::string kDummy = *HashPassword("redflag-timing-equaliser");
  (void)VerifyPassword(kDummy, password);
}

}  // namespace redflag::auth
