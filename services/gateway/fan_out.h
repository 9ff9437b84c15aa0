// Delivers what a feed event changed for (potentially) every agent stream this replica holds
// — a publication, a revocation, a key change, or a gap in a feed — with one batched backend
// call per up to `batch_size` streams instead of calls per stream: the work per event grows
// with the number of batches, not with the fleet. Events that arrive while a fan-out runs
// are folded into one more run after it (no stampede). A batch that fails is retried with
// backoff until it succeeds or none of its streams is still open; instructions a stream
// already sent are not sent again (AgentStream::SendOnce).
//
// What a batch asks and how its reply reaches the streams is the Kind:
//   UpdateInstructions  the updates service signs each agent's offers, revocations and key
//                       announcements (PendingInstructionsBatch), handed to the streams;
//   AgentsOwed          the agents service names the agents with queued instructions
//                       (AgentsOwedInstructions); only those streams fetch their own.
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
#include "prometheus/counter.h"
#include "redflag/v1/agents.grpc.pb.h"
#include "redflag/v1/updates.grpc.pb.h"
#include "services/gateway/agent_events.h"
#include "services/gateway/backends.h"

namespace redflag::gateway {

// A batch of the updates feed: each agent's update instructions, signed for it.
struct UpdateInstructions {
  using Request = v1::PendingInstructionsBatchRequest;
  using Response = v1::PendingInstructionsBatchResponse;
  static constexpr const char* kFeed = "updates";
  // Adds the stream's entry to `req`; false leaves the stream out (not authorised, ending).
  static bool Add(AgentStream& s, Request* req);
  static BackendGate& Gate(Backends& b);
  static void Call(Backends& b, grpc::ClientContext* ctx, const Request* req, Response* resp,
                   Completion done);
  // streams[i] asked as the request's entry i.
  static void Deliver(const std::vector<AgentStream*>& streams, const Request& req, Response* resp);
};

// A batch of the agents feed's resync: which agents are owed instructions.
struct AgentsOwed {
  using Request = v1::AgentsOwedRequest;
  using Response = v1::AgentsOwedResponse;
  static constexpr const char* kFeed = "agents";
  static bool Add(AgentStream& s, Request* req);
  static BackendGate& Gate(Backends& b);
  static void Call(Backends& b, grpc::ClientContext* ctx, const Request* req, Response* resp,
                   Completion done);
  static void Deliver(const std::vector<AgentStream*>& streams, const Request& req, Response* resp);
};

template <typename Kind>
class FanOut {
 public:
  // `calls` (may be null) counts the batched backend calls made, retries included.
  FanOut(StreamRegistry& registry, Backends& backends, TimerQueue& timers,
         prometheus::Counter* calls = nullptr, size_t batch_size = 500);
  // Something changed for (potentially) every stream: fetch and deliver, batched.
  void Trigger();

 private:
  struct Batch;
  enum class State { kIdle, kRunning, kRunningAgain };

  void Run();
  void Send(std::shared_ptr<Batch> batch);
  // One batch's first attempt finished (delivered or handed to its retries).
  void BatchFinished();

  StreamRegistry& registry_;
  Backends& backends_;
  TimerQueue& timers_;
  prometheus::Counter* const calls_;
  const size_t batch_size_;
  std::mutex mu_;
  State state_ = State::kIdle;
  size_t running_batches_ = 0;
};

using UpdateFanOut = FanOut<UpdateInstructions>;
using AgentResync = FanOut<AgentsOwed>;

}  // namespace redflag::gateway
