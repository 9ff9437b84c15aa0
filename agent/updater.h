// Applies one update offer on the agent, in the order the threat model needs: trusted key,
// manifest signature, not revoked, version rises — all before any byte is fetched — then
// a resumable download into a staging file, size and SHA-256 checks, and an atomic
// install (fsync, rename). Nothing touches the install location unless every check passed.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <variant>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "redflag/v1/agent_state.pb.h"
#include "redflag/v1/updates.pb.h"

namespace redflag::agent {

// Why an update was refused: a bounded code (key, signature, revoked, version, download,
// size, checksum, install) for metrics, and a sentence for people.
struct UpdateFailure {
  std::string code;
  std::string reason;
};

// The manifest, once its key is pinned, its signature verifies, it is not revoked and its
// version is above what is installed (`running_version` for the agent's own package).
std::variant<v1::Manifest, UpdateFailure> CheckManifest(const v1::SignedEnvelope& signed_manifest,
                                                        const v1::AgentState& state,
                                                        const std::string& running_version);

// Streams bytes from `offset`; calls `sink` per chunk (false stops). OK at the end.
using Fetch = std::function<absl::Status(
    int64_t offset, const std::function<bool(const v1::DownloadChunk&)>& sink)>;

// How a download waits between failed attempts. An attempt that brought new bytes resets the
// counts. A transient failure (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED:
// a gateway, service or database restarting anywhere on the path) is retried up to
// `max_failures` times in a row without progress (about 5 minutes of outage at the 15 s
// cap); any other failure (NOT_FOUND, PERMISSION_DENIED, ...) up to `max_refusals` times. The
// wait is the server's retry delay when it gave one, else BackoffDelay from `base` to `cap`.
struct DownloadRetry {
  int max_failures = 40;
  int max_refusals = 3;
  absl::Duration base = absl::Milliseconds(500);
  absl::Duration cap = absl::Seconds(15);
  std::function<void(absl::Duration)> sleep;  // absl::SleepFor when empty (tests record)
};

// Downloads into `staging_dir`/<update id>.part (resuming what is there, and from where a
// failed attempt stopped), checks size and SHA-256, and renames it to `install_dir`/<name>.
// `progress` gets bytes so far.
std::optional<UpdateFailure> DownloadVerifyInstall(const v1::Manifest& m, const Fetch& fetch,
                                                   const std::string& staging_dir,
                                                   const std::string& install_dir,
                                                   const std::function<void(int64_t)>& progress,
                                                   const DownloadRetry& retry = DownloadRetry());

}  // namespace redflag::agent
