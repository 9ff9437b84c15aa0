// The agent's update pipeline without a network: manifest checks in order, resumable
// download, size and checksum checks, atomic install, nothing installed on failure.
#include "agent/updater.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "common/crypto.h"
#include "common/encoding.h"
#include "common/status.h"

using namespace redflag;
using namespace redflag::agent;

namespace {

struct Env {
  SigningKey key = *SigningKey::FromSeed(std::string(32, 'u'));
  v1::AgentState state;
  std::string dir;
  Env() {
    REQUIRE(InitCrypto().ok());
    v1::SigningKey* k = state.add_pinned_keys();
    k->set_key_id(key.KeyId());
    k->set_public_key(key.PublicKey());
    dir = (std::filesystem::temp_directory_path() / ("updater-" + HexEncode(RandomBytes(6))))
              .string();
  }
  ~Env() { std::filesystem::remove_all(dir); }

  v1::Manifest Manifest(const std::string& bytes, const std::string& version = "1.0.0") {
    v1::Manifest m;
    m.set_update_id("u-" + HexEncode(RandomBytes(4)));
    m.set_name("pkg");
    m.set_version(version);
    m.set_kind(v1::PACKAGE);
    m.set_size(static_cast<int64_t>(bytes.size()));
    m.set_sha256(Sha256Hex(bytes));
    return m;
  }
  v1::SignedEnvelope Signed(const v1::Manifest& m) {
    return SignEnvelope(key, "redflag.v1.Manifest", m.SerializeAsString());
  }
};

// Serves `bytes` in 1000-byte chunks; the first call stops after `break_after` bytes.
struct FlakyServer {
  std::string bytes;
  int64_t break_after;
  std::vector<int64_t> offsets_asked;
  Fetch fetch() {
    return [this](int64_t offset, const std::function<bool(const v1::DownloadChunk&)>& sink) {
      offsets_asked.push_back(offset);
      for (int64_t off = offset; off < static_cast<int64_t>(bytes.size()); off += 1000) {
        if (offsets_asked.size() == 1 && off >= break_after) {
          return absl::UnavailableError("connection reset");
        }
        v1::DownloadChunk c;
        c.set_offset(off);
        c.set_data(bytes.substr(static_cast<size_t>(off), 1000));
        if (!sink(c)) return absl::CancelledError("sink stopped");
      }
      return absl::OkStatus();
    };
  }
};

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST_CASE("a broken download resumes where it stopped and installs atomically", "[updater]") {
  Env e;
  FlakyServer server{RandomBytes(10'500), 4000, {}};
  v1::Manifest m = e.Manifest(server.bytes);
  std::optional<UpdateFailure> f =
      DownloadVerifyInstall(m, server.fetch(), e.dir + "/.staging", e.dir, [](int64_t) {});
  REQUIRE_FALSE(f.has_value());
  CHECK(Read(e.dir + "/pkg") == server.bytes);
  REQUIRE(server.offsets_asked.size() == 2);
  CHECK(server.offsets_asked[0] == 0);
  CHECK(server.offsets_asked[1] == 4000);  // resumed, not restarted
  CHECK_FALSE(std::filesystem::exists(e.dir + "/.staging/" + m.update_id() + ".part"));
}

TEST_CASE("bytes that do not match the manifest are never installed", "[updater]") {
  Env e;
  SECTION("checksum") {
    FlakyServer server{RandomBytes(3000), 1 << 30, {}};
    v1::Manifest m = e.Manifest(server.bytes);
    server.bytes[1500] ^= 0x01;
    auto f = DownloadVerifyInstall(m, server.fetch(), e.dir + "/.staging", e.dir, [](int64_t) {});
    REQUIRE(f.has_value());
    CHECK(f->code == "checksum");
  }
  SECTION("more bytes than the manifest's size") {
    FlakyServer server{RandomBytes(3000), 1 << 30, {}};
    v1::Manifest m = e.Manifest(server.bytes.substr(0, 2500));
    auto f = DownloadVerifyInstall(m, server.fetch(), e.dir + "/.staging", e.dir, [](int64_t) {});
    REQUIRE(f.has_value());
    CHECK(f->code == "size");
  }
  CHECK_FALSE(std::filesystem::exists(e.dir + "/pkg"));
}

TEST_CASE("manifest checks run in order before any download", "[updater]") {
  Env e;
  v1::Manifest m = e.Manifest("payload");
  SECTION("a pinned key and a good signature pass") {
    CHECK(std::holds_alternative<v1::Manifest>(CheckManifest(e.Signed(m), e.state, "0.2.0")));
  }
  SECTION("an unpinned key") {
    SigningKey other = *SigningKey::FromSeed(std::string(32, 'o'));
    auto r = CheckManifest(SignEnvelope(other, "redflag.v1.Manifest", m.SerializeAsString()),
                           e.state, "0.2.0");
    CHECK(std::get<UpdateFailure>(r).code == "key");
  }
  SECTION("an edited manifest") {
    v1::SignedEnvelope env = e.Signed(m);
    m.set_size(m.size() + 1);
    env.set_payload(m.SerializeAsString());
    CHECK(std::get<UpdateFailure>(CheckManifest(env, e.state, "0.2.0")).code == "signature");
  }
  SECTION("a revoked update") {
    e.state.add_revoked_update_ids(m.update_id());
    CHECK(std::get<UpdateFailure>(CheckManifest(e.Signed(m), e.state, "0.2.0")).code == "revoked");
  }
  SECTION("not above what is installed") {
    (*e.state.mutable_installed_versions())["pkg"] = "1.0.0";
    CHECK(std::get<UpdateFailure>(CheckManifest(e.Signed(m), e.state, "0.2.0")).code == "version");
  }
  SECTION("a self-update not above the running agent") {
    m.set_kind(v1::AGENT);
    m.set_version("0.2.0");
    CHECK(std::get<UpdateFailure>(CheckManifest(e.Signed(m), e.state, "0.2.0")).code == "version");
  }
}

TEST_CASE("a failing download is retried with backoff, honouring the server's delay",
          "[updater][retry]") {
  Env e;
  const std::string bytes = RandomBytes(3000);
  v1::Manifest m = e.Manifest(bytes);
  int calls = 0;
  int fail_first = 0;
  Fetch fetch = [&](int64_t offset, const std::function<bool(const v1::DownloadChunk&)>& sink) {
    if (calls++ < fail_first) {
      // The second refusal comes from a busy server that says when to come back.
      if (calls == 2) {
        return WithRetryDelay(absl::ResourceExhaustedError("busy"), absl::Seconds(7));
      }
      return absl::UnavailableError("connection reset");
    }
    v1::DownloadChunk c;
    c.set_offset(offset);
    c.set_data(bytes.substr(static_cast<size_t>(offset)));
    sink(c);
    return absl::OkStatus();
  };
  std::vector<absl::Duration> waits;
  DownloadRetry retry;
  retry.sleep = [&](absl::Duration d) { waits.push_back(d); };

  SECTION("transient failures: waits, then installs") {
    fail_first = 3;
    auto f = DownloadVerifyInstall(
        m, fetch, e.dir + "/.staging", e.dir, [](int64_t) {}, retry);
    REQUIRE_FALSE(f.has_value());
    CHECK(Read(e.dir + "/pkg") == bytes);
    REQUIRE(waits.size() == 3);
    CHECK(waits[0] <= retry.base);        // jittered, first ceiling
    CHECK(waits[1] == absl::Seconds(7));  // the server's delay, exactly
    CHECK(waits[2] <= retry.base * 4);    // the ceiling doubles per failure
  }
  SECTION("a server that never answers: the download fails after max_failures") {
    fail_first = 1000;
    retry.max_failures = 5;
    auto f = DownloadVerifyInstall(
        m, fetch, e.dir + "/.staging", e.dir, [](int64_t) {}, retry);
    REQUIRE(f.has_value());
    CHECK(f->code == "download");
    CHECK_THAT(f->reason, Catch::Contains("5 times without progress"));
    CHECK(calls == 5);
    CHECK(waits.size() == 4);
    CHECK_FALSE(std::filesystem::exists(e.dir + "/pkg"));
  }
  SECTION("an outage longer than a few attempts: transient failures keep being retried") {
    fail_first = 12;  // more than the old limit of 5 attempts
    auto f = DownloadVerifyInstall(
        m, fetch, e.dir + "/.staging", e.dir, [](int64_t) {}, retry);
    REQUIRE_FALSE(f.has_value());
    CHECK(Read(e.dir + "/pkg") == bytes);
    CHECK(waits.size() == 12);
    for (size_t i = 3; i < waits.size(); ++i) CHECK(waits[i] <= retry.cap);
  }
}

TEST_CASE("a download refused for a lasting reason fails after max_refusals attempts",
          "[updater][retry]") {
  Env e;
  v1::Manifest m = e.Manifest(RandomBytes(100));
  int calls = 0;
  Fetch fetch = [&](int64_t, const std::function<bool(const v1::DownloadChunk&)>&) {
    ++calls;
    return absl::NotFoundError("no delivery of this update for this agent");
  };
  DownloadRetry retry;
  retry.sleep = [](absl::Duration) {};
  auto f = DownloadVerifyInstall(
      m, fetch, e.dir + "/.staging", e.dir, [](int64_t) {}, retry);
  REQUIRE(f.has_value());
  CHECK(f->code == "download");
  CHECK_THAT(f->reason, Catch::Contains("no delivery"));
  CHECK(calls == retry.max_refusals);
}

// An agent killed at each step of an install, restarted, given the same offer again (it
// was never acknowledged): it converges without installing twice and leaves nothing behind.
TEST_CASE("an install interrupted at any step converges on restart, installing at most once",
          "[updater][faults]") {
  Env e;
  const std::string bytes = RandomBytes(5000);
  v1::Manifest m = e.Manifest(bytes);
  const std::string staging = e.dir + "/.staging";
  const std::string part = staging + "/" + m.update_id() + ".part";
  int fetches = 0;
  Fetch fetch = [&](int64_t offset, const std::function<bool(const v1::DownloadChunk&)>& sink) {
    ++fetches;
    v1::DownloadChunk c;
    c.set_offset(offset);
    c.set_data(bytes.substr(static_cast<size_t>(offset)));
    sink(c);
    return absl::OkStatus();
  };
  auto write = [](const std::string& path, const std::string& data) {
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path, std::ios::binary) << data;
  };

  SECTION("killed after the download was verified, before the rename") {
    write(part, bytes);
    REQUIRE_FALSE(DownloadVerifyInstall(m, fetch, staging, e.dir, [](int64_t) {}).has_value());
    CHECK(fetches == 0);  // the staged bytes were complete: nothing fetched again
    CHECK(Read(e.dir + "/pkg") == bytes);
  }
  SECTION("killed after the rename, before the report: not installed a second time") {
    write(e.dir + "/pkg", bytes);
    const auto installed_at = std::filesystem::last_write_time(e.dir + "/pkg");
    REQUIRE_FALSE(DownloadVerifyInstall(m, fetch, staging, e.dir, [](int64_t) {}).has_value());
    CHECK(fetches == 0);
    CHECK(std::filesystem::last_write_time(e.dir + "/pkg") == installed_at);
    CHECK(Read(e.dir + "/pkg") == bytes);
  }
  SECTION("killed after the rename with the staged copy still there") {
    write(e.dir + "/pkg", bytes);
    const auto installed_at = std::filesystem::last_write_time(e.dir + "/pkg");
    write(part, bytes);
    REQUIRE_FALSE(DownloadVerifyInstall(m, fetch, staging, e.dir, [](int64_t) {}).has_value());
    CHECK(fetches == 0);
    CHECK(std::filesystem::last_write_time(e.dir + "/pkg") == installed_at);
    CHECK_FALSE(std::filesystem::exists(part));
  }
  SECTION("an older file under the name is replaced, not taken for the install") {
    write(e.dir + "/pkg", "the previous version");
    REQUIRE_FALSE(DownloadVerifyInstall(m, fetch, staging, e.dir, [](int64_t) {}).has_value());
    CHECK(fetches == 1);
    CHECK(Read(e.dir + "/pkg") == bytes);
  }
  // Whatever the step, nothing is left in staging and no temporary file in the install dir.
  for (const auto& entry : std::filesystem::directory_iterator(e.dir)) {
    CHECK(entry.path().filename().string().rfind(".pkg.", 0) != 0);
  }
  CHECK_FALSE(std::filesystem::exists(part));
}
