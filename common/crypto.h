// Cryptographic primitives for the suite: Ed25519 signing keys (libsodium) that
// wipe themselves and never print, domain-separated signed envelopes, SHA-256
// (OpenSSL EVP) and random identifiers. Call InitCrypto() once before use.
#pragma once

#include <sodium.h>

struct evp_md_ctx_st;

#include <array>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "redflag/v1/common.pb.h"

namespace redflag {

absl::Status InitCrypto();

// An Ed25519 key pair derived from a 32-byte seed. Move-only; the secret half is
// wiped on destruction. Thread-safe for concurrent Sign().
class SigningKey {
 public:
  static absl::StatusOr<SigningKey> FromSeed(absl::string_view seed32);
  SigningKey(SigningKey&& other) noexcept;
  SigningKey& operator=(SigningKey&& other) noexcept;
  SigningKey(const SigningKey&) = delete;
  SigningKey& operator=(const SigningKey&) = delete;
  ~SigningKey();

  // 32 raw bytes.
  std::string PublicKey() const;
  // First 8 bytes of the public key, hex (the reference documents' fingerprint).
  std::string KeyId() const;
  // 64-byte detached signature over `message`.
  std::string Sign(absl::string_view message) const;

 private:
  SigningKey() = default;
  std::array<unsigned char, crypto_sign_PUBLICKEYBYTES> public_key_{};
  std::array<unsigned char, crypto_sign_SECRETKEYBYTES> secret_key_{};
};

std::string KeyIdOf(absl::string_view public_key);
bool VerifySignature(absl::string_view public_key, absl::string_view message,
                     absl::string_view signature);

// The bytes an envelope signature covers: "redflag.v1/" + type + '\0' + payload.
std::string EnvelopeSigningInput(absl::string_view payload_type, absl::string_view payload);
v1::SignedEnvelope SignEnvelope(const SigningKey& key, absl::string_view payload_type,
                                std::string payload);
// OK only when `public_key` signed exactly this payload under this payload type.
absl::Status VerifyEnvelope(const v1::SignedEnvelope& envelope, absl::string_view payload_type,
                            absl::string_view public_key);

// Raw 32-byte SHA-256.
std::string Sha256(absl::string_view data);
std::string Sha256Hex(absl::string_view data);
// HMAC-SHA256 of `data` under `key`: 32 raw bytes.
std::string HmacSha256(absl::string_view key, absl::string_view data);

// Incremental SHA-256 for data that arrives in pieces (uploads, downloads).
class Sha256Hasher {
 public:
  Sha256Hasher();
  ~Sha256Hasher();
  Sha256Hasher(const Sha256Hasher&) = delete;
  Sha256Hasher& operator=(const Sha256Hasher&) = delete;
  void Update(absl::string_view data);
  // Lowercase hex digest; the hasher is finished afterwards.
  std::string FinishHex();

 private:
  ::evp_md_ctx_st* ctx_;
};

std::string RandomBytes(size_t n);
// Random version-4 UUID, lowercase.
std::string RandomUuid();
// Compares two strings in constant time with respect to their contents.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

}  // namespace redflag
