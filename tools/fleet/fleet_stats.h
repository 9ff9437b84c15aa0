// What a simulated fleet measured: latency samples (milliseconds) by name, errors by
// status code and where they happened, and per-update delivery milestones per agent.
// Thread-safe; every recording is O(1) and never blocks on I/O.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace redflag::fleet {

struct Percentiles {
  size_t count = 0;
  double p50 = 0, p95 = 0, p99 = 0, max = 0;
};
Percentiles Summarise(std::vector<double> samples_ms);

// When one agent passed each step of one update (InfinitePast until it did).
struct DeliveryTimes {
  absl::Time offer_verified = absl::InfinitePast();
  absl::Time downloaded = absl::InfinitePast();
  absl::Time installed_reported = absl::InfinitePast();
  std::string failure;  // set when the agent refused or failed the update
};

class FleetStats {
 public:
  void Sample(const std::string& name, absl::Duration d);
  void Error(const std::string& where, const std::string& code);
  void Count(const std::string& name);  // one more of `name`
  int64_t Counted(const std::string& name);
  void Delivery(const std::string& update_id, int agent, const DeliveryTimes& t);

  std::vector<double> Samples(const std::string& name);
  void ClearSamples(const std::string& name);
  std::map<std::string, int64_t> Errors();  // "where/CODE" -> count
  void ClearErrors();
  std::map<int, DeliveryTimes> Deliveries(const std::string& update_id);

 private:
  std::mutex mu_;
  std::map<std::string, std::vector<double>> samples_;
  std::map<std::string, int64_t> errors_;
  std::map<std::string, int64_t> counts_;
  std::map<std::string, std::map<int, DeliveryTimes>> deliveries_;
};

}  // namespace redflag::fleet
