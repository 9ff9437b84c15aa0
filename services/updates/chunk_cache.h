// Package bytes for downloads, read from PostgreSQL once per updates replica: a bounded LRU of
// whole chunks keyed by (update id, chunk number). A missing chunk is loaded by the first
// reader, holding a database connection only for that one read; readers arriving meanwhile
// wait for that load instead of starting their own, so a hundred agents downloading one
// package cost one read per chunk. Published packages never change, so entries never go
// stale (revocation is checked per download, before any byte). When full, the least recently
// used chunks are dropped; a chunk larger than the whole capacity is served uncached.
// Thread-safe; the loader runs without the cache's lock held.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"

namespace redflag::updates {

// Exported as they change when given (redflag_updates_chunk_cache_*); none in unit tests.
struct ChunkCacheMetrics {
  prometheus::Counter* hits = nullptr;
  prometheus::Counter* loads = nullptr;
  prometheus::Gauge* bytes = nullptr;
};

class ChunkCache {
 public:
  using Loader =
      std::function<absl::StatusOr<std::string>(const std::string& update_id, int64_t seq)>;
  using Metrics = ChunkCacheMetrics;
  ChunkCache(size_t capacity_bytes, Loader load, Metrics metrics = Metrics());

  // The chunk's bytes, from memory or loaded once; a failed load is reported to every reader
  // that waited for it and is not remembered (the next reader tries again).
  absl::StatusOr<std::shared_ptr<const std::string>> Get(const std::string& update_id, int64_t seq);

  size_t bytes() const;
  int64_t hits() const;
  int64_t loads() const;

 private:
  using Key = std::pair<std::string, int64_t>;
  enum class State { kLoading, kReady, kFailed };
  struct Entry {
    State state = State::kLoading;
    std::shared_ptr<const std::string> data;
    absl::Status error;
    std::list<Key>::iterator lru;  // valid once kReady and cached
  };

  void EvictLocked();

  const size_t capacity_;
  const Loader load_;
  const Metrics metrics_;
  mutable std::mutex mu_;
  std::condition_variable loaded_;
  std::map<Key, std::shared_ptr<Entry>> entries_;
  std::list<Key> lru_;  // most recently used first; ready entries only
  size_t bytes_ = 0;
  int64_t hits_ = 0;
  int64_t loads_ = 0;
};

}  // namespace redflag::updates
