#include "common/jwt.h"

#include <catch2/catch.hpp>

#include "absl/strings/str_split.h"
#include "common/crypto.h"
#include "common/encoding.h"

using namespace redflag;

namespace {

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

JwtCodec Codec(const std::string& secret = std::string(40, 's')) {
  REQUIRE(InitCrypto().ok());
  return *JwtCodec::Create(secret);
}

JwtClaims Claims() {
  return JwtClaims{"alice", "operator", kOperatorAudience,      kIssuer, "jti-1",
                   kNow,    kNow,       kNow + absl::Hours(24), ""};
}

// A token with exactly this header and payload JSON, signed with Codec()'s secret.
std::string SignedJson(const std::string& header, const std::string& payload) {
  std::string input = Base64UrlEncode(header) + "." + Base64UrlEncode(payload);
  return input + "." + Base64UrlEncode(HmacSha256(std::string(40, 's'), input));
}

std::string Message(const absl::StatusOr<JwtClaims>& r) {
  return std::string(r.status().message());
}

}  // namespace

TEST_CASE("a signed token verifies and carries its claims", "[jwt]") {
  JwtCodec c = Codec();
  auto claims = c.Verify(c.Sign(Claims()), kOperatorAudience, kNow);
  REQUIRE(claims.ok());
  CHECK(claims->sub == "alice");
  CHECK(claims->role == "operator");
  CHECK(claims->exp == kNow + absl::Hours(24));
}

TEST_CASE("a secret shorter than 32 characters is refused", "[jwt]") {
  CHECK_THAT(std::string(JwtCodec::Create("short").status().message()),
             Catch::Contains("REDFLAG_JWT_SECRET must be at least 32"));
}

TEST_CASE("token rejections", "[jwt]") {
  JwtCodec c = Codec();
  std::string token = c.Sign(Claims());
  std::vector<std::string> parts = absl::StrSplit(token, '.');

  SECTION("signed with another secret") {
    JwtCodec other = Codec(std::string(40, 't'));
    CHECK_THAT(Message(c.Verify(other.Sign(Claims()), kOperatorAudience, kNow)),
               Catch::Contains("bad signature"));
  }
  SECTION("payload edited") {
    std::string p = *Base64UrlDecode(parts[1]);
    p.replace(p.find("operator"), 8, "admin\"  ");
    std::string forged = parts[0] + "." + Base64UrlEncode(p) + "." + parts[2];
    CHECK_THAT(Message(c.Verify(forged, kOperatorAudience, kNow)),
               Catch::Contains("bad signature"));
  }
  SECTION("alg none") {
    std::string none = Base64UrlEncode(R"({"alg":"none"})") + "." + parts[1] + ".";
    CHECK_THAT(Message(c.Verify(none, kOperatorAudience, kNow)),
               Catch::Contains("algorithm not allowed"));
  }
  SECTION("alg RS256") {
    std::string rs = Base64UrlEncode(R"({"alg":"RS256"})") + "." + parts[1] + "." + parts[2];
    CHECK_THAT(Message(c.Verify(rs, kOperatorAudience, kNow)),
               Catch::Contains("algorithm not allowed"));
  }
  SECTION("expired") {
    CHECK_THAT(Message(c.Verify(token, kOperatorAudience, kNow + absl::Hours(25))),
               Catch::Contains("expired"));
  }
  SECTION("not yet valid") {
    CHECK_THAT(Message(c.Verify(token, kOperatorAudience, kNow - absl::Hours(1))),
               Catch::Contains("not yet valid"));
  }
  SECTION("wrong audience") {
    CHECK_THAT(Message(c.Verify(token, kAgentAudience, kNow)), Catch::Contains("wrong audience"));
  }
  SECTION("wrong issuer") {
    JwtClaims cl = Claims();
    cl.iss = "someone-else";
    CHECK_THAT(Message(c.Verify(c.Sign(cl), kOperatorAudience, kNow)),
               Catch::Contains("wrong issuer"));
  }
  SECTION("malformed") {
    CHECK_THAT(Message(c.Verify("abc", kOperatorAudience, kNow)), Catch::Contains("three"));
    CHECK_THAT(Message(c.Verify("a$b.c.d", kOperatorAudience, kNow)),
               Catch::Contains("malformed header"));
    std::string not_json = Base64UrlEncode("not json") + "." + parts[1] + "." + parts[2];
    CHECK_THAT(Message(c.Verify(not_json, kOperatorAudience, kNow)),
               Catch::Contains("malformed header JSON"));
  }
  SECTION("every refusal is UNAUTHENTICATED") {
    CHECK(c.Verify("x.y.z", kOperatorAudience, kNow).status().code() ==
          absl::StatusCode::kUnauthenticated);
  }
}

TEST_CASE("tokens in the JSON written before JwtPayload (google.protobuf.Struct) still verify",
          "[jwt]") {
  // Replicas of two versions run side by side during an upgrade: this is what the previous
  // codec wrote (keys in map order, times as JSON numbers).
  JwtCodec c = Codec();
  std::string old = SignedJson(
      R"({"alg":"HS256","typ":"JWT"})",
      R"({"aud":"redflag-operator","exp":1800086400,"iat":1800000000,"iss":"redflag-auth",)"
      R"("jti":"jti-1","nbf":1800000000,"role":"operator","sid":"s-1","sub":"alice"})");
  auto claims = c.Verify(old, kOperatorAudience, kNow);
  REQUIRE(claims.ok());
  CHECK(claims->sub == "alice");
  CHECK(claims->sid == "s-1");
  CHECK(claims->exp == kNow + absl::Hours(24));
  CHECK(claims->nbf == kNow);
}

TEST_CASE("claims RedFlag does not use are ignored; the ones it uses must make sense", "[jwt]") {
  JwtCodec c = Codec();
  const std::string header = R"({"alg":"HS256","typ":"JWT","kid":"k1"})";
  const std::string rest =
      R"("sub":"alice","aud":"redflag-operator","iss":"redflag-auth","iat":1800000000)";
  SECTION("unknown header and payload fields, no nbf (it defaults to iat)") {
    auto claims = c.Verify(
        SignedJson(header, "{" + rest + R"(,"exp":1800000100,"scope":["x"],"extra":{"a":1}})"),
        kOperatorAudience, kNow);
    REQUIRE(claims.ok());
    CHECK(claims->nbf == kNow);
  }
  SECTION("no exp") {
    CHECK_THAT(Message(c.Verify(SignedJson(header, "{" + rest + "}"), kOperatorAudience, kNow)),
               Catch::Contains("missing exp or iat"));
  }
  SECTION("times that are no date") {
    for (const char* exp : {R"("Infinity")", R"("NaN")", "1e300", "-1e300"}) {
      INFO(exp);
      CHECK_THAT(Message(c.Verify(SignedJson(header, "{" + rest + ",\"exp\":" + exp + "}"),
                                  kOperatorAudience, kNow)),
                 Catch::Contains("time claim out of range"));
    }
  }
  SECTION("a claim of the wrong JSON type") {
    CHECK_THAT(Message(c.Verify(SignedJson(header, R"({"sub":5,"exp":1,"iat":1})"),
                                kOperatorAudience, kNow)),
               Catch::Contains("malformed payload JSON"));
    CHECK_THAT(
        Message(c.Verify(SignedJson(R"({"alg":256})", "{" + rest + "}"), kOperatorAudience, kNow)),
        Catch::Contains("malformed header JSON"));
  }
}

TEST_CASE("bearer metadata must be 'Bearer <token>'", "[jwt]") {
  CHECK(*BearerToken("Bearer abc") == "abc");
  CHECK_FALSE(BearerToken("Basic abc").ok());
  CHECK_FALSE(BearerToken("Bearer ").ok());
}
