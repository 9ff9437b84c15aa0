#include "common/jwt.h"

#include <google/protobuf/util/json_util.h>
#include <sodium.h>

#include <cmath>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "redflag/v1/jwt.pb.h"

namespace redflag {
namespace {

constexpr char kHeader[] = R"({"alg":"HS256","typ":"JWT"})";

absl::Status Reject(absl::string_view reason) {
  return absl::UnauthenticatedError(absl::StrCat("invalid token: ", reason));
}

// A JSON object into `out`; claims RedFlag does not use are ignored. (Not google.protobuf.Struct:
// its map, built inside libprotobuf, crashes under -fsanitize=thread on Debian 12.)
bool ParseJsonObject(absl::string_view json, google::protobuf::Message* out) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  return google::protobuf::util::JsonStringToMessage(std::string(json), out, options).ok();
}

// A NumericDate claim as a time; false when it is no plausible date (NaN, infinite, or
// beyond year 33658), which would overflow the conversion.
bool UnixSeconds(double seconds, absl::Time* out) {
  if (!std::isfinite(seconds) || std::fabs(seconds) > 1e12) return false;
  *out = absl::FromUnixSeconds(static_cast<int64_t>(seconds));
  return true;
}

}  // namespace

absl::StatusOr<JwtCodec> JwtCodec::Create(std::string secret) {
  if (secret.size() < 32) {
    return absl::FailedPreconditionError(absl::StrCat(
        "REDFLAG_JWT_SECRET must be at least 32 characters (it has ", secret.size(), ")"));
  }
  return JwtCodec(std::move(secret));
}

JwtCodec::~JwtCodec() {
  if (!secret_.empty()) sodium_memzero(secret_.data(), secret_.size());
}

std::string JwtCodec::Mac(absl::string_view data) const { return HmacSha256(secret_, data); }

std::string JwtCodec::Sign(const JwtClaims& c) const {
  v1::JwtPayload payload;
  payload.set_sub(c.sub);
  payload.set_role(c.role);
  payload.set_aud(c.aud);
  payload.set_iss(c.iss);
  payload.set_jti(c.jti);
  payload.set_sid(c.sid);
  payload.set_iat(static_cast<double>(absl::ToUnixSeconds(c.iat)));
  payload.set_nbf(static_cast<double>(absl::ToUnixSeconds(c.nbf)));
  payload.set_exp(static_cast<double>(absl::ToUnixSeconds(c.exp)));
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(payload, &json);
  std::string signing_input = absl::StrCat(Base64UrlEncode(kHeader), ".", Base64UrlEncode(json));
  return absl::StrCat(signing_input, ".", Base64UrlEncode(Mac(signing_input)));
}

absl::StatusOr<JwtClaims> JwtCodec::Verify(absl::string_view token, absl::string_view audience,
                                           absl::Time now) const {
  if (token.size() > 8192) return Reject("too long");
  std::vector<absl::string_view> parts = absl::StrSplit(token, '.');
  if (parts.size() != 3) return Reject("not three dot-separated parts");

  absl::StatusOr<std::string> header_json = Base64UrlDecode(parts[0]);
  if (!header_json.ok()) return Reject("malformed header encoding");
  v1::JwtHeader header;
  if (!ParseJsonObject(*header_json, &header)) return Reject("malformed header JSON");
  // Only the configured algorithm: "none", RS256 or anything else is refused before any MAC.
  if (header.alg() != "HS256") return Reject("algorithm not allowed");

  absl::StatusOr<std::string> sig = Base64UrlDecode(parts[2]);
  if (!sig.ok()) return Reject("malformed signature encoding");
  std::string expected =
      Mac(absl::string_view(token.data(), parts[0].size() + 1 + parts[1].size()));
  // Constant time: the MAC is derived from the secret.
  if (!ConstantTimeEquals(*sig, expected)) return Reject("bad signature");

  absl::StatusOr<std::string> payload_json = Base64UrlDecode(parts[1]);
  if (!payload_json.ok()) return Reject("malformed payload encoding");
  v1::JwtPayload payload;
  if (!ParseJsonObject(*payload_json, &payload)) return Reject("malformed payload JSON");
  if (!payload.has_exp() || !payload.has_iat()) return Reject("missing exp or iat");

  JwtClaims c;
  c.sub = payload.sub();
  c.role = payload.role();
  c.aud = payload.aud();
  c.iss = payload.iss();
  c.jti = payload.jti();
  c.sid = payload.sid();
  if (!UnixSeconds(payload.exp(), &c.exp) || !UnixSeconds(payload.iat(), &c.iat) ||
      !UnixSeconds(payload.has_nbf() ? payload.nbf() : payload.iat(), &c.nbf)) {
    return Reject("time claim out of range");
  }
  if (c.iss != kIssuer) return Reject("wrong issuer");
  if (c.aud != audience) return Reject("wrong audience");
  if (c.sub.empty()) return Reject("missing subject");
  if (now >= c.exp + kClockSkew) return Reject("expired");
  if (now + kClockSkew < c.nbf || now + kClockSkew < c.iat) return Reject("not yet valid");
  return c;
}

absl::StatusOr<std::string> BearerToken(absl::string_view v) {
  constexpr absl::string_view kPrefix = "Bearer ";
  if (!absl::StartsWithIgnoreCase(v, kPrefix) || v.size() == kPrefix.size()) {
    return absl::UnauthenticatedError("authorization metadata must be \"Bearer <token>\"");
  }
  return std::string(v.substr(kPrefix.size()));
}

}  // namespace redflag
