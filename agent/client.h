// redflag-agent's conversation with the gateway: enroll once with a registration token,
// then hold one Connect stream (hello, periodic check-ins), reconnecting with full-jitter
// exponential backoff so a restarted gateway is not hit by every agent at once.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "agent/backoff.h"
#include "agent/state.h"
#include "agent/updater.h"
#include "redflag/v1/gateway.grpc.pb.h"

namespace redflag::agent {

struct AgentConfig {
  std::string server;              // host:port of the gateway
  std::string ca_pem;              // CA that issued the gateway's certificate
  std::string registration_token;  // needed only to enroll
  std::string machine_id;          // SHA-256 fingerprint hex
  std::string version;             // reported agent version
  std::string hostname;
  std::string platform;
  std::string pinned_key_id;  // optional: required signing key fingerprint
  // Recomputes the fingerprint (for the server's verify requests).
  std::function<absl::StatusOr<std::string>()> fingerprint;
  // This process's argv, to re-exec after a self-update.
  std::vector<std::string> argv;
  // A self-updated binary that has not checked in by then is rolled back.
  absl::Duration self_update_confirm_within = absl::Seconds(60);
  // A new agent binary's canary run (`--self_test`) that has not exited by then is killed
  // and the update refused.
  absl::Duration self_test_timeout = absl::Seconds(10);
  absl::Duration max_backoff = absl::Seconds(60);
  std::string channel = "stable";
  std::string install_dir;  // where packages are installed (atomic rename)
};

class AgentClient {
 public:
  AgentClient(AgentConfig config, StateDir state);

  // Enrolls when the state directory holds no credentials.
  absl::Status EnsureEnrolled();
  // Runs streams until Stop(); returns when stopped.
  void Run();
  // Thread-safe; wakes Run() and cancels the live stream.
  void Stop();

 private:
  // One stream's life; returns how it ended.
  absl::Status RunStream();
  absl::Status RefreshCredentials();
  // Verifies and applies one signed instruction; returns the reply to send, if any.
  std::optional<v1::AgentMessage> HandleInstruction(const v1::SignedEnvelope& envelope);
  bool SleepUnlessStopped(absl::Duration d);
  // Writes on the live stream, if any (serialised with every other write).
  bool SendOnStream(v1::AgentMessage msg);
  void ReportDelivery(const std::string& delivery_id, v1::DeliveryState state,
                      const std::string& code = "", const std::string& reason = "");
  // The update worker: applies queued offers one at a time.
  void UpdateLoop();
  void ApplyOffer(const std::string& instruction_id, const v1::UpdateOffer& offer);
  // Self-update of kind AGENT: canary, swap, re-exec. Returns only on failure.
  std::optional<UpdateFailure> SelfUpdate(const std::string& instruction_id,
                                          const std::string& delivery_id, const v1::Manifest& m);
  // After a restart with a self-update pending: confirm it on the first acknowledged
  // check-in, or roll back when that does not happen in time.
  void WatchPendingSelfUpdate();
  void OnCheckInAcknowledged();

  AgentConfig config_;
  StateDir state_dir_;
  std::mutex state_mu_;  // guards state_ between the stream's reader and the main loop
  v1::AgentState state_;
  // The one channel to the gateway. gRPC's own reconnect backoff is reset before every
  // attempt the agent makes (stream or download), so the agent's full-jitter backoff is the
  // only one pacing reconnects: an attempt made after the gateway is back connects at once.
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::AgentGateway::Stub> stub_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  grpc::ClientContext* live_ = nullptr;  // guarded by mu_

  std::mutex stream_mu_;  // guards stream_ and serialises writes on it
  grpc::ClientReaderWriter<v1::AgentMessage, v1::ServerMessage>* stream_ = nullptr;
  std::atomic<uint64_t> seq_{1};

  struct PendingOffer {
    std::string instruction_id;
    v1::UpdateOffer offer;
  };
  std::mutex offers_mu_;
  std::condition_variable offers_cv_;
  std::deque<PendingOffer> offers_;
  std::set<std::string> queued_ids_;  // queued or in progress: not queued twice
  std::atomic<bool> self_update_settled_{false};
};

// The stream message reporting a delivery's progress (`code` and `reason` for FAILED).
v1::AgentMessage DeliveryReportMessage(const std::string& delivery_id, v1::DeliveryState state,
                                       const std::string& code = "",
                                       const std::string& reason = "");

}  // namespace redflag::agent
