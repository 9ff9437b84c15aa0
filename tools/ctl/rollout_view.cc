#include "tools/ctl/rollout_view.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tools/ctl/printable.h"

namespace redflag::ctl {
namespace {

std::string StateName(v1::RolloutState s) {
  std::string name = v1::RolloutState_Name(s);
  return name.rfind("ROLLOUT_", 0) == 0 ? name.substr(8) : name;
}

int64_t Count(const v1::RolloutStageStatus& s, const std::string& state) {
  auto it = s.counts().find(state);
  return it == s.counts().end() ? 0 : it->second;
}

std::string Thresholds(const v1::RolloutStage& s) {
  std::vector<std::string> parts;
  if (s.halt_after_failures() > 0)
    parts.push_back(absl::StrCat(s.halt_after_failures(), " failed"));
  if (s.halt_failure_percent() > 0) parts.push_back(absl::StrCat(s.halt_failure_percent(), "%"));
  return parts.empty() ? "-" : absl::StrJoin(parts, " or ");
}

}  // namespace

void PrintRollout(const v1::Rollout& r, std::ostream& out) {
  const int stages = r.stages_size();
  const bool has_current = r.current_stage() >= 0 && r.current_stage() < stages;
  out << "update: " << Printable(r.update_id(), 64) << "\n"
      << "state:  " << StateName(r.state());
  if (has_current) {
    out << " at stage " << r.current_stage() + 1 << " of " << stages << " ("
        << Printable(r.stages(r.current_stage()).stage().name(), 64) << ", since "
        << google::protobuf::util::TimeUtil::ToString(r.stage_started_at()) << ")";
  }
  out << (r.paused_by_emergency_stop() ? ", by the emergency stop" : "") << "\n";
  if (!r.reason().empty()) out << "reason: " << Printable(r.reason(), 500) << "\n";

  const std::vector<std::string> head = {
      "STAGE",   "NAME", "SHARE",   "ADVANCE AT", "HALT AT", "SOAK",     "APPROVAL",
      "MEMBERS", "HELD", "OFFERED", "INSTALLED",  "FAILED",  "FORGIVEN", "WITHDRAWN"};
  std::vector<std::vector<std::string>> rows;
  for (const v1::RolloutStageStatus& s : r.stages()) {
    const v1::RolloutStage& p = s.stage();
    const bool current = has_current && s.index() == r.current_stage();
    rows.push_back({
        absl::StrCat(s.index() + 1, current ? " *" : ""),
        Printable(p.name(), 32),
        p.agent_ids_size() > 0 ? absl::StrCat(p.agent_ids_size(), " agents")
                               : absl::StrCat(p.percent(), "%"),
        absl::StrCat(p.success_percent(), "% installed"),
        Thresholds(p),
        absl::StrCat(p.soak_seconds(), "s"),
        p.wait_for_approval() ? "required" : "-",
        absl::StrCat(s.members()),
        absl::StrCat(Count(s, "HELD")),
        absl::StrCat(Count(s, "OFFERED") + Count(s, "DOWNLOADING") + Count(s, "VERIFIED")),
        absl::StrCat(Count(s, "INSTALLED")),
        absl::StrCat(Count(s, "FAILED")),
        absl::StrCat(s.forgiven_failures()),
        absl::StrCat(Count(s, "WITHDRAWN")),
    });
  }
  std::vector<size_t> width(head.size());
  for (size_t c = 0; c < head.size(); ++c) {
    width[c] = head[c].size();
    for (const auto& row : rows) width[c] = std::max(width[c], row[c].size());
  }
  auto line = [&](const std::vector<std::string>& cells) {
    for (size_t c = 0; c < cells.size(); ++c) {
      out << cells[c] << std::string(width[c] - cells[c].size() + 2, ' ');
    }
    out << "\n";
  };
  line(head);
  for (const auto& row : rows) line(row);
}

}  // namespace redflag::ctl
