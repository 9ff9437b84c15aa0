// libFuzzer: an operator's publication header (protobuf bytes, the first message of
// PublishUpdate) through the updates service's check. What is accepted is signed into offers
// and used by agents as file names: never ".", "..", a hidden name or a path, a version that
// parses, a size within the limit.
#include <cstdint>
#include <string>

#include "common/version.h"
#include "fuzz/quiet_protobuf.h"
#include "services/updates/validation.h"

namespace {

bool SafeFileName(const std::string& s) {
  return !s.empty() && s[0] != '.' && s.find('/') == std::string::npos &&
         s.find('\0') == std::string::npos && s.find("..") != 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  redflag::v1::PublishUpdateChunk chunk;
  if (!chunk.ParseFromArray(data, static_cast<int>(size)) || !chunk.has_header()) return 0;
  const auto& h = chunk.header();
  constexpr int64_t kMax = 1 << 20;
  absl::Status s = redflag::updates::ValidatePublishHeader(h, kMax);
  if (!s.ok()) {
    if (s.code() != absl::StatusCode::kInvalidArgument) __builtin_trap();
    return 0;
  }
  if (!SafeFileName(h.name()) || !SafeFileName(h.platform()) || !SafeFileName(h.channel())) {
    __builtin_trap();
  }
  if (!redflag::Version::Parse(h.version()).ok() || h.size() <= 0 || h.size() > kMax) {
    __builtin_trap();
  }
  return 0;
}
