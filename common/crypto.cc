#include "common/crypto.h"

#include <openssl/evp.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "common/encoding.h"

namespace redflag {

absl::Status InitCrypto() {
  if (sodium_init() < 0) return absl::InternalError("libsodium failed to initialise");
  return absl::OkStatus();
}

absl::StatusOr<SigningKey> SigningKey::FromSeed(absl::string_view seed32) {
  if (seed32.size() != crypto_sign_SEEDBYTES) {
    return absl::InvalidArgumentError(
        absl::StrCat("an Ed25519 seed is ", crypto_sign_SEEDBYTES, " bytes, got ", seed32.size()));
  }
  SigningKey key;
  crypto_sign_seed_keypair(key.public_key_.data(), key.secret_key_.data(),
                           reinterpret_cast<const unsigned char*>(seed32.data()));
  return key;
}

SigningKey::SigningKey(SigningKey&& other) noexcept
    : public_key_(other.public_key_), secret_key_(other.secret_key_) {
  sodium_memzero(other.secret_key_.data(), other.secret_key_.size());
}

SigningKey& SigningKey::operator=(SigningKey&& other) noexcept {
  if (this != &other) {
    public_key_ = other.public_key_;
    secret_key_ = other.secret_key_;
    sodium_memzero(other.secret_key_.data(), other.secret_key_.size());
  }
  return *this;
}

SigningKey::~SigningKey() { sodium_memzero(secret_key_.data(), secret_key_.size()); }

std::string SigningKey::PublicKey() const {
  return std::string(reinterpret_cast<const char*>(public_key_.data()), public_key_.size());
}

std::string SigningKey::KeyId() const { return KeyIdOf(PublicKey()); }

std::string SigningKey::Sign(absl::string_view message) const {
  std::string sig(crypto_sign_BYTES, '\0');
  crypto_sign_detached(reinterpret_cast<unsigned char*>(sig.data()), nullptr,
                       reinterpret_cast<const unsigned char*>(message.data()), message.size(),
                       secret_key_.data());
  return sig;
}

std::string KeyIdOf(absl::string_view public_key) { return HexEncode(public_key.substr(0, 8)); }

bool VerifySignature(absl::string_view public_key, absl::string_view message,
                     absl::string_view signature) {
  if (public_key.size() != crypto_sign_PUBLICKEYBYTES || signature.size() != crypto_sign_BYTES) {
    return false;
  }
  return crypto_sign_verify_detached(
             reinterpret_cast<const unsigned char*>(signature.data()),
             reinterpret_cast<const unsigned char*>(message.data()), message.size(),
             reinterpret_cast<const unsigned char*>(public_key.data())) == 0;
}

std::string EnvelopeSigningInput(absl::string_view payload_type, absl::string_view payload) {
  std::string input = absl::StrCat("redflag.v1/", payload_type);
  input.push_back('\0');
  input.append(payload.data(), payload.size());
  return input;
}

v1::SignedEnvelope SignEnvelope(const SigningKey& key, absl::string_view payload_type,
                                std::string payload) {
  v1::SignedEnvelope env;
  env.set_payload_type(std::string(payload_type));
  env.set_key_id(key.KeyId());
  env.set_signature(key.Sign(EnvelopeSigningInput(payload_type, payload)));
  env.set_payload(std::move(payload));
  return env;
}

absl::Status VerifyEnvelope(const v1::SignedEnvelope& envelope, absl::string_view payload_type,
                            absl::string_view public_key) {
  if (envelope.payload_type() != payload_type) {
    return absl::InvalidArgumentError(
        absl::StrCat("envelope carries ", envelope.payload_type(), ", expected ", payload_type));
  }
  if (envelope.key_id() != KeyIdOf(public_key)) {
    return absl::PermissionDeniedError(
        absl::StrCat("envelope signed by unknown key ", envelope.key_id()));
  }
  if (!VerifySignature(public_key, EnvelopeSigningInput(payload_type, envelope.payload()),
                       envelope.signature())) {
    return absl::PermissionDeniedError("envelope signature does not verify");
  }
  return absl::OkStatus();
}

std::string Sha256(absl::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<char*>(md), len);
}

std::string Sha256Hex(absl::string_view data) { return HexEncode(Sha256(data)); }

std::string HmacSha256(absl::string_view key, absl::string_view data) {
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(key.data()), key.size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(data.data()),
                                data.size());
  crypto_auth_hmacsha256_final(&st, mac);
  sodium_memzero(&st, sizeof(st));
  return std::string(reinterpret_cast<char*>(mac), sizeof(mac));
}

Sha256Hasher::Sha256Hasher() : ctx_(EVP_MD_CTX_new()) {
  EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr);
}

Sha256Hasher::~Sha256Hasher() { EVP_MD_CTX_free(ctx_); }

void Sha256Hasher::Update(absl::string_view data) {
  EVP_DigestUpdate(ctx_, data.data(), data.size());
}

std::string Sha256Hasher::FinishHex() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_, md, &len);
  return HexEncode(absl::string_view(reinterpret_cast<char*>(md), len));
}

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  randombytes_buf(out.data(), n);
  return out;
}

std::string RandomUuid() {
  std::string b = RandomBytes(16);
  b[6] = static_cast<char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<char>((b[8] & 0x3f) | 0x80);
  std::string h = HexEncode(b);
  return absl::StrCat(h.substr(0, 8), "-", h.substr(8, 4), "-", h.substr(12, 4), "-",
                      h.substr(16, 4), "-", h.substr(20));
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace redflag
