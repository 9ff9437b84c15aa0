// PostgreSQL LISTEN on a dedicated connection, delivering NOTIFY payloads to a callback
// from one background thread. Waits on the connection's socket (poll), not a sleep loop;
// reconnects after a lost connection and then reports a gap (payload empty) so the
// subscriber can resynchronise.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "common/config.h"

namespace redflag {

class PgListener {
 public:
  using Callback = std::function<void(const std::string& payload)>;

  PgListener(DbConfig config, std::string channel, Callback callback);
  ~PgListener();  // stops the thread

  // Connects and starts listening; UNAVAILABLE when the first connection fails.
  absl::Status Start();

 private:
  void Loop();
  bool Connect();
  DbConfig config_;
  std::string channel_;
  Callback callback_;
  std::atomic<bool> stop_{false};
  void* conn_ = nullptr;  // PGconn*, owned by the thread after Start()
  std::thread thread_;
};

// NOTIFY `channel` with `payload` inside the caller's transaction (delivered on commit).
absl::Status Notify(class PgConnection& conn, const std::string& channel,
                    const std::string& payload);

}  // namespace redflag
