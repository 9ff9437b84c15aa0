// redflag-keygen: key material in the formats the reference documents specify.
//   redflag-keygen signing-key   new Ed25519 key: REDFLAG_SIGNING_PRIVATE_KEY=<64 hex seed>,
//                                plus its public key and fingerprint as comments
//   redflag-keygen jwt-secret    REDFLAG_JWT_SECRET=<64 hex> (256 random bits)
//   redflag-keygen audit-key     REDFLAG_AUDIT_KEY=<64 hex> (seals the audit trail)
//   redflag-keygen fingerprint   public key and fingerprint of REDFLAG_SIGNING_PRIVATE_KEY
// Output is KEY=VALUE lines, ready for an env file (keep it mode 0600).
#include <sodium.h>

#include <cstdio>
#include <string>

#include "common/config.h"
#include "common/crypto.h"
#include "common/encoding.h"

namespace {

int Usage() {
  std::fprintf(stderr,
               "usage: redflag-keygen signing-key | jwt-secret | audit-key | fingerprint\n");
  return 2;
}

void PrintKey(const std::string& seed) {
  redflag::SigningKey key = *redflag::SigningKey::FromSeed(seed);
  std::printf("# public key: %s\n# fingerprint: %s\n", redflag::HexEncode(key.PublicKey()).c_str(),
              key.KeyId().c_str());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return Usage();
  if (!redflag::InitCrypto().ok()) return 1;
  std::string cmd = argv[1];
  if (cmd == "signing-key") {
    unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    crypto_sign_keypair(pk, sk);
    // libsodium's secret key is seed || public key: the documented format is the seed.
    std::string seed(reinterpret_cast<char*>(sk), crypto_sign_SEEDBYTES);
    sodium_memzero(sk, sizeof(sk));
    std::printf("REDFLAG_SIGNING_PRIVATE_KEY=%s\n", redflag::HexEncode(seed).c_str());
    PrintKey(seed);
    sodium_memzero(seed.data(), seed.size());
    return 0;
  }
  if (cmd == "audit-key") {
    std::printf("REDFLAG_AUDIT_KEY=%s\n", redflag::HexEncode(redflag::RandomBytes(32)).c_str());
    return 0;
  }
  if (cmd == "jwt-secret") {
    std::printf("REDFLAG_JWT_SECRET=%s\n", redflag::HexEncode(redflag::RandomBytes(32)).c_str());
    return 0;
  }
  if (cmd == "fingerprint") {
    absl::StatusOr<std::string> seed = redflag::Env::HexSecret("REDFLAG_SIGNING_PRIVATE_KEY", 64);
    if (!seed.ok()) {
      std::fprintf(stderr, "redflag-keygen: %s\n", std::string(seed.status().message()).c_str());
      return 1;
    }
    PrintKey(*seed);
    return 0;
  }
  return Usage();
}
