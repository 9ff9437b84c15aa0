// One agent's Connect stream (ServerBidiReactor): the protocol, the writes and the lifetime.
// What the stream owes the agent (instructions sent and not acknowledged, fetch rounds) is
// its InstructionOutbox. It never blocks and never parks a thread: backend checks are
// asynchronous and post their results back; one write is in flight at a time, at most
// kMaxQueuedMessages more wait behind it — a stream whose agent stops reading past that is
// ended with RESOURCE_EXHAUSTED rather than holding gateway memory.
//
// Lifetime rule: reference-counted. gRPC holds one reference until OnDone; each pending
// backend call, timer and registry entry holds one; the last Unref deletes. The Phase only
// moves forward; no read or write is started once it is past kOpen (except the writes a
// drain sends), and none at all after Finish: StartRead and the first StartWrite of a burst
// are issued only after checking the phase under mu_.
//
// Instructions: pending ones come from the agents service (signed by the updates service
// at send time, fresh nonce) and from the updates service (offers and revocations, signed
// there); each is re-sent on every new stream until acknowledged, once per stream.
#pragma once

#include <grpcpp/grpcpp.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>

#include <atomic>
#include <deque>
#include <mutex>
#include <optional>

#include "common/jwt.h"
#include "redflag/v1/gateway.grpc.pb.h"
#include "services/gateway/agent_events.h"
#include "services/gateway/authn.h"
#include "services/gateway/backends.h"
#include "services/gateway/check_in_batcher.h"
#include "services/gateway/instruction_outbox.h"
#include "services/gateway/outcome_forwarder.h"
#include "services/gateway/rate_limiter.h"
#include "services/gateway/settings_follower.h"

namespace redflag::gateway {

struct StreamDeps {
  Backends& backends;
  Authenticator& authn;
  CheckInBatcher& batcher;
  EdgeLimits& limits;
  StreamRegistry& registry;
  TimerQueue& timers;
  OutcomeMetrics& outcomes;
  prometheus::Gauge& connected;
  prometheus::Counter& check_ins;
  prometheus::Counter& check_ins_throttled;  // answered with SlowDown, not recorded
  prometheus::Counter& instructions_sent;
  // Rounds in which one stream fetched what its agent is owed with its own backend calls.
  prometheus::Counter& fetch_rounds;
  SettingsFollower& settings;  // the check-in interval in force
};

class AgentStream final : public grpc::ServerBidiReactor<v1::AgentMessage, v1::ServerMessage> {
 public:
  AgentStream(grpc::CallbackServerContext* ctx, StreamDeps deps);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

  void Ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
  void Unref();
  // Fetches, signs and sends the agent's pending instructions (coalesces concurrent calls).
  void DeliverPending();
  // Delivers what is pending (e.g. the block notice), then ends the stream with `status`.
  void DeliverPendingThenClose(const grpc::Status& status);
  // Ends the stream with `status` (e.g. replaced by a newer stream of the same agent).
  void Close(const grpc::Status& status) { End(status); }
  // What the updates service needs to compute this agent's update instructions; false until
  // the hello is authorised or once the stream is ending (UpdateFanOut batches these).
  bool UpdateRequest(v1::PendingInstructionsRequest* out);
  // The agent's id once the hello is authorised; false before and once the stream is ending
  // (AgentResync batches these).
  bool OpenAgentId(std::string* out);
  // Sends the signed update instructions not sent on this stream before.
  void DeliverUpdateInstructions(google::protobuf::RepeatedPtrField<v1::SignedEnvelope>* envs);
  // Finishing or finished: nothing more will be sent.
  bool Ended();

 private:
  // Where the stream is in its life; only moves forward (steps may be skipped).
  enum class Phase {
    kHello,        // reading the first message
    kAuthorizing,  // the hello is with the agents service; no read pending
    kOpen,         // authorised: check-ins, acks and instructions flow
    kDraining,     // ending: sends what is queued, then finishes
    kEnding,       // ending: finishes once the write in flight completes
    kFinished,     // Finish called; waiting for OnDone
    kDone,         // OnDone ran
  };
  // Messages that may wait behind the write in flight (replies and instructions; a healthy
  // agent keeps this near zero).
  static constexpr size_t kMaxQueuedMessages = 64;

  ~AgentStream() override = default;

  void HandleHello(const v1::Hello& hello);
  // The agents service's answer to the hello.
  void OnAuthorized(const grpc::Status& s, const v1::Agent& agent);
  void HandleCheckIn(uint64_t seq, const v1::AgentCheckIn& check_in);
  // Answers a check-in over the rate limit with SlowDown (the stream stays); ends the stream
  // once kMaxIgnoredSlowDowns in a row were ignored.
  void SlowDown(uint64_t seq, const absl::Status& limited);
  void HandleAck(const v1::InstructionAck& ack);
  void HandleVerifyResponse(const v1::VerifyResponse& resp);
  void HandleDeliveryReport(const v1::ReportDeliveryRequest& report);
  void FetchAgentInstructions();
  void FetchUpdateInstructions();
  // The updates service's request for this agent (per-stream fetch and UpdateFanOut alike).
  void FillUpdateRequest(v1::PendingInstructionsRequest* out) const;
  void SignAndSend(v1::Instruction in);
  // Sends an already-signed envelope unless this stream sent that instruction before.
  void SendOnce(v1::SignedEnvelope env);
  // One step of a fetch round ended; acts on what the outbox says once the round is over.
  void StepDone(bool ok);
  void Send(v1::ServerMessage msg);
  // Ends the stream once no write is in flight (with `drain`, once the queue is empty too);
  // later calls are ignored.
  void End(const grpc::Status& status, bool drain = false);
  void ReadNext();
  // Authorised and not ending: instructions may be fetched and sent. Takes mu_.
  bool IsOpen();
  // Whether the phase is past kOpen (ending or over). Requires mu_.
  bool EndingLocked() const { return phase_ >= Phase::kDraining; }

  // Valid only until OnDone: backend callbacks, which may run later, must not use it.
  grpc::CallbackServerContext* ctx_;
  StreamDeps deps_;
  std::atomic<int> refs_{1};

  // Fixed at stream open (or, for platform_, before the phase becomes kOpen).
  const std::string peer_;
  JwtClaims claims_;
  std::string machine_id_;
  std::string version_;
  std::string channel_;
  std::string platform_;
  std::vector<std::string> pinned_key_ids_;
  bool admitted_ = false;  // counted in the registry's per-agent cap (set in the constructor)

  // Read path only (OnReadDone never runs concurrently with itself): no lock.
  static constexpr int kMaxIgnoredSlowDowns = 10;
  int throttled_in_a_row_ = 0;
  v1::AgentMessage incoming_;

  InstructionOutbox outbox_;

  std::mutex mu_;
  Phase phase_ = Phase::kHello;
  grpc::Status finish_status_;
  bool writing_ = false;  // in_flight_ is being written
  v1::ServerMessage in_flight_;
  std::deque<v1::ServerMessage> queue_;
  uint64_t next_seq_ = 1;
  std::shared_ptr<OutcomeForwarder> outcomes_;  // set when the phase becomes kOpen
};

}  // namespace redflag::gateway
