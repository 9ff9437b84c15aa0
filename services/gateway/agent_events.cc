#include "services/gateway/agent_events.h"

#include <chrono>
#include <vector>

#include "absl/strings/numbers.h"
#include "services/gateway/agent_stream.h"

namespace redflag::gateway {

bool StreamRegistry::Admit(const std::string& agent_id) {
  std::lock_guard<std::mutex> lock(mu_);
  int& n = open_[agent_id];
  if (n >= max_streams_per_agent_) return false;
  ++n;
  return true;
}

void StreamRegistry::Release(const std::string& agent_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = open_.find(agent_id);
  if (it != open_.end() && --it->second <= 0) open_.erase(it);
}

void StreamRegistry::RememberLocked(const std::string& agent_id, int64_t seq) {
  auto now = std::chrono::steady_clock::now();
  if (seen_.size() >= 100000) {
    absl::erase_if(seen_,
                   [now](const auto& kv) { return now - kv.second.at > std::chrono::minutes(1); });
    if (seen_.size() >= 100000) seen_.clear();  // a flood: forget rather than grow
  }
  Seen& s = seen_[agent_id];
  if (seq > s.seq) s = {seq, now};
}

AgentStream* StreamRegistry::Add(const std::string& agent_id, AgentStream* stream, int64_t seq) {
  std::lock_guard<std::mutex> lock(mu_);
  auto seen = seen_.find(agent_id);
  if (seen != seen_.end() && seen->second.seq > seq) {
    stream->Ref();
    return stream;  // a newer stream already opened elsewhere
  }
  auto [it, inserted] = streams_.try_emplace(agent_id, Live{stream, seq});
  if (inserted) {
    stream->Ref();
    return nullptr;
  }
  if (it->second.seq > seq) {
    stream->Ref();
    return stream;  // the registered one is newer
  }
  AgentStream* old = it->second.stream;  // the registry's reference passes to the caller
  stream->Ref();
  it->second = Live{stream, seq};
  return old;
}

void StreamRegistry::Remove(const std::string& agent_id, AgentStream* stream) {
  bool removed = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = streams_.find(agent_id);
    if (it != streams_.end() && it->second.stream == stream) {
      streams_.erase(it);
      removed = true;
    }
  }
  if (removed) stream->Unref();
}

AgentStream* StreamRegistry::Supersede(const std::string& agent_id, int64_t seq) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = streams_.find(agent_id);
  if (it == streams_.end()) {
    RememberLocked(agent_id, seq);
    return nullptr;
  }
  if (it->second.seq >= seq) return nullptr;  // our own announcement, or an older one
  AgentStream* old = it->second.stream;
  streams_.erase(it);
  RememberLocked(agent_id, seq);
  return old;
}

void StreamRegistry::With(const std::string& agent_id,
                          const std::function<void(AgentStream&)>& fn) {
  AgentStream* s = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = streams_.find(agent_id);
    if (it == streams_.end()) return;
    s = it->second.stream;
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
    for (auto& [id, live] : streams_) {
      live.stream->Ref();
      all.push_back(live.stream);
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

void DispatchAgentEvent(StreamRegistry& registry, const v1::AgentEvent& ev,
                        const std::function<void()>& resync) {
  if (ev.kind() == v1::AgentEvent::SETTINGS_CHANGED) return;  // not about any stream
  if (ev.agent_id().empty()) {
    resync();
    return;
  }
  if (ev.kind() == v1::AgentEvent::CONNECTED) {
    int64_t seq = 0;
    if (!absl::SimpleAtoi(ev.detail(), &seq)) return;
    if (AgentStream* old = registry.Supersede(ev.agent_id(), seq)) {
      old->Close(
          grpc::Status(grpc::StatusCode::ABORTED, "replaced by a newer stream for this agent"));
      old->Unref();
    }
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
