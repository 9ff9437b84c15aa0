#include "tools/fleet/fleet.h"

#include "absl/time/clock.h"
#include "common/tls.h"

namespace redflag::fleet {

Fleet::Fleet(FleetOptions options)
    : options_(std::move(options)),
      ctx_{options_, TlsChannelCredentials(options_.ca_pem), timers_, stats_, live_} {}

Fleet::~Fleet() { StopAll(); }

void Fleet::Start(int n, absl::Duration ramp) {
  int first = size();
  for (int i = 0; i < n; ++i) agents_.push_back(std::make_unique<SimAgent>(ctx_, first + i));
  for (int i = 0; i < n; ++i) {
    SimAgent* a = agents_[static_cast<size_t>(first) + static_cast<size_t>(i)].get();
    absl::Duration at = n > 1 ? ramp * i / n : absl::ZeroDuration();
    timers_.RunAfter(at, [a](bool fired) {
      if (fired) a->Start();
    });
  }
}

int Fleet::ConnectedSince(absl::Time since) {
  int n = 0;
  for (auto& a : agents_) {
    absl::Time t = a->connected_at();
    if (t != absl::InfinitePast() && t >= since) ++n;
  }
  return n;
}

int Fleet::CountIn(SimAgent::State state) {
  int n = 0;
  for (auto& a : agents_) n += a->state() == state ? 1 : 0;
  return n;
}

bool Fleet::WaitConnected(int n, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (ConnectedSince() < n) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return true;
}

void Fleet::StopAll(absl::Duration timeout) {
  if (stopped_) return;
  stopped_ = true;
  // Timers first (no reconnect or check-in starts afterwards), then the agents' calls.
  timers_.Stop();
  for (auto& a : agents_) a->Stop();
  absl::Time deadline = absl::Now() + timeout;
  while (live_.load() > 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
}

}  // namespace redflag::fleet
