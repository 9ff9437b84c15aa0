// HS256 JSON Web Tokens. Verification accepts only the configured algorithm (never
// "none"), compares the MAC in constant time, and checks issuer, audience and time
// claims with a bounded clock skew. Thread-safe; the secret is wiped on destruction.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace redflag {

inline constexpr char kOperatorAudience[] = "redflag-operator";
inline constexpr char kAgentAudience[] = "redflag-agent";
inline constexpr char kIssuer[] = "redflag-auth";

struct JwtClaims {
  std::string sub;
  std::string role;  // admin | operator | viewer | agent
  std::string aud;
  std::string iss;
  std::string jti;
  absl::Time iat;
  absl::Time nbf;
  absl::Time exp;
  std::string sid;  // the session the token belongs to (refused once the session is revoked)
};

class JwtCodec {
 public:
  // Fails unless the secret has at least 32 characters.
  static absl::StatusOr<JwtCodec> Create(std::string secret);
  JwtCodec(JwtCodec&&) noexcept = default;
  JwtCodec& operator=(JwtCodec&&) noexcept = default;
  ~JwtCodec();

  std::string Sign(const JwtClaims& claims) const;
  // UNAUTHENTICATED with the reason ("expired", "bad signature", ...) on any failure.
  absl::StatusOr<JwtClaims> Verify(absl::string_view token, absl::string_view audience,
                                   absl::Time now) const;

  static constexpr absl::Duration kClockSkew = absl::Seconds(60);

 private:
  explicit JwtCodec(std::string secret) : secret_(std::move(secret)) {}
  std::string Mac(absl::string_view data) const;
  std::string secret_;
};

// The token from an "authorization: Bearer <token>" header value.
absl::StatusOr<std::string> BearerToken(absl::string_view header_value);

}  // namespace redflag
