#include "services/updates/validation.h"

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/validate.h"
#include "common/version.h"
#include "services/updates/rollout_plan.h"

namespace redflag::updates {

absl::Status ValidatePublishHeader(const v1::PublishUpdateChunk::Header& h, int64_t max_bytes) {
  // Agents install under the package's name: "." or ".." would name the install directory
  // itself (and every agent would then report tampering).
  REDFLAG_RETURN_IF_ERROR(ValidateSafeName("name", h.name(), 64));
  REDFLAG_RETURN_IF_ERROR(Version::Parse(h.version()).status());
  REDFLAG_RETURN_IF_ERROR(ValidateSafeName("platform", h.platform(), 64, /*allow_upper=*/true));
  REDFLAG_RETURN_IF_ERROR(ValidateSafeName("channel", h.channel(), 32));
  if (h.kind() != v1::AGENT && h.kind() != v1::PACKAGE) {
    return absl::InvalidArgumentError("kind must be AGENT or PACKAGE");
  }
  if (h.size() <= 0 || h.size() > max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("size must be between 1 and ", max_bytes,
                                                   " bytes (REDFLAG_MAX_PACKAGE_BYTES)"));
  }
  if (h.has_rollout()) REDFLAG_RETURN_IF_ERROR(ValidateRolloutPlan(h.rollout()));
  return absl::OkStatus();
}

absl::StatusOr<v1::ReportDeliveryRequest> NormalizeDeliveryReport(
    const v1::ReportDeliveryRequest& report) {
  REDFLAG_RETURN_IF_ERROR(ValidateText("agent_id", report.agent_id(), 128, /*allow_empty=*/false));
  REDFLAG_RETURN_IF_ERROR(ValidateUuid("delivery_id", report.delivery_id()));
  switch (report.state()) {
    case v1::DOWNLOADING:
    case v1::VERIFIED:
    case v1::INSTALLED:
    case v1::FAILED:
      break;
    default:
      return absl::InvalidArgumentError(
          "state must be a progress state agents report (DOWNLOADING, VERIFIED, INSTALLED, "
          "FAILED)");
  }
  v1::ReportDeliveryRequest out = report;
  out.set_failure_reason(StorableText(report.failure_reason(), kMaxFailureReasonBytes));
  bool known = false;
  for (const char* code : {"signature", "key", "checksum", "size", "revoked", "version", "nonce",
                           "download", "install"}) {
    known = known || report.failure_code() == code;
  }
  if (!known) out.set_failure_code(report.failure_code().empty() ? "" : "other");
  return out;
}

}  // namespace redflag::updates
