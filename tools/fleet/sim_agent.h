// A simulated agent for fleet tests and benchmarks: registers with a token, holds one
// Connect stream on its own TLS connection (gRPC callback API, no thread of its own),
// checks in at the interval HelloAck asks, verifies every instruction exactly as
// redflag-agent does (agent/instruction_verifier, agent/updater's CheckManifest — one
// implementation), downloads offered packages and checks size and SHA-256, reports
// DOWNLOADING / VERIFIED / INSTALLED and acknowledges. Reconnects with the real agent's
// full-jitter backoff. Nothing is written to disk.
//
// Lifetimes: a SimAgent is owned by its Fleet and outlives its reactors (the Fleet waits
// for every reactor to end before destroying agents). A ConnectStream is reference-counted
// (gRPC's reference is released in OnDone; a caller that found it under the agent's lock
// takes one before using it outside the lock); it holds one hold from StartCall until reads
// ended AND no write is in flight, so no write is ever started after its OnDone. A
// DownloadCall deletes itself in OnDone. No reactor operation is started while the agent's
// lock is held: gRPC may run a reaction inline from a Start* call.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "absl/time/time.h"
#include "common/timer_queue.h"
#include "redflag/v1/agent_state.pb.h"
#include "redflag/v1/gateway.grpc.pb.h"
#include "tools/fleet/fleet_stats.h"

namespace redflag::fleet {

struct FleetOptions {
  // The gateway, host:port; several separated by commas split the fleet between replicas
  // (agent i connects to the (i mod k)-th).
  std::string target;
  std::string ca_pem;     // CA of the gateway's certificate
  std::string authority;  // TLS name override; empty: the target's host
  std::vector<std::string> registration_tokens;
  int seats_per_token = 50;
  std::string platform = "Linux-x86_64";
  std::string channel = "stable";
  std::string version = "0.2.0";
  std::string run_id = "fleet";  // part of every synthetic fingerprint
  absl::Duration backoff_base = absl::Seconds(1);
  absl::Duration backoff_cap = absl::Seconds(60);
  // Rate scenario: send the next check-in as soon as the previous one is acknowledged.
  bool flood_check_ins = false;
  // When set and true for a verified package on agent `index` (its place in the fleet),
  // its install is reported FAILED (code "install"), as a package that breaks on the
  // machine would be (rollout tests). Called on gRPC's threads: it must be thread-safe.
  std::function<bool(const v1::Manifest&, int index)> install_fails;
};

// What a Fleet gives its agents.
struct FleetContext {
  const FleetOptions& options;
  std::shared_ptr<grpc::ChannelCredentials> creds;
  TimerQueue& timers;
  FleetStats& stats;
  std::atomic<int>& live_reactors;  // the Fleet waits for 0 before destroying agents
};

class SimAgent {
 public:
  enum class State { kIdle, kRegistering, kConnecting, kConnected, kBackoff, kFailed, kStopped };

  SimAgent(FleetContext& ctx, int index);
  SimAgent(const SimAgent&) = delete;
  SimAgent& operator=(const SimAgent&) = delete;

  void Start();  // registers (once), then connects
  void Stop();   // ends the stream; no reconnect
  State state();
  // When the current stream's HelloAck arrived (InfinitePast when not connected).
  absl::Time connected_at();
  int index() const { return index_; }
  // The check-in interval the server last asked for (HelloAck or CheckInAck), seconds.
  int check_in_interval();
  std::string agent_id();

 private:
  class ConnectStream;
  class DownloadCall;
  friend class ConnectStream;
  friend class DownloadCall;

  void Register();
  void Connect();
  void ScheduleReconnect(const grpc::Status& why);
  void OnHelloAck(ConnectStream* s, const v1::HelloAck& ack);
  void OnCheckInAck(ConnectStream* s, const v1::CheckInAck& ack);
  void OnInstruction(const v1::SignedEnvelope& env);
  void OnStreamDone(ConnectStream* s, const grpc::Status& status);
  void CheckInTick(uint64_t generation);
  // The live stream with a reference taken, if it is ready for messages (after HelloAck).
  ConnectStream* LiveStream();
  void SendCheckIn(ConnectStream* s);
  // Sends an outcome on the live stream, or keeps it until the next one.
  void SendOutcome(v1::AgentMessage msg);
  void StartDownload(const std::string& instruction_id, const v1::UpdateOffer& offer,
                     const v1::Manifest& m, int attempt);
  void OnDownloadDone(const std::string& instruction_id, const v1::UpdateOffer& offer,
                      const v1::Manifest& m, int attempt, const grpc::Status& s, int64_t bytes,
                      const std::string& sha256);
  void FinishOffer(const std::string& instruction_id, const std::string& delivery_id,
                   const std::string& update_id, const std::string& failure_code,
                   const std::string& failure);
  void Report(const std::string& delivery_id, v1::DeliveryState state, const std::string& code = "",
              const std::string& reason = "");
  void Ack(const std::string& id, bool applied, const std::string& error = "");

  FleetContext& fleet_;
  const int index_;
  const std::string machine_id_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::AgentGateway::Stub> stub_;

  std::mutex mu_;
  State state_ = State::kIdle;
  bool stopping_ = false;
  int attempt_ = 0;                  // consecutive failed connects/registrations, for the backoff
  v1::AgentState agent_state_;       // credentials, pinned keys, nonces, applied ids
  ConnectStream* stream_ = nullptr;  // the live stream, until its OnDone
  uint64_t generation_ = 0;          // of the live stream, for its check-in timer
  int interval_seconds_ = 30;
  absl::Time connect_started_;
  absl::Time connected_at_ = absl::InfinitePast();
  std::map<uint64_t, absl::Time> check_ins_in_flight_;  // seq -> sent at
  std::deque<v1::AgentMessage> outbox_;                 // outcomes waiting for a stream
  std::set<std::string> offers_in_progress_;
  std::map<std::string, DeliveryTimes> deliveries_;  // update id -> milestones
};

}  // namespace redflag::fleet
