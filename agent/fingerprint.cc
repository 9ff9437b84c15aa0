#include "agent/fingerprint.h"

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/crypto.h"

namespace redflag::agent {
namespace {

std::optional<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Clean(absl::string_view s) { return std::string(absl::StripAsciiWhitespace(s)); }

// The first line, trimmed: a file is one value, and a value never holds a newline.
std::string FirstLine(absl::string_view s) { return Clean(s.substr(0, s.find('\n'))); }

}  // namespace

FingerprintSources ParseFingerprintSources(const FingerprintFiles& files) {
  FingerprintSources s;
  if (files.machine_id) {
    std::string id = FirstLine(*files.machine_id);
    if (!id.empty()) s.machine_id = id;
  }
  if (files.cpuinfo) {
    int count = 0;
    for (absl::string_view line : absl::StrSplit(*files.cpuinfo, '\n')) {
      if (absl::StartsWith(line, "processor")) ++count;
      if (!s.cpu_model && absl::StartsWith(line, "model name")) {
        size_t colon = line.find(':');
        if (colon != absl::string_view::npos) s.cpu_model = Clean(line.substr(colon + 1));
      }
    }
    if (count > 0) s.cpu_count = count;
  }
  if (files.product_uuid) {
    std::string uuid = FirstLine(*files.product_uuid);
    if (!uuid.empty()) s.system_uuid = absl::AsciiStrToLower(uuid);
  }
  if (files.meminfo) {
    for (absl::string_view line : absl::StrSplit(*files.meminfo, '\n')) {
      if (!absl::StartsWith(line, "MemTotal:")) continue;
      std::vector<absl::string_view> parts =
          absl::StrSplit(line.substr(9), ' ', absl::SkipWhitespace());
      long long kb = 0;
      if (!parts.empty() && absl::SimpleAtoi(parts[0], &kb)) s.memory_kb = kb;
    }
  }
  return s;
}

FingerprintSources ReadFingerprintSources(const std::string& root) {
  std::string base = root == "/" ? "" : root;
  FingerprintFiles files;
  files.machine_id = ReadFile(base + "/etc/machine-id");
  files.cpuinfo = ReadFile(base + "/proc/cpuinfo");
  files.product_uuid = ReadFile(base + "/sys/class/dmi/id/product_uuid");
  files.meminfo = ReadFile(base + "/proc/meminfo");
  return ParseFingerprintSources(files);
}

std::string CanonicalFingerprint(const FingerprintSources& s) {
  auto field = [](const char* name, const std::optional<std::string>& v) {
    // Values never contain newlines (they are stripped lines), so the form is unambiguous.
    return absl::StrCat(name, "=", v ? *v : "<absent>", "\n");
  };
  std::string out = "redflag-fingerprint-v1\n";
  out += field("machine_id", s.machine_id);
  out += field("cpu_model", s.cpu_model);
  out += field("cpu_count",
               s.cpu_count ? std::optional<std::string>(absl::StrCat(*s.cpu_count)) : std::nullopt);
  out += field("system_uuid", s.system_uuid);
  out += field("memory_kb",
               s.memory_kb ? std::optional<std::string>(absl::StrCat(*s.memory_kb)) : std::nullopt);
  return out;
}

absl::StatusOr<std::string> MachineFingerprint(const FingerprintSources& s) {
  if (!s.machine_id && !s.cpu_model && !s.cpu_count && !s.system_uuid && !s.memory_kb) {
    return absl::FailedPreconditionError(
        "no fingerprint source is readable (/etc/machine-id, /proc/cpuinfo, "
        "/sys/class/dmi/id/product_uuid, /proc/meminfo)");
  }
  return Sha256Hex(CanonicalFingerprint(s));
}

}  // namespace redflag::agent
