// Status plumbing shared by every component: early-return macros (Abseil 20220623
// has none) and the single mapping from absl::Status to grpc::Status.
#pragma once

#include <grpcpp/support/status.h>

#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

#define REDFLAG_STATUS_CONCAT_INNER(a, b) a##b
#define REDFLAG_STATUS_CONCAT(a, b) REDFLAG_STATUS_CONCAT_INNER(a, b)

#define REDFLAG_RETURN_IF_ERROR(expr)                  \
  do {                                                 \
    ::absl::Status redflag_status_ = (expr);           \
    if (!redflag_status_.ok()) return redflag_status_; \
  } while (0)

#define REDFLAG_ASSIGN_OR_RETURN(lhs, expr) \
  REDFLAG_ASSIGN_OR_RETURN_IMPL(REDFLAG_STATUS_CONCAT(redflag_statusor_, __LINE__), lhs, expr)
#define REDFLAG_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return tmp.status();                 \
  lhs = std::move(tmp).value()

namespace redflag {

// The one place absl status codes become gRPC status codes (the numbering is shared).
// A retry delay attached with WithRetryDelay travels as google.rpc.RetryInfo in the
// standard grpc-status-details-bin trailer.
grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

inline constexpr char kRetryInfoType[] = "type.googleapis.com/google.rpc.RetryInfo";
// `status` with a RetryInfo payload telling the caller how long to wait.
absl::Status WithRetryDelay(absl::Status status, absl::Duration delay);
// The retry delay carried by a gRPC status, if any.
std::optional<absl::Duration> RetryDelayOf(const grpc::Status& status);
std::optional<absl::Duration> RetryDelayOf(const absl::Status& status);

}  // namespace redflag
