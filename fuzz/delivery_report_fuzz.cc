// libFuzzer: an agent's delivery report (protobuf bytes, as the gateway receives them) through
// the updates service's normalisation. What is accepted must be storable as it stands: no NUL
// or control characters, at most kMaxFailureReasonBytes, still valid UTF-8, a bounded failure
// code, a UUID delivery id and a progress state.
#include <cstdint>
#include <string>

#include "common/validate.h"
#include "fuzz/quiet_protobuf.h"
#include "services/updates/validation.h"

namespace {

// Sequence structure only (lead byte, then that many continuation bytes): enough to see a cut.
bool IsUtf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n = 0;
    if (c >= 0x80) {
      if ((c & 0xE0) == 0xC0) {
        n = 1;
      } else if ((c & 0xF0) == 0xE0) {
        n = 2;
      } else if ((c & 0xF8) == 0xF0) {
        n = 3;
      } else {
        return false;
      }
    }
    for (size_t k = 1; k <= n; ++k) {
      if (i + k >= s.size() || (static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n + 1;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  redflag::v1::ReportDeliveryRequest in;
  if (!in.ParseFromArray(data, static_cast<int>(size))) return 0;
  absl::StatusOr<redflag::v1::ReportDeliveryRequest> out =
      redflag::updates::NormalizeDeliveryReport(in);
  if (!out.ok()) {
    if (out.status().code() != absl::StatusCode::kInvalidArgument) __builtin_trap();
    return 0;
  }
  const std::string& reason = out->failure_reason();
  if (reason.size() > redflag::updates::kMaxFailureReasonBytes) __builtin_trap();
  for (unsigned char c : reason) {
    if (c < 0x20 || c == 0x7f) __builtin_trap();
  }
  if (IsUtf8(in.failure_reason()) && !IsUtf8(reason)) __builtin_trap();
  if (!redflag::ValidateUuid("delivery_id", out->delivery_id()).ok()) __builtin_trap();
  if (out->failure_code().size() > 16 || out->agent_id().empty()) __builtin_trap();
  return 0;
}
