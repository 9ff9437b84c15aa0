#include "agent/updater.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/backoff.h"
#include "common/crash_point.h"
#include "agent/instruction_verifier.h"
#include "common/crypto.h"
#include "common/status.h"
#include "common/validate.h"
#include "common/version.h"

namespace redflag::agent {
namespace {

UpdateFailure Fail(const char* code, std::string reason) { return {code, std::move(reason)}; }

bool FsyncPath(const std::string& path, int flags) {
  int fd = open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = fsync(fd) == 0;
  close(fd);
  return ok;
}

}  // namespace

std::variant<v1::Manifest, UpdateFailure> CheckManifest(const v1::SignedEnvelope& env,
                                                        const v1::AgentState& state,
                                                        const std::string& running_version) {
  if (IsKeyRevoked(state, env.key_id())) {
    return Fail("key", absl::StrCat("manifest signed by revoked key ", env.key_id()));
  }
  const v1::SigningKey* key = nullptr;
  for (const auto& k : state.pinned_keys()) {
    if (k.key_id() == env.key_id()) key = &k;
  }
  if (key == nullptr) {
    return Fail("key",
                absl::StrCat("manifest signed by key ", env.key_id(), ", which is not pinned"));
  }
  if (absl::Status s = VerifyEnvelope(env, "redflag.v1.Manifest", key->public_key()); !s.ok()) {
    return Fail("signature", absl::StrCat("manifest signature: ", s.message()));
  }
  v1::Manifest m;
  if (!m.ParseFromString(env.payload())) return Fail("signature", "manifest does not parse");
  for (const auto& id : state.revoked_update_ids()) {
    if (id == m.update_id()) return Fail("revoked", "this update was revoked");
  }
  absl::StatusOr<Version> offered = Version::Parse(m.version());
  if (!offered.ok()) return Fail("version", std::string(offered.status().message()));
  std::string installed = m.kind() == v1::AGENT ? running_version : "";
  if (m.kind() != v1::AGENT) {
    auto it = state.installed_versions().find(m.name());
    if (it != state.installed_versions().end()) installed = it->second;
  }
  if (!installed.empty()) {
    absl::StatusOr<Version> current = Version::Parse(installed);
    if (current.ok() && offered->Compare(*current) <= 0) {
      return Fail("version",
                  absl::StrCat("offered version ", m.version(), " is not above the installed ",
                               installed, "; downgrades are refused"));
    }
  }
  if (absl::Status s = ValidateSafeName("package name", m.name(), 64); !s.ok()) {
    return Fail("other", std::string(s.message()));  // never a path outside the install dir
  }
  if (m.size() <= 0 || m.sha256().size() != 64) {
    return Fail("signature", "manifest lacks a size or SHA-256");
  }
  return m;
}

std::optional<UpdateFailure> DownloadVerifyInstall(const v1::Manifest& m, const Fetch& fetch,
                                                   const std::string& staging_dir,
                                                   const std::string& install_dir,
                                                   const std::function<void(int64_t)>& progress,
                                                   const DownloadRetry& retry) {
  std::error_code ec;
  std::filesystem::create_directories(staging_dir, ec);
  std::filesystem::create_directories(install_dir, ec);
  std::string part = absl::StrCat(staging_dir, "/", m.update_id(), ".part");
  std::string target = absl::StrCat(install_dir, "/", m.name());

  // Installed already (an agent killed after the rename, before it reported): converge
  // without installing a second time.
  if (std::filesystem::file_size(target, ec) == static_cast<uintmax_t>(m.size()) && !ec) {
    Sha256Hasher installed;
    std::ifstream in(target, std::ios::binary);
    char buf[64 * 1024];
    while (in) {
      in.read(buf, sizeof(buf));
      if (in.gcount() > 0) {
        installed.Update(absl::string_view(buf, static_cast<size_t>(in.gcount())));
      }
    }
    if (installed.FinishHex() == m.sha256()) {
      std::filesystem::remove(part, ec);
      return std::nullopt;
    }
  }
  ec.clear();

  // Resume: hash what is already staged, then fetch from there.
  Sha256Hasher hasher;
  int64_t have = 0;
  {
    std::ifstream in(part, std::ios::binary);
    char buf[64 * 1024];
    while (in && have <= m.size()) {
      in.read(buf, sizeof(buf));
      std::streamsize n = in.gcount();
      if (n <= 0) break;
      hasher.Update(absl::string_view(buf, static_cast<size_t>(n)));
      have += n;
    }
  }
  if (have > m.size()) {
    std::filesystem::remove(part, ec);
    return Fail("size", "staged bytes exceed the manifest's size; discarded");
  }
  std::optional<UpdateFailure> failure;
  int failures = 0;  // attempts in a row that brought no new byte
  int refusals = 0;  // of those, the last ones in a row that failed for a lasting reason
  while (have < m.size()) {
    const int64_t before = have;
    std::ofstream out(part, std::ios::binary | std::ios::app);
    absl::Status s = fetch(have, [&](const v1::DownloadChunk& c) {
      if (c.offset() != have) {
        failure = Fail("download", absl::StrCat("chunk at ", c.offset(), ", expected ", have));
        return false;
      }
      if (have + static_cast<int64_t>(c.data().size()) > m.size()) {
        failure = Fail("size", absl::StrCat("more bytes than the manifest's size ", m.size()));
        return false;
      }
      out.write(c.data().data(), static_cast<std::streamsize>(c.data().size()));
      hasher.Update(c.data());
      have += static_cast<int64_t>(c.data().size());
      progress(have);
      if (have < m.size()) CrashPoint("downloading");
      return static_cast<bool>(out);
    });
    out.close();
    if (failure || s.ok() || have >= m.size()) break;
    failures = have > before ? 1 : failures + 1;
    const bool transient = s.code() == absl::StatusCode::kUnavailable ||
                           s.code() == absl::StatusCode::kDeadlineExceeded ||
                           s.code() == absl::StatusCode::kResourceExhausted ||
                           s.code() == absl::StatusCode::kAborted;
    refusals = transient ? 0 : refusals + 1;
    if (failures >= retry.max_failures || refusals >= retry.max_refusals) {
      return Fail("download", absl::StrCat("download failed ", failures,
                                           " times without progress: ", s.message()));
    }
    // The server's pause when it asked for one (it is busy), else jittered backoff.
    absl::Duration wait =
        RetryDelayOf(s).value_or(BackoffDelay(failures - 1, retry.base, retry.cap));
    if (retry.sleep) {
      retry.sleep(wait);
    } else {
      absl::SleepFor(wait);
    }
  }
  if (failure) {
    std::filesystem::remove(part, ec);
    return failure;
  }
  if (have != m.size()) {
    std::filesystem::remove(part, ec);
    return Fail("size", absl::StrCat("received ", have, " bytes, the manifest says ", m.size()));
  }
  if (hasher.FinishHex() != m.sha256()) {
    std::filesystem::remove(part, ec);
    return Fail("checksum", "SHA-256 of the downloaded bytes does not match the manifest");
  }
  CrashPoint("verified");
  // Atomic install: the staged file is complete and durable before it takes the name.
  std::string tmp = absl::StrCat(install_dir, "/.", m.name(), ".", m.update_id(), ".tmp");
  std::filesystem::copy_file(part, tmp, std::filesystem::copy_options::overwrite_existing, ec);
  if (ec || !FsyncPath(tmp, O_RDONLY) || rename(tmp.c_str(), target.c_str()) != 0 ||
      !FsyncPath(install_dir, O_RDONLY | O_DIRECTORY)) {
    std::string why = ec ? ec.message() : std::strerror(errno);
    std::filesystem::remove(tmp, ec);
    return Fail("install", absl::StrCat("cannot install to ", target, ": ", why));
  }
  std::filesystem::remove(part, ec);
  CrashPoint("renamed");
  return std::nullopt;
}

}  // namespace redflag::agent
