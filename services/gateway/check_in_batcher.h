// Coalesces check-ins from all agent streams into RecordCheckIns batches: one backend
// call (and two SQL statements) per batch instead of a database round trip per
// check-in. A batch leaves when it is full or `max_delay` after its first item.
// Submit() never blocks; `done` runs on a gRPC callback thread and must not block.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "redflag/v1/agents.grpc.pb.h"
#include "services/gateway/backend_gate.h"

namespace redflag::gateway {

class CheckInBatcher {
 public:
  using Done = std::function<void(absl::Status)>;

  // Batches go through `gate` (the agents service's BackendGate).
  CheckInBatcher(v1::AgentsService::Stub* agents, BackendGate* gate, absl::Duration max_delay,
                 size_t max_batch);
  ~CheckInBatcher();  // sends what is queued, then stops

  void Submit(v1::CheckIn check_in, Done done);

 private:
  struct Item {
    v1::CheckIn check_in;
    Done done;
  };
  void Loop();
  void Send(std::vector<Item> items);

  v1::AgentsService::Stub* agents_;
  BackendGate* gate_;
  const absl::Duration max_delay_;
  const size_t max_batch_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Item> pending_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace redflag::gateway
