#include "common/jwt.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <sodium.h>

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/crypto.h"
#include "common/encoding.h"

namespace redflag {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

constexpr char kHeader[] = R"({"alg":"HS256","typ":"JWT"})";

absl::Status Reject(absl::string_view reason) {
  return absl::UnauthenticatedError(absl::StrCat("invalid token: ", reason));
}

absl::StatusOr<Struct> ParseJsonObject(absl::string_view json) {
  Struct s;
  if (!google::protobuf::util::JsonStringToMessage(std::string(json), &s).ok()) {
    return absl::InvalidArgumentError("not a JSON object");
  }
  return s;
}

std::string StringField(const Struct& s, const char* name) {
  auto it = s.fields().find(name);
  return it != s.fields().end() && it->second.has_string_value() ? it->second.string_value() : "";
}

bool TimeField(const Struct& s, const char* name, absl::Time* out) {
  auto it = s.fields().find(name);
  if (it == s.fields().end() || !it->second.has_number_value()) return false;
  *out = absl::FromUnixSeconds(static_cast<int64_t>(it->second.number_value()));
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
  Struct payload;
  auto& f = *payload.mutable_fields();
  f["sub"].set_string_value(c.sub);
  f["role"].set_string_value(c.role);
  f["aud"].set_string_value(c.aud);
  f["iss"].set_string_value(c.iss);
  f["jti"].set_string_value(c.jti);
  if (!c.sid.empty()) f["sid"].set_string_value(c.sid);
  f["iat"].set_number_value(static_cast<double>(absl::ToUnixSeconds(c.iat)));
  f["nbf"].set_number_value(static_cast<double>(absl::ToUnixSeconds(c.nbf)));
  f["exp"].set_number_value(static_cast<double>(absl::ToUnixSeconds(c.exp)));
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
  absl::StatusOr<Struct> header = ParseJsonObject(*header_json);
  if (!header.ok()) return Reject("malformed header JSON");
  // Only the configured algorithm: "none", RS256 or anything else is refused before any MAC.
  if (StringField(*header, "alg") != "HS256") return Reject("algorithm not allowed");

  absl::StatusOr<std::string> sig = Base64UrlDecode(parts[2]);
  if (!sig.ok()) return Reject("malformed signature encoding");
  std::string expected =
      Mac(absl::string_view(token.data(), parts[0].size() + 1 + parts[1].size()));
  // Constant time: the MAC is derived from the secret.
  if (!ConstantTimeEquals(*sig, expected)) return Reject("bad signature");

  absl::StatusOr<std::string> payload_json = Base64UrlDecode(parts[1]);
  if (!payload_json.ok()) return Reject("malformed payload encoding");
  absl::StatusOr<Struct> payload = ParseJsonObject(*payload_json);
  if (!payload.ok()) return Reject("malformed payload JSON");

  JwtClaims c;
  c.sub = StringField(*payload, "sub");
  c.role = StringField(*payload, "role");
  c.aud = StringField(*payload, "aud");
  c.iss = StringField(*payload, "iss");
  c.jti = StringField(*payload, "jti");
  c.sid = StringField(*payload, "sid");
  if (!TimeField(*payload, "exp", &c.exp) || !TimeField(*payload, "iat", &c.iat)) {
    return Reject("missing exp or iat");
  }
  if (!TimeField(*payload, "nbf", &c.nbf)) c.nbf = c.iat;
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
