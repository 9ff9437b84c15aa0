#include "common/paging.h"

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/validate.h"

namespace redflag {

absl::StatusOr<int> PageSize(int64_t requested) {
  if (requested == 0) return kDefaultPageSize;
  if (requested < 0 || requested > kMaxPageSize) {
    return absl::InvalidArgumentError(absl::StrCat("page_size must be between 0 (default ",
                                                   kDefaultPageSize, ") and ", kMaxPageSize));
  }
  return static_cast<int>(requested);
}

std::string MakePageToken(absl::string_view kind, const std::vector<std::string>& fields) {
  return absl::WebSafeBase64Escape(absl::StrCat(kind, "|", absl::StrJoin(fields, "|")));
}

absl::StatusOr<std::vector<std::string>> ParsePageToken(absl::string_view kind,
                                                        absl::string_view token, size_t count) {
  std::string raw;
  if (token.size() > 512 || !absl::WebSafeBase64Unescape(token, &raw)) {
    return absl::InvalidArgumentError("page_token is not one this RPC returned");
  }
  std::vector<std::string> parts = absl::StrSplit(raw, '|');
  if (parts.size() != count + 1 || parts[0] != kind) {
    return absl::InvalidArgumentError("page_token is not one this RPC returned");
  }
  return std::vector<std::string>(parts.begin() + 1, parts.end());
}

std::string MakeTimeIdToken(absl::string_view kind, const TimeIdCursor& last) {
  return MakePageToken(kind, {absl::StrCat(last.at_us), last.id});
}

absl::StatusOr<TimeIdCursor> ParseTimeIdToken(absl::string_view kind, absl::string_view token) {
  TimeIdCursor out;
  if (token.empty()) return out;
  absl::StatusOr<std::vector<std::string>> key = ParsePageToken(kind, token, 2);
  if (!key.ok() || !absl::SimpleAtoi((*key)[0], &out.at_us) ||
      !ValidateUuid("page_token", (*key)[1]).ok()) {
    return absl::InvalidArgumentError("page_token is not one this RPC returned");
  }
  out.id = (*key)[1];
  return out;
}

}  // namespace redflag
