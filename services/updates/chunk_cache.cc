#include "services/updates/chunk_cache.h"

namespace redflag::updates {

ChunkCache::ChunkCache(size_t capacity_bytes, Loader load, Metrics metrics)
    : capacity_(capacity_bytes), load_(std::move(load)), metrics_(metrics) {}

absl::StatusOr<std::shared_ptr<const std::string>> ChunkCache::Get(const std::string& update_id,
                                                                   int64_t seq) {
  Key key{update_id, seq};
  std::shared_ptr<Entry> entry;
  {
    std::unique_lock<std::mutex> lock(mu_);
    auto it = entries_.find(key);
    if (it != entries_.end()) {
      entry = it->second;
      loaded_.wait(lock, [&] { return entry->state != State::kLoading; });
      if (entry->state == State::kFailed) return entry->error;
      ++hits_;
      if (metrics_.hits != nullptr) metrics_.hits->Increment();
      // An entry evicted meanwhile has lru reset to end(): nothing to move.
      if (entry->lru != lru_.end()) lru_.splice(lru_.begin(), lru_, entry->lru);
      return entry->data;
    }
    entry = std::make_shared<Entry>();
    entry->lru = lru_.end();
    entries_.emplace(key, entry);
    ++loads_;
    if (metrics_.loads != nullptr) metrics_.loads->Increment();
  }
  absl::StatusOr<std::string> loaded = load_(update_id, seq);  // no lock held
  std::lock_guard<std::mutex> lock(mu_);
  if (!loaded.ok()) {
    entry->state = State::kFailed;
    entry->error = loaded.status();
    entries_.erase(key);
    loaded_.notify_all();
    return entry->error;
  }
  entry->data = std::make_shared<const std::string>(*std::move(loaded));
  entry->state = State::kReady;
  if (entry->data->size() > capacity_) {
    entries_.erase(key);  // served to this reader and those waiting, never kept
  } else {
    lru_.push_front(key);
    entry->lru = lru_.begin();
    bytes_ += entry->data->size();
    EvictLocked();
    if (metrics_.bytes != nullptr) metrics_.bytes->Set(static_cast<double>(bytes_));
  }
  loaded_.notify_all();
  return entry->data;
}

void ChunkCache::EvictLocked() {
  while (bytes_ > capacity_ && !lru_.empty()) {
    auto it = entries_.find(lru_.back());
    bytes_ -= it->second->data->size();
    it->second->lru = lru_.end();
    entries_.erase(it);
    lru_.pop_back();
  }
}

size_t ChunkCache::bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

int64_t ChunkCache::hits() const {
  std::lock_guard<std::mutex> lock(mu_);
  return hits_;
}

int64_t ChunkCache::loads() const {
  std::lock_guard<std::mutex> lock(mu_);
  return loads_;
}

}  // namespace redflag::updates
