#include "tools/fleet/fleet_stats.h"

#include <algorithm>
#include <cmath>

namespace redflag::fleet {

Percentiles Summarise(std::vector<double> v) {
  Percentiles p;
  p.count = v.size();
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    // Nearest rank: the smallest sample with at least q of all samples at or below it.
    auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
    return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
  };
  p.p50 = at(0.50);
  p.p95 = at(0.95);
  p.p99 = at(0.99);
  p.max = v.back();
  return p;
}

void FleetStats::Sample(const std::string& name, absl::Duration d) {
  std::lock_guard<std::mutex> lock(mu_);
  samples_[name].push_back(absl::ToDoubleMilliseconds(d));
}

void FleetStats::Count(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  ++counts_[name];
}

int64_t FleetStats::Counted(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = counts_.find(name);
  return it == counts_.end() ? 0 : it->second;
}

void FleetStats::Error(const std::string& where, const std::string& code) {
  std::lock_guard<std::mutex> lock(mu_);
  ++errors_[where + "/" + code];
}

void FleetStats::Delivery(const std::string& update_id, int agent, const DeliveryTimes& t) {
  std::lock_guard<std::mutex> lock(mu_);
  deliveries_[update_id][agent] = t;
}

std::vector<double> FleetStats::Samples(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = samples_.find(name);
  return it == samples_.end() ? std::vector<double>() : it->second;
}

void FleetStats::ClearSamples(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  samples_.erase(name);
}

std::map<std::string, int64_t> FleetStats::Errors() {
  std::lock_guard<std::mutex> lock(mu_);
  return errors_;
}

void FleetStats::ClearErrors() {
  std::lock_guard<std::mutex> lock(mu_);
  errors_.clear();
}

std::map<int, DeliveryTimes> FleetStats::Deliveries(const std::string& update_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = deliveries_.find(update_id);
  return it == deliveries_.end() ? std::map<int, DeliveryTimes>() : it->second;
}

}  // namespace redflag::fleet
