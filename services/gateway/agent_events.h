// Routes backend events to the agent streams this replica holds: StreamRegistry maps
// agent id → live stream; EventWatcher keeps a Watch stream to a backend open.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "common/log.h"
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

// Holds one server-streaming Watch call open (reconnecting with backoff, on its own
// thread) and hands each event to `on_event`; after every reconnect calls `on_resync`,
// since events may have been missed while disconnected.
template <typename Event>
class EventWatcher {
 public:
  using Open =
      std::function<std::unique_ptr<grpc::ClientReaderInterface<Event>>(grpc::ClientContext*)>;
  EventWatcher(std::string name, Open open, std::function<void(const Event&)> on_event,
               std::function<void()> on_resync)
      : name_(std::move(name)),
        open_(std::move(open)),
        on_event_(std::move(on_event)),
        on_resync_(std::move(on_resync)),
        thread_([this] { Loop(); }) {}

  ~EventWatcher() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
      if (live_ != nullptr) live_->TryCancel();
    }
    thread_.join();
  }

 private:
  void Loop() {
    int backoff_ms = 100;
    while (true) {
      grpc::ClientContext ctx;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stop_) return;
        live_ = &ctx;
      }
      auto reader = open_(&ctx);
      Event ev;
      while (reader->Read(&ev)) {
        backoff_ms = 100;
        on_event_(ev);
      }
      grpc::Status s = reader->Finish();
      {
        std::lock_guard<std::mutex> lock(mu_);
        live_ = nullptr;
        if (stop_) return;
      }
      LogWarn(name_ + " Watch ended (" + s.error_message() + "); reconnecting");
      std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
      backoff_ms = std::min(backoff_ms * 2, 5000);
      on_resync_();
    }
  }

  const std::string name_;
  Open open_;
  std::function<void(const Event&)> on_event_;
  std::function<void()> on_resync_;
  std::mutex mu_;
  bool stop_ = false;
  grpc::ClientContext* live_ = nullptr;  // guarded by mu_
  std::thread thread_;
};

// Acts on an agents-service event for the streams held here.
void DispatchAgentEvent(StreamRegistry& registry, const v1::AgentEvent& ev);

}  // namespace redflag::gateway
