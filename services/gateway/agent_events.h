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

// One live stream per agent across the fleet. Each authorised stream carries a fleet-wide
// sequence number (agents service, AnnounceStream); the highest wins. A newer stream here
// replaces an older one; a CONNECTED event from another replica supersedes an older local
// one; a stream older than one already seen is refused. Streams per agent on this replica
// (including those still before their hello) are capped. Thread-safe; lock order: a
// stream's own mutex may be held when calling Add, never the other way round.
class StreamRegistry {
 public:
  explicit StreamRegistry(int max_streams_per_agent = 4)
      : max_streams_per_agent_(max_streams_per_agent) {}

  // Counts one more open stream for the agent; false (and nothing counted) at the cap.
  bool Admit(const std::string& agent_id);
  void Release(const std::string& agent_id);
  // Registers `stream` (sequence `seq`) as the agent's live stream. Returns the stream that
  // must now be closed — the older one it replaced, or `stream` itself when a newer one is
  // known — with a reference the caller must Unref; nullptr when none.
  [[nodiscard]] AgentStream* Add(const std::string& agent_id, AgentStream* stream, int64_t seq);
  // Removes `stream` if it is still the agent's registered one.
  void Remove(const std::string& agent_id, AgentStream* stream);
  // A stream with sequence `seq` opened somewhere in the fleet: returns the local stream
  // it supersedes (unregistered, with a reference the caller must Unref), or nullptr.
  [[nodiscard]] AgentStream* Supersede(const std::string& agent_id, int64_t seq);
  // Runs `fn` on the agent's stream, if connected here (the stream is kept alive meanwhile).
  void With(const std::string& agent_id, const std::function<void(AgentStream&)>& fn);
  void ForEach(const std::function<void(AgentStream&)>& fn);
  size_t size();

 private:
  struct Live {
    AgentStream* stream;
    int64_t seq;
  };
  struct Seen {
    int64_t seq;
    std::chrono::steady_clock::time_point at;
  };
  // Remembers a sequence announced elsewhere for an agent with no newer stream here, for a
  // minute (a local stream whose authorisation is still in flight may be older).
  void RememberLocked(const std::string& agent_id, int64_t seq);
  const int max_streams_per_agent_;
  std::mutex mu_;
  absl::flat_hash_map<std::string, Live> streams_;
  absl::flat_hash_map<std::string, int> open_;   // streams per agent, pre- and post-hello
  absl::flat_hash_map<std::string, Seen> seen_;  // bounded: swept past 100,000 entries
};

// Holds one server-streaming Watch call open (reconnecting with backoff, on its own
// thread) and hands each event to `on_event`. Events missed while disconnected are made up by
// the backend: every Watch starts with a gap event (KIND_UNSPECIFIED) once its subscription is
// live, so a resync runs once per reconnect that succeeded — not once per failed attempt
// while the backend is away (each of which would have been a resync of every stream).
template <typename Event>
class EventWatcher {
 public:
  using Open =
      std::function<std::unique_ptr<grpc::ClientReaderInterface<Event>>(grpc::ClientContext*)>;
  EventWatcher(std::string name, Open open, std::function<void(const Event&)> on_event)
      : name_(std::move(name)),
        open_(std::move(open)),
        on_event_(std::move(on_event)),
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
    }
  }

  const std::string name_;
  Open open_;
  std::function<void(const Event&)> on_event_;
  std::mutex mu_;
  bool stop_ = false;
  grpc::ClientContext* live_ = nullptr;  // guarded by mu_
  std::thread thread_;
};

// Acts on an agents-service event for the streams held here; a gap (no agent id) calls
// `resync`, which finds the agents owed instructions in batches.
void DispatchAgentEvent(StreamRegistry& registry, const v1::AgentEvent& ev,
                        const std::function<void()>& resync);

}  // namespace redflag::gateway
