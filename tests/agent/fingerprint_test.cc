#include "agent/fingerprint.h"

#include <algorithm>
#include <catch2/catch.hpp>

#include "common/crypto.h"

using namespace redflag::agent;

namespace {

FingerprintSources Full() {
  FingerprintSources s;
  s.machine_id = "0123456789abcdef0123456789abcdef";
  s.cpu_model = "Test CPU";
  s.cpu_count = 8;
  s.system_uuid = "4c4c4544-0000-1000-8000-000000000000";
  s.memory_kb = 16384000;
  return s;
}

}  // namespace

TEST_CASE("the fingerprint is stable for the same sources", "[fingerprint]") {
  REQUIRE(redflag::InitCrypto().ok());
  CHECK(*MachineFingerprint(Full()) == *MachineFingerprint(Full()));
  CHECK(MachineFingerprint(Full())->size() == 64);
}

TEST_CASE("changing any one source changes the fingerprint", "[fingerprint]") {
  std::string base = *MachineFingerprint(Full());
  FingerprintSources a = Full(), b = Full(), c = Full(), d = Full(), e = Full();
  a.machine_id = "ffffffffffffffffffffffffffffffff";
  b.cpu_model = "Other CPU";
  c.cpu_count = 4;
  d.system_uuid = "other";
  e.memory_kb = 8192000;
  for (const auto& s : {a, b, c, d, e}) CHECK(*MachineFingerprint(s) != base);
}

TEST_CASE("absent sources are recorded as absent, not replaced", "[fingerprint]") {
  FingerprintSources s = Full();
  s.system_uuid.reset();
  CHECK_THAT(CanonicalFingerprint(s), Catch::Contains("system_uuid=<absent>"));
  CHECK(*MachineFingerprint(s) != *MachineFingerprint(Full()));
  CHECK(MachineFingerprint(FingerprintSources{}).status().code() ==
        absl::StatusCode::kFailedPrecondition);
}

TEST_CASE("sources are read from a machine tree", "[fingerprint]") {
  FingerprintSources s = ReadFingerprintSources("/nonexistent-root");
  CHECK_FALSE(s.machine_id.has_value());
  CHECK_FALSE(s.cpu_count.has_value());
  FingerprintSources real = ReadFingerprintSources("/");
  CHECK(real.cpu_count.has_value());
  CHECK(real.memory_kb.has_value());
}

TEST_CASE("only the first line of machine-id and product_uuid counts", "[fingerprint]") {
  // Found by fuzz/fingerprint_fuzz.cc: a newline inside machine-id made a value that spans
  // two lines of the canonical form, so text could move between fields without changing it.
  FingerprintFiles files;
  files.machine_id = "abc\ncpu_model=forged\n";
  files.product_uuid = "4C4C4544-0000\nextra";
  FingerprintSources s = ParseFingerprintSources(files);
  CHECK(*s.machine_id == "abc");
  CHECK(*s.system_uuid == "4c4c4544-0000");
  std::string canonical = CanonicalFingerprint(s);
  CHECK(std::count(canonical.begin(), canonical.end(), '\n') == 6);
}
