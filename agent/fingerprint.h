// The machine fingerprint: /etc/machine-id, CPU model and count (/proc/cpuinfo), system
// UUID (/sys/class/dmi/id/product_uuid) and memory size (/proc/meminfo), combined in a
// fixed canonical form and hashed with SHA-256. A missing source is recorded as absent,
// never replaced by a constant, so the hash still changes when any present part changes.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace redflag::agent {

struct FingerprintSources {
  std::optional<std::string> machine_id;
  std::optional<std::string> cpu_model;
  std::optional<int> cpu_count;
  std::optional<std::string> system_uuid;
  std::optional<long long> memory_kb;
};

// The raw contents of the four files the sources come from (absent when unreadable).
struct FingerprintFiles {
  std::optional<std::string> machine_id;    // /etc/machine-id
  std::optional<std::string> cpuinfo;       // /proc/cpuinfo
  std::optional<std::string> product_uuid;  // /sys/class/dmi/id/product_uuid
  std::optional<std::string> meminfo;       // /proc/meminfo
};

// Extracts the sources from file contents (pure; fuzzed by fuzz/fingerprint_fuzz.cc). Only
// the first line of machine-id and product_uuid counts, so no value holds a newline.
FingerprintSources ParseFingerprintSources(const FingerprintFiles& files);
// Reads the files below `root` ("/" on a real machine; a directory tree in tests) and parses.
FingerprintSources ReadFingerprintSources(const std::string& root);
// "redflag-fingerprint-v1\n" then one "name=value" or "name=<absent>" line per source.
std::string CanonicalFingerprint(const FingerprintSources& s);
// Lowercase hex SHA-256 of the canonical form; FAILED_PRECONDITION if every source is absent.
absl::StatusOr<std::string> MachineFingerprint(const FingerprintSources& s);

}  // namespace redflag::agent
