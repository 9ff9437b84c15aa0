// redflag-agent's conversation with the gateway: enroll once with a registration token,
// then hold one Connect stream (hello, periodic check-ins), reconnecting with full-jitter
// exponential backoff so a restarted gateway is not hit by every agent at once.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "agent/state.h"
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
  absl::Duration max_backoff = absl::Seconds(60);
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

  AgentConfig config_;
  StateDir state_dir_;
  std::mutex state_mu_;  // guards state_ between the stream's reader and the main loop
  v1::AgentState state_;
  std::unique_ptr<v1::AgentGateway::Stub> stub_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  grpc::ClientContext* live_ = nullptr;  // guarded by mu_
};

// Full jitter: uniform in [0, min(cap, base * 2^attempt)].
absl::Duration BackoffDelay(int attempt, absl::Duration base, absl::Duration cap);

}  // namespace redflag::agent
