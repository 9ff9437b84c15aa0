// libFuzzer: what an agent does with a server→agent instruction. The first byte picks the
// path: the raw bytes as a signed envelope (forgeries: must be refused), or the bytes as an
// Instruction payload that the harness signs with the pinned key (to reach everything after
// the signature check: addressee, freshness, nonces, key revocation, manifest checks).
#include <cstdint>
#include <string>

#include "agent/instruction_verifier.h"
#include "agent/updater.h"
#include "common/crypto.h"

namespace {

struct Keys {
  redflag::SigningKey pinned = *redflag::SigningKey::FromSeed(std::string(32, 'p'));
  redflag::SigningKey newer = *redflag::SigningKey::FromSeed(std::string(32, 'n'));
  Keys() { (void)redflag::InitCrypto(); }
};

redflag::v1::AgentState State(const Keys& k) {
  redflag::v1::AgentState s;
  s.set_agent_id("agent-1");
  for (const redflag::SigningKey* key : {&k.pinned, &k.newer}) {
    redflag::v1::SigningKey* p = s.add_pinned_keys();
    p->set_key_id(key->KeyId());
    p->set_public_key(key->PublicKey());
  }
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Keys keys;
  if (size < 1) return 0;
  std::string rest(reinterpret_cast<const char*>(data + 1), size - 1);
  redflag::v1::SignedEnvelope env;
  if (data[0] & 1) {
    env = redflag::SignEnvelope(keys.newer, "redflag.v1.Instruction", rest);
  } else if (!env.ParseFromString(rest)) {
    return 0;
  }
  redflag::v1::AgentState state = State(keys);
  absl::StatusOr<redflag::v1::Instruction> in =
      redflag::agent::VerifyInstruction(env, state, absl::FromUnixSeconds(1'800'000'000));
  if (!in.ok()) return 0;
  // Only the harness holds the keys: a raw envelope that verifies is a forgery that got in.
  if (!(data[0] & 1)) __builtin_trap();
  if (in->has_key_revocation()) {
    (void)redflag::agent::ApplyKeyRevocation(env.key_id(), in->key_revocation(), state);
  }
  if (in->has_offer()) {
    (void)redflag::agent::CheckManifest(in->offer().signed_manifest(), state, "1.0.0");
  }
  return 0;
}
