#include "services/gateway/agent_events.h"

#include <chrono>
#include <vector>

#include "services/gateway/agent_stream.h"

namespace redflag::gateway {

void StreamRegistry::Add(const std::string& agent_id, AgentStream* stream) {
  stream->Ref();
  AgentStream* old = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto [it, inserted] = streams_.try_emplace(agent_id, stream);
    if (!inserted) {
      old = it->second;
      it->second = stream;
    }
  }
  if (old != nullptr) old->Unref();
}

void StreamRegistry::Remove(const std::string& agent_id, AgentStream* stream) {
  bool removed = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = streams_.find(agent_id);
    if (it != streams_.end() && it->second == stream) {
      streams_.erase(it);
      removed = true;
    }
  }
  if (removed) stream->Unref();
}

void StreamRegistry::With(const std::string& agent_id,
                          const std::function<void(AgentStream&)>& fn) {
  AgentStream* s = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = streams_.find(agent_id);
    if (it == streams_.end()) return;
    s = it->second;
    s->Ref();
  }
  fn(*s);
  s->Unref();
}

void StreamRegistry::ForEach(const std::function<void(AgentStream&)>& fn) {
  std::vector<AgentStream*> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    all.reserve(streams_.size());
    for (auto& [id, s] : streams_) {
      s->Ref();
      all.push_back(s);
    }
  }
  for (AgentStream* s : all) {
    fn(*s);
    s->Unref();
  }
}

size_t StreamRegistry::size() {
  std::lock_guard<std::mutex> lock(mu_);
  return streams_.size();
}

void DispatchAgentEvent(StreamRegistry& registry, const v1::AgentEvent& ev) {
  if (ev.agent_id().empty()) {
    registry.ForEach([](AgentStream& s) { s.DeliverPending(); });
    return;
  }
  registry.With(ev.agent_id(), [&ev](AgentStream& s) {
    switch (ev.kind()) {
      case v1::AgentEvent::BLOCKED:
        s.DeliverPendingThenClose(grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                                               "agent is blocked by an operator or by policy"));
        break;
      case v1::AgentEvent::DELETED:
        s.DeliverPendingThenClose(
            grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "agent was deleted"));
        break;
      default:
        s.DeliverPending();
    }
  });
}

}  // namespace redflag::gateway
