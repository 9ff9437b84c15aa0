// Pagination for list RPCs (page_size, page_token): the documented sizes, and opaque page
// tokens that carry the last row's sort key. Tokens are not secrets and not signed: a
// forged one only moves the caller within what it may already read, and a malformed one is
// INVALID_ARGUMENT. Pure functions, safe from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace redflag {

inline constexpr int kDefaultPageSize = 100;
inline constexpr int kMaxPageSize = 1000;

// 0 → kDefaultPageSize; 1..kMaxPageSize as asked; anything else INVALID_ARGUMENT.
absl::StatusOr<int> PageSize(int64_t requested);

// The sort key most lists page by: creation time (microseconds since the epoch) and a UUID.
// The first page starts after at_us -1.
struct TimeIdCursor {
  int64_t at_us = -1;
  std::string id;
};
// A token for the page after `last`; parsing an empty token gives the first page's cursor,
// anything this RPC (`kind`) did not make is INVALID_ARGUMENT.
std::string MakeTimeIdToken(absl::string_view kind, const TimeIdCursor& last);
absl::StatusOr<TimeIdCursor> ParseTimeIdToken(absl::string_view kind, absl::string_view token);

// A token for the page after the row whose sort key is `fields` (none may contain '|').
std::string MakePageToken(absl::string_view kind, const std::vector<std::string>& fields);
// The sort key in a token made by MakePageToken(kind, ...) with `count` fields.
absl::StatusOr<std::vector<std::string>> ParsePageToken(absl::string_view kind,
                                                        absl::string_view token, size_t count);

}  // namespace redflag
