// libFuzzer: JWT verification (and the bearer header parse) on arbitrary bytes. Any token
// the codec accepts must carry the issuer and audience it checked.
#include <cstdint>
#include <string>

#include "absl/time/clock.h"
#include "common/jwt.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const redflag::JwtCodec codec =
      *redflag::JwtCodec::Create("fuzzing-secret-fuzzing-secret-fuzzing-secret");
  std::string input(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<std::string> token = redflag::BearerToken(input);
  for (const std::string& t : {input, token.ok() ? *token : std::string()}) {
    absl::StatusOr<redflag::JwtClaims> c =
        codec.Verify(t, redflag::kOperatorAudience, absl::FromUnixSeconds(1'800'000'000));
    if (c.ok() && (c->iss != redflag::kIssuer || c->aud != redflag::kOperatorAudience)) {
      __builtin_trap();
    }
  }
  return 0;
}
