// Delivers what an update event changed (a publication, a revocation, a key change, or a gap
// in the feed) to the agent streams this replica holds, with one batched
// PendingInstructionsBatch call per up to `batch_size` streams instead of two backend calls
// per stream: the work per event grows with the number of batches, and the updates service
// reads the key ring once and runs its statements per batch. Events that arrive while a
// fan-out runs are folded into one more run after it (no stampede). A batch that fails is
// retried with backoff until it succeeds or none of its streams is still open; instructions a
// stream already sent are not sent again (AgentStream::SendOnce).
//
// Thread-safety: Trigger may be called from any thread. Lifetime: each batch holds a
// reference on its streams until it is delivered or given up; callbacks run on gRPC's and the
// TimerQueue's threads, so the fan-out must outlive the gate's in-flight calls and the
// TimerQueue's Stop() (main destroys it after both).
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "common/timer_queue.h"
#include "services/gateway/agent_events.h"
#include "services/gateway/backends.h"

namespace redflag::gateway {

class UpdateFanOut {
 public:
  UpdateFanOut(StreamRegistry& registry, Backends& backends, TimerQueue& timers,
               size_t batch_size = 500);
  // Something changed for (potentially) every stream: fetch and deliver, batched.
  void Trigger();

  // Backend calls made so far (for tests and the metric).
  int64_t batches_sent() const;

 private:
  struct Batch;
  enum class State { kIdle, kRunning, kRunningAgain };

  void Run();
  void Send(std::shared_ptr<Batch> batch);
  void Delivered(const std::shared_ptr<Batch>& batch);
  // One batch's first attempt finished (delivered or handed to its retries).
  void BatchFinished();

  StreamRegistry& registry_;
  Backends& backends_;
  TimerQueue& timers_;
  const size_t batch_size_;
  mutable std::mutex mu_;
  State state_ = State::kIdle;
  size_t running_batches_ = 0;
  int64_t batches_sent_ = 0;
};

}  // namespace redflag::gateway
