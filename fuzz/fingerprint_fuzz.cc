// libFuzzer: the machine fingerprint from the contents of /etc/machine-id, /proc/cpuinfo,
// product_uuid and /proc/meminfo (on a hostile or odd machine, any bytes). The first byte
// says which files exist; the rest is split at 0xFF into their contents. Whatever the
// contents, the canonical form has exactly one line per source (so two machines cannot
// collide by moving text between fields) and the fingerprint is a valid machine id.
#include <cstdint>
#include <string>
#include <vector>

#include "agent/fingerprint.h"
#include "common/validate.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::vector<std::string> parts(4);
  size_t part = 0;
  for (size_t i = 1; i < size; ++i) {
    if (data[i] == 0xFF && part < 3) {
      ++part;
    } else {
      parts[part].push_back(static_cast<char>(data[i]));
    }
  }
  redflag::agent::FingerprintFiles files;
  std::optional<std::string>* slots[] = {&files.machine_id, &files.cpuinfo, &files.product_uuid,
                                         &files.meminfo};
  for (int i = 0; i < 4; ++i) {
    if (data[0] & (1 << i)) *slots[i] = parts[i];
  }
  redflag::agent::FingerprintSources s = redflag::agent::ParseFingerprintSources(files);
  std::string canonical = redflag::agent::CanonicalFingerprint(s);
  size_t lines = 0;
  for (char c : canonical) lines += c == '\n';
  if (lines != 6 || canonical.rfind("redflag-fingerprint-v1\n", 0) != 0) __builtin_trap();
  absl::StatusOr<std::string> fp = redflag::agent::MachineFingerprint(s);
  bool any = s.machine_id || s.cpu_model || s.cpu_count || s.system_uuid || s.memory_kb;
  if (fp.ok() != any) __builtin_trap();
  if (fp.ok() && !redflag::ValidateMachineId("fingerprint", *fp).ok()) __builtin_trap();
  return 0;
}
