// Coalesces check-ins from all agent streams into RecordCheckIns batches: one backend
// call (and two SQL statements) per batch instead of a database round trip per
// check-in. A batch leaves when it is full or `max_delay` after its first item.
// A batch that fails transiently (the agents service or its database away) is kept and sent
// again with backoff (0.5 s doubling to 2 s) until recorded, so an agent's check-in is
// acknowledged late rather than lost. At most `max_held` check-ins wait (queued or for a
// retry); past that Submit answers RESOURCE_EXHAUSTED at once and counts it as dropped.
// Check-ins still waiting when the batcher is destroyed are answered UNAVAILABLE.
// Submit() never blocks; `done` runs on a gRPC callback thread and must not block.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "redflag/v1/agents.grpc.pb.h"
#include "services/gateway/backend_gate.h"

namespace redflag::gateway {

// Counters a CheckInBatcher keeps up to date (each may be null).
struct CheckInBatcherMetrics {
  prometheus::Gauge* waiting_retry = nullptr;  // check-ins held for a retry
  prometheus::Counter* retried = nullptr;      // check-ins sent again
  prometheus::Counter* dropped = nullptr;      // refused because max_held were waiting
};

class CheckInBatcher {
 public:
  using Done = std::function<void(absl::Status)>;

  using Metrics = CheckInBatcherMetrics;

  // Batches go through `gate` (the agents service's BackendGate).
  CheckInBatcher(v1::AgentsService::Stub* agents, BackendGate* gate, absl::Duration max_delay,
                 size_t max_batch, size_t max_held = 100000, Metrics metrics = {});
  ~CheckInBatcher();  // sends what is queued, then stops

  void Submit(v1::CheckIn check_in, Done done);

 private:
  struct Item {
    v1::CheckIn check_in;
    Done done;
  };
  void Loop();
  void Send(std::vector<Item> items);
  // After a batch's transient failure (a gRPC callback thread): keep it for the next retry.
  void Keep(std::vector<Item> items, const absl::Status& why);
  // A batch of `n` was answered; `recorded`: the next failure starts the backoff again.
  void Answered(size_t n, bool recorded);

  v1::AgentsService::Stub* agents_;
  BackendGate* gate_;
  const absl::Duration max_delay_;
  const size_t max_batch_;
  std::mutex mu_;
  std::condition_variable cv_;
  const size_t max_held_;
  const Metrics metrics_;
  std::vector<Item> pending_;
  std::vector<Item> retry_;  // failed transiently; sent again at retry_at_
  size_t in_flight_ = 0;     // check-ins in batches sent and not answered
  absl::Time retry_at_;
  absl::Duration backoff_ = absl::ZeroDuration();
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace redflag::gateway
