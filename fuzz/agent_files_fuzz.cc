// libFuzzer: the agent's own files, which an attacker with write access to them (or a
// corrupted disk) controls: the JSON configuration and the binary state, then what the agent
// computes from a state it loaded.
#include <cstdint>
#include <string>

#include "agent/config_file.h"
#include "agent/instruction_verifier.h"
#include "agent/updater.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string input(reinterpret_cast<const char*>(data), size);
  (void)redflag::agent::ParseConfigFile(input, "fuzz.json");
  redflag::v1::AgentState state;
  if (!state.ParseFromString(input)) return 0;
  (void)redflag::agent::AlreadyApplied(state, "id");
  redflag::agent::MarkApplied(state, "id");
  (void)redflag::agent::IsKeyRevoked(state, "k");
  redflag::v1::SignedEnvelope manifest;
  if (state.pinned_keys_size() > 0) manifest.set_key_id(state.pinned_keys(0).key_id());
  (void)redflag::agent::CheckManifest(manifest, state, "1.0.0");
  return 0;
}
