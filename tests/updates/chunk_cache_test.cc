// The download chunk cache: one load per chunk however many readers ask at once, bounded
// memory with least-recently-used eviction, failures shared with the waiters but not kept.
#include "services/updates/chunk_cache.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>
#include <vector>

using redflag::updates::ChunkCache;

TEST_CASE("concurrent readers of a missing chunk share one load", "[updates][chunk-cache]") {
  std::atomic<int> loads{0};
  ChunkCache cache(1 << 20, [&](const std::string& id, int64_t seq) -> absl::StatusOr<std::string> {
    ++loads;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // a slow database read
    return id + "/" + std::to_string(seq);
  });
  std::vector<std::thread> readers;
  std::atomic<int> right{0};
  for (int i = 0; i < 16; ++i) {
    readers.emplace_back([&] {
      auto c = cache.Get("pkg", 3);
      if (c.ok() && **c == "pkg/3") ++right;
    });
  }
  for (auto& t : readers) t.join();
  CHECK(right == 16);
  CHECK(loads == 1);
  CHECK(cache.loads() == 1);
  CHECK(cache.hits() == 15);
}

TEST_CASE("the cache stays within its bytes, dropping the least recently used",
          "[updates][chunk-cache]") {
  int loads = 0;
  ChunkCache cache(10, [&](const std::string&, int64_t seq) -> absl::StatusOr<std::string> {
    ++loads;
    return std::string(4, static_cast<char>('a' + seq));
  });
  REQUIRE(cache.Get("p", 0).ok());
  REQUIRE(cache.Get("p", 1).ok());
  REQUIRE(cache.Get("p", 0).ok());  // 0 is now the most recently used
  REQUIRE(cache.Get("p", 2).ok());  // 12 bytes > 10: 1 goes
  CHECK(cache.bytes() == 8);
  CHECK(loads == 3);
  REQUIRE(cache.Get("p", 0).ok());
  CHECK(loads == 3);  // still there
  REQUIRE(cache.Get("p", 1).ok());
  CHECK(loads == 4);  // was dropped, read again
  // A chunk larger than the whole cache is served but never kept.
  ChunkCache tiny(3, [&](const std::string&, int64_t) -> absl::StatusOr<std::string> {
    ++loads;
    return std::string("four");
  });
  CHECK(**tiny.Get("p", 0) == "four");
  CHECK(tiny.bytes() == 0);
}

TEST_CASE("a failed load reaches its waiters and the next reader tries again",
          "[updates][chunk-cache]") {
  std::atomic<int> calls{0};
  ChunkCache cache(1 << 20, [&](const std::string&, int64_t) -> absl::StatusOr<std::string> {
    if (calls++ == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      return absl::UnavailableError("database unavailable");
    }
    return std::string("bytes");
  });
  std::atomic<int> failed{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < 4; ++i) {
    readers.emplace_back([&] {
      if (cache.Get("p", 0).status().code() == absl::StatusCode::kUnavailable) ++failed;
    });
    if (i == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));  // first loads
  }
  for (auto& t : readers) t.join();
  // The first load failed for it and for whoever waited on it; anyone who came after the
  // failure loaded again and succeeded. Nothing failed silently.
  CHECK(failed >= 1);
  auto again = cache.Get("p", 0);
  REQUIRE(again.ok());
  CHECK(**again == "bytes");
}
