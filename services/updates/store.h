// PostgreSQL schema `updates` beyond the key ring: packages (signed manifest, bytes in
// 256 KiB chunks) and deliveries (one per update and agent, with rollout state). Versions
// within (name, platform, channel) only rise, revoked ones included. Publications and
// revocations are announced on NOTIFY channel `redflag_updates` ("published:<id>",
// "revoked:<id>").
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/paging.h"
#include "common/pg.h"
#include "redflag/v1/updates.pb.h"

namespace redflag::updates {

inline constexpr char kUpdatesChannel[] = "redflag_updates";
inline constexpr size_t kChunkBytes = size_t{256} * 1024;

// The delivery states of an offer still open (the agent may yet act on it), as an SQL list.
#define REDFLAG_OPEN_DELIVERY_STATES "('OFFERED', 'DOWNLOADING', 'VERIFIED')"

// Withdraws every open offer of update $1 (a revocation, an aborted rollout); the affected
// rows are the offers withdrawn.
inline constexpr Statement kWithdrawOpenOffers{
    "updates_withdraw_open_offers",
    "UPDATE updates.deliveries SET state = 'WITHDRAWN', updated_at = now() "
    "WHERE update_id = $1 AND state IN " REDFLAG_OPEN_DELIVERY_STATES};

// Receives a package's bytes chunk by chunk inside one transaction.
class PackageUpload {
 public:
  virtual ~PackageUpload() = default;
  virtual absl::Status Append(absl::string_view chunk) = 0;
};

struct OfferCandidate {
  std::string delivery_id;
  v1::Update update;
};

class UpdateStore {
 public:
  explicit UpdateStore(PgPool& pool) : pool_(pool) {}

  // FAILED_PRECONDITION unless `version` is above every version published before in the
  // series (revoked ones included).
  absl::Status CheckVersionRises(const v1::PublishUpdateChunk::Header& h);
  // One transaction: `fill` streams the bytes through the upload, then `finish` (given the
  // update id) returns the signed update to store, and `before_notify` (when set) adds to
  // the same transaction (its rollout) before the publication is announced. The series is
  // locked throughout, so two concurrent publications cannot both pass the version check.
  absl::StatusOr<v1::Update> Publish(
      const v1::PublishUpdateChunk::Header& h, const std::string& published_by,
      const std::function<absl::Status(PackageUpload&)>& fill,
      const std::function<absl::StatusOr<v1::Update>(const std::string& update_id)>& finish,
      const std::function<absl::Status(PgConnection&, const std::string& update_id)>&
          before_notify = nullptr);

  // One page of the updates matching `filter` in publication order after `after` (the first
  // page: at_us -1), with each row's sort key (keys[i] is updates[i]'s).
  struct UpdatePage {
    std::vector<v1::Update> updates;
    std::vector<TimeIdCursor> keys;
  };
  absl::StatusOr<UpdatePage> List(const v1::ListUpdatesRequest& filter, const TimeIdCursor& after,
                                  int limit);
  absl::StatusOr<v1::Update> Get(const std::string& update_id);
  // Marks it revoked (idempotent) and withdraws undelivered offers.
  absl::StatusOr<v1::Update> Revoke(const std::string& update_id, const std::string& reason);

  // For agents of one platform and channel: the newest non-revoked update per package that
  // each still needs, with its delivery (created on first offer). A fixed number of statements
  // whatever the number of agents: one for the updates, three per update. Under a rollout an
  // agent's delivery records its stage and is offered only once that stage has started (HELD
  // before); nothing is offered while the rollout is paused, halted or aborted.
  absl::StatusOr<std::map<std::string, std::vector<OfferCandidate>>> Offers(
      const std::vector<std::string>& agent_ids, const std::string& platform,
      const std::string& channel);
  // Deliveries of revoked updates, and withdrawn offers of aborted rollouts, whose revocation
  // each agent has not acknowledged (one statement for all the agents).
  absl::StatusOr<std::map<std::string, std::vector<v1::Delivery>>> RevocationsOwed(
      const std::vector<std::string>& agent_ids);
  // An agent's acknowledgement of an offer: it is not offered again. The ack carries the
  // outcome too (applied: installed; not applied: failed, `error` the reason), so an open
  // delivery whose INSTALLED or FAILED report was lost ends as the ack says (`closed`); one
  // already ended keeps its state. NOT_FOUND for another agent's delivery or a held one.
  struct AckedOffer {
    v1::Delivery delivery;
    bool closed = false;
  };
  absl::StatusOr<AckedOffer> AckOffer(const std::string& agent_id, const std::string& delivery_id,
                                      bool applied, const std::string& error);
  // An agent's acknowledgement of a revocation or withdrawal: it is not sent again.
  absl::Status AckRevocation(const std::string& agent_id, const std::string& delivery_id);
  // Records an agent's progress report. Idempotent and monotonic: states only move forward
  // (OFFERED < DOWNLOADING < VERIFIED < INSTALLED | FAILED); a repeated report, or one
  // overtaken by a later state, succeeds with `changed` false and the delivery unchanged.
  // FAILED_PRECONDITION for a delivery that is not this agent's, was withdrawn, or already
  // ended differently (FAILED then INSTALLED, INSTALLED then FAILED).
  struct Reported {
    v1::Delivery delivery;
    bool changed = false;
  };
  absl::StatusOr<Reported> Report(const v1::ReportDeliveryRequest& r);
  // One page of the deliveries matching `filter`, in id order after `after_id` ('' for the
  // first), and the count per state of all that match (the rollout status, exact at any size).
  struct DeliveryPage {
    std::vector<v1::Delivery> rows;
    std::map<std::string, int64_t> counts;
  };
  absl::StatusOr<DeliveryPage> Deliveries(const v1::ListDeliveriesRequest& filter,
                                          const std::string& after_id, int limit);
  // The package's size in bytes when the agent was offered this update and the offer still
  // stands; PERMISSION_DENIED / FAILED_PRECONDITION saying why not.
  absl::StatusOr<int64_t> DownloadSize(const std::string& agent_id, const std::string& update_id);
  // Chunk `seq` (kChunkBytes each, the last shorter) of a package, read as binary bytea with
  // a connection held for that one read; DATA_LOSS when it is missing.
  absl::StatusOr<std::string> ReadChunk(const std::string& update_id, int64_t seq);

 private:
  // Creates the missing deliveries of `update_id` for the agents (staged under a rollout);
  // false when its rollout offers nothing now.
  absl::StatusOr<bool> EnsureDeliveries(PgConnection& c, const std::string& update_id,
                                        const std::vector<std::string>& agent_ids,
                                        const std::string& agents_json);

  PgPool& pool_;
};

}  // namespace redflag::updates
