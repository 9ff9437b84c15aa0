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

// Lists read one row more than the page's `size` (at least 1): that row says another page
// follows, without an empty last page. Drops it (and its sort key; keys[i] is rows[i]'s) and
// returns the next page's token, or "" on the last page.
template <typename Row>
std::string TrimToPage(absl::string_view kind, int size, std::vector<Row>& rows,
                       std::vector<TimeIdCursor>& keys) {
  if (static_cast<int>(rows.size()) <= size) return "";
  rows.pop_back();
  keys.pop_back();
  return MakeTimeIdToken(kind, keys.back());
}

// A token for the page after the row whose sort key is `fields` (none may contain '|').
std::string MakePageToken(absl::string_view kind, const std::vector<std::string>& fields);
// The sort key in a token made by MakePageToken(kind, ...) with `count` fields.
absl::StatusOr<std::vector<std::string>> ParsePageToken(absl::string_view kind,
                                                        absl::string_view token, size_t count);

}  // namespace redflag

// SQL for "the row comes after the cursor" in (`time_col`, `id_col`) order, with the cursor's
// at_us and id as the text parameters `us_param` and `id_param` (the first page's -1 and ''
// come before every row), as in
//   "WHERE ... AND " REDFLAG_AFTER_TIME_ID("a.registered_at", "a.id", "$7", "$8")
//   " ORDER BY a.registered_at, a.id"
#define REDFLAG_AFTER_TIME_ID(time_col, id_col, us_param, id_param)   \
  "(" time_col ", " id_col ") > (to_timestamp(0) + (" us_param        \
  "::bigint || ' microseconds')::interval, coalesce(nullif(" id_param \
  ", '')::uuid, "                                                     \
  "'00000000-0000-0000-0000-000000000000'))"
