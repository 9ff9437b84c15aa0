// Semantic versions (semver 2.0: MAJOR.MINOR.PATCH[-pre][+build], optional leading "v"),
// compared numerically with pre-release precedence; build metadata is ignored.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace redflag {

struct Version {
  uint64_t major = 0, minor = 0, patch = 0;
  std::vector<std::string> pre;  // empty: a release

  static absl::StatusOr<Version> Parse(absl::string_view text);
  // <0, 0, >0 like strcmp.
  int Compare(const Version& other) const;
  std::string ToString() const;
};

}  // namespace redflag
