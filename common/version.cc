#include "common/version.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace redflag {
namespace {

bool AllDigits(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(c)) return false;
  }
  return true;
}

absl::Status Bad(absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("\"", text.substr(0, 64), "\" is not a semantic version: ", why));
}

}  // namespace

absl::StatusOr<Version> Version::Parse(absl::string_view text) {
  if (text.empty()) return Bad(text, "empty");
  if (text.size() > 128) return Bad(text, "longer than 128 characters");
  absl::string_view s = text;
  if (s[0] == 'v') s.remove_prefix(1);
  s = s.substr(0, s.find('+'));  // build metadata does not affect precedence
  absl::string_view core = s.substr(0, s.find('-'));
  std::vector<absl::string_view> nums = absl::StrSplit(core, '.');
  if (nums.size() != 3) return Bad(text, "expected MAJOR.MINOR.PATCH");
  Version v;
  uint64_t* fields[] = {&v.major, &v.minor, &v.patch};
  for (int i = 0; i < 3; ++i) {
    if (!AllDigits(nums[i]) || !absl::SimpleAtoi(nums[i], fields[i])) {
      return Bad(text, "MAJOR, MINOR and PATCH must be non-negative integers");
    }
    if (nums[i].size() > 1 && nums[i][0] == '0') return Bad(text, "leading zero");
  }
  if (core.size() < s.size()) {
    absl::string_view pre = s.substr(core.size() + 1);
    for (absl::string_view id : absl::StrSplit(pre, '.')) {
      if (id.empty()) return Bad(text, "empty pre-release identifier");
      for (char c : id) {
        if (!absl::ascii_isalnum(c) && c != '-') return Bad(text, "bad pre-release character");
      }
      v.pre.emplace_back(id);
    }
  }
  return v;
}

int Version::Compare(const Version& o) const {
  if (major != o.major) return major < o.major ? -1 : 1;
  if (minor != o.minor) return minor < o.minor ? -1 : 1;
  if (patch != o.patch) return patch < o.patch ? -1 : 1;
  // A release outranks any of its pre-releases.
  if (pre.empty() || o.pre.empty())
    return pre.empty() == o.pre.empty() ? 0 : (pre.empty() ? 1 : -1);
  for (size_t i = 0; i < pre.size() && i < o.pre.size(); ++i) {
    bool a_num = AllDigits(pre[i]), b_num = AllDigits(o.pre[i]);
    if (a_num && b_num) {
      uint64_t a = 0, b = 0;
      (void)absl::SimpleAtoi(pre[i], &a);
      (void)absl::SimpleAtoi(o.pre[i], &b);
      if (a != b) return a < b ? -1 : 1;
    } else if (a_num != b_num) {
      return a_num ? -1 : 1;  // numeric identifiers rank below alphanumeric ones
    } else if (pre[i] != o.pre[i]) {
      return pre[i] < o.pre[i] ? -1 : 1;
    }
  }
  if (pre.size() == o.pre.size()) return 0;
  return pre.size() < o.pre.size() ? -1 : 1;
}

std::string Version::ToString() const {
  std::string s = absl::StrCat(major, ".", minor, ".", patch);
  if (!pre.empty()) absl::StrAppend(&s, "-", absl::StrJoin(pre, "."));
  return s;
}

}  // namespace redflag
