// Routes registry events to the agent streams this replica holds. StreamRegistry maps
// agent id → live stream; AgentEventsWatcher holds one Watch stream to the agents service
// (reconnecting with backoff) and, after every (re)connect, resynchronises all local
// streams because events may have been missed.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "redflag/v1/agents.grpc.pb.h"

namespace redflag::gateway {

class AgentStream;

class StreamRegistry {
 public:
  // The newest stream for an agent wins; Remove only removes that same stream.
  void Add(const std::string& agent_id, AgentStream* stream);
  void Remove(const std::string& agent_id, AgentStream* stream);
  // Runs `fn` on the agent's stream, if connected here (the stream is kept alive meanwhile).
  void With(const std::string& agent_id, const std::function<void(AgentStream&)>& fn);
  void ForEach(const std::function<void(AgentStream&)>& fn);
  size_t size();

 private:
  std::mutex mu_;
  absl::flat_hash_map<std::string, AgentStream*> streams_;
};

class AgentEventsWatcher {
 public:
  AgentEventsWatcher(v1::AgentsService::Stub* agents, StreamRegistry& registry);
  ~AgentEventsWatcher();

 private:
  void Loop();
  void Dispatch(const v1::AgentEvent& ev);
  v1::AgentsService::Stub* agents_;
  StreamRegistry& registry_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  grpc::ClientContext* live_ = nullptr;  // guarded by mu_
  std::thread thread_;
};

}  // namespace redflag::gateway
