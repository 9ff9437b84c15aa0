// Forwards one agent's outcomes — instruction acks, delivery reports, verify results — to
// the backends in the order the agent sent them: one call in flight per agent, the next only
// after the previous was recorded, a transient failure (UNAVAILABLE, DEADLINE_EXCEEDED,
// RESOURCE_EXHAUSTED, ABORTED, INTERNAL) retried with capped exponential backoff. The
// backends treat every outcome idempotently, so a retry after a lost reply changes nothing.
// Each stream has its own forwarder; after a reconnect the previous one may still be
// retrying while the new one sends, and the updates service's monotonic recording of
// delivery states (a report overtaken by a later state changes nothing) keeps the result
// exact across that overlap.
//
// Lifetime: shared. The agent's stream holds one reference, each call in flight and each
// scheduled retry another, so queued outcomes are still delivered after the stream ended.
// An outcome is dropped (logged and counted) only when the queue is full (kMaxQueued), when
// the backend refuses it for good (e.g. NOT_FOUND), when it has been retried for longer
// than kGiveUpAfter, or when the gateway stops. Thread-safe.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>

#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <variant>

#include "absl/time/time.h"
#include "common/actor.h"
#include "common/timer_queue.h"
#include "redflag/v1/agents.pb.h"
#include "redflag/v1/updates.pb.h"
#include "services/gateway/backends.h"

namespace redflag::gateway {

struct OutcomeMetrics {
  prometheus::Gauge& pending;     // outcomes queued or in flight, all agents
  prometheus::Counter& retried;   // attempts repeated after a transient failure
  prometheus::Counter& dropped;   // outcomes given up (see the header comment)
  prometheus::Counter& recorded;  // outcomes the backends accepted
};

class OutcomeForwarder : public std::enable_shared_from_this<OutcomeForwarder> {
 public:
  using Outcome = std::variant<v1::AckInstructionRequest, v1::UpdateInstructionAck,
                               v1::ReportDeliveryRequest, v1::RecordVerifyRequest>;
  static constexpr size_t kMaxQueued = 256;
  static constexpr absl::Duration kGiveUpAfter = absl::Minutes(10);
  // Retries back off from 250 ms to this (jittered): short, so an outcome is recorded within
  // seconds of the database or the service coming back.
  static constexpr absl::Duration kMaxRetryDelay = absl::Seconds(3);

  OutcomeForwarder(Backends& backends, TimerQueue& timers, OutcomeMetrics& metrics, Actor agent);
  ~OutcomeForwarder();

  // Queues an outcome (its agent_id is already the authenticated agent's). False when the
  // queue is full: the outcome was dropped and counted.
  bool Push(Outcome outcome);
  size_t queued();

 private:
  void SendFront();  // requires sending_ set by the caller
  void OnResult(const grpc::Status& s);
  // One gated backend call for `req`; `issue(ctx, req*, resp*, cb)` starts it.
  template <typename Resp, typename Req, typename Issue>
  void Send(BackendGate& gate, const Req& req, std::function<void(const grpc::Status&)> done,
            Issue issue);

  Backends& backends_;
  TimerQueue& timers_;
  OutcomeMetrics& metrics_;
  const Actor agent_;
  std::mutex mu_;
  std::deque<Outcome> queue_;  // front is in flight while sending_
  bool sending_ = false;
  int attempt_ = 0;
  absl::Time first_attempt_;
};

// Capped exponential backoff with jitter in [50 %, 100 %]: base * 2^attempt, at most cap;
// the jitter keeps a fleet's retries out of step.
absl::Duration RetryDelay(int attempt, absl::Duration base, absl::Duration cap);

// Whether a backend failure may succeed on retry (it says nothing about the request).
bool TransientFailure(grpc::StatusCode code);

}  // namespace redflag::gateway
