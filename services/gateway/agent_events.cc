#include "services/gateway/agent_events.h"

#include <chrono>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/log.h"
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

AgentEventsWatcher::AgentEventsWatcher(v1::AgentsService::Stub* agents, StreamRegistry& registry)
    : agents_(agents), registry_(registry), thread_([this] { Loop(); }) {}

AgentEventsWatcher::~AgentEventsWatcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    if (live_ != nullptr) live_->TryCancel();
  }
  thread_.join();
}

void AgentEventsWatcher::Dispatch(const v1::AgentEvent& ev) {
  if (ev.agent_id().empty()) {
    registry_.ForEach([](AgentStream& s) { s.DeliverPending(); });
    return;
  }
  registry_.With(ev.agent_id(), [&ev](AgentStream& s) {
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

void AgentEventsWatcher::Loop() {
  int backoff_ms = 100;
  while (!stop_) {
    grpc::ClientContext ctx;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
      live_ = &ctx;
    }
    auto reader = agents_->Watch(&ctx, v1::WatchAgentsRequest());
    v1::AgentEvent ev;
    while (reader->Read(&ev)) {
      backoff_ms = 100;
      Dispatch(ev);
    }
    grpc::Status s = reader->Finish();
    {
      std::lock_guard<std::mutex> lock(mu_);
      live_ = nullptr;
    }
    if (stop_) return;
    LogWarn(absl::StrCat("agents Watch ended (", s.error_message(), "); reconnecting"));
    std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
    backoff_ms = std::min(backoff_ms * 2, 5000);
    // Events may have been missed while disconnected.
    registry_.ForEach([](AgentStream& st) { st.DeliverPending(); });
  }
}

}  // namespace redflag::gateway
