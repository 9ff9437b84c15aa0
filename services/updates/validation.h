// Checks on what the updates service is sent from outside (an operator's publication header,
// an agent's delivery report), applied before anything is stored, logged or signed. Pure
// functions with no state: safe from any thread, and fuzzed (fuzz/publish_header_fuzz.cc,
// fuzz/delivery_report_fuzz.cc).
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "redflag/v1/updates.pb.h"

namespace redflag::updates {

// Longest failure reason kept from a delivery report, in bytes.
inline constexpr size_t kMaxFailureReasonBytes = 500;

// A publication header: safe package, platform and channel names (agents use them as file
// names), a MAJOR.MINOR.PATCH version, kind AGENT or PACKAGE, size in 1..max_bytes, and a
// valid rollout plan when it carries one.
absl::Status ValidatePublishHeader(const v1::PublishUpdateChunk::Header& h, int64_t max_bytes);

// A delivery report as it will be stored: INVALID_ARGUMENT for what cannot be recorded (no
// agent, a delivery id that is not a UUID, a state agents do not report); otherwise the report
// with its failure reason made storable rather than refused — control characters and NUL
// (which PostgreSQL text cannot hold) escaped, cut to kMaxFailureReasonBytes on a UTF-8
// boundary — and a failure code outside the known set replaced by "other". An outcome is
// never lost for the shape of its free text.
absl::StatusOr<v1::ReportDeliveryRequest> NormalizeDeliveryReport(
    const v1::ReportDeliveryRequest& report);

}  // namespace redflag::updates
