// libFuzzer: semantic version parsing. A parsed version prints to text that parses back to
// an equal version, and comparison is reflexive.
#include <cstdint>
#include <string>

#include "common/version.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string input(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<redflag::Version> v = redflag::Version::Parse(input);
  if (!v.ok()) return 0;
  absl::StatusOr<redflag::Version> again = redflag::Version::Parse(v->ToString());
  if (!again.ok() || again->Compare(*v) != 0 || v->Compare(*v) != 0) __builtin_trap();
  return 0;
}
