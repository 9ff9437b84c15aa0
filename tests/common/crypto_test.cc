#include "common/crypto.h"

#include <catch2/catch.hpp>

#include "common/encoding.h"

using namespace redflag;

namespace {

SigningKey Key(char fill) {
  REQUIRE(InitCrypto().ok());
  return *SigningKey::FromSeed(std::string(32, fill));
}

}  // namespace

TEST_CASE("an Ed25519 signature verifies and a flipped bit does not", "[crypto]") {
  SigningKey key = Key('k');
  std::string msg = "manifest bytes";
  std::string sig = key.Sign(msg);
  CHECK(VerifySignature(key.PublicKey(), msg, sig));
  std::string flipped = msg;
  flipped[3] ^= 0x01;
  CHECK_FALSE(VerifySignature(key.PublicKey(), flipped, sig));
  sig[10] ^= 0x80;
  CHECK_FALSE(VerifySignature(key.PublicKey(), msg, sig));
}

TEST_CASE("a key id is the first 8 bytes of the public key in hex", "[crypto]") {
  SigningKey key = Key('a');
  CHECK(key.KeyId() == HexEncode(key.PublicKey().substr(0, 8)));
  CHECK(key.KeyId().size() == 16);
}

TEST_CASE("a seed of the wrong length is refused", "[crypto]") {
  CHECK(SigningKey::FromSeed("short").status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("an envelope verifies only under its type and its key", "[crypto]") {
  SigningKey key = Key('e');
  SigningKey other = Key('f');
  v1::SignedEnvelope env = SignEnvelope(key, "redflag.v1.Instruction", "payload");
  CHECK(VerifyEnvelope(env, "redflag.v1.Instruction", key.PublicKey()).ok());
  // Domain separation: the same bytes relabelled as another message type do not verify.
  v1::SignedEnvelope relabelled = env;
  relabelled.set_payload_type("redflag.v1.Manifest");
  CHECK_FALSE(VerifyEnvelope(relabelled, "redflag.v1.Manifest", key.PublicKey()).ok());
  CHECK(VerifyEnvelope(env, "redflag.v1.Instruction", other.PublicKey()).code() ==
        absl::StatusCode::kPermissionDenied);
  v1::SignedEnvelope tampered = env;
  tampered.set_payload("payloaD");
  CHECK(VerifyEnvelope(tampered, "redflag.v1.Instruction", key.PublicKey()).code() ==
        absl::StatusCode::kPermissionDenied);
}

TEST_CASE("SHA-256 matches the standard test vector", "[crypto]") {
  CHECK(Sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("random UUIDs are version 4 and distinct", "[crypto]") {
  REQUIRE(InitCrypto().ok());
  std::string a = RandomUuid(), b = RandomUuid();
  CHECK(a != b);
  CHECK(a.size() == 36);
  CHECK(a[14] == '4');
}

TEST_CASE("base64url and hex reject malformed input", "[encoding]") {
  CHECK_FALSE(Base64UrlDecode("ab$d").ok());
  CHECK(*Base64UrlDecode(Base64UrlEncode("\x01\xff hello")) == "\x01\xff hello");
  CHECK_FALSE(HexDecode("abc").ok());
  CHECK_FALSE(HexDecode("zz").ok());
}
