#include "services/updates/store.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "common/pg_listener.h"
#include "common/status.h"
#include "common/version.h"
#include "services/updates/rollout_plan.h"

namespace redflag::updates {
namespace {

constexpr Statement kLockSeries{
    "updates_lock_series", "SELECT pg_advisory_xact_lock(hashtext($1 || '/' || $2 || '/' || $3))"};
constexpr Statement kSeriesVersions{
    "updates_series_versions",
    "SELECT version FROM updates.packages WHERE name = $1 AND platform = $2 AND channel = $3"};
constexpr Statement kInsertChunk{
    "updates_insert_chunk",
    "INSERT INTO updates.package_chunks(update_id, seq, data) VALUES ($1, $2, $3)"};
constexpr Statement kInsertPackage{
    "updates_insert_package",
    "INSERT INTO updates.packages(id, name, version, platform, channel, kind, size, sha256, "
    "envelope, key_id, published_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"};

#define PACKAGE_COLS "p.envelope, p.revoked_at IS NOT NULL, p.revoked_reason, p.published_by"
constexpr Statement kGet{"updates_get",
                         "SELECT " PACKAGE_COLS " FROM updates.packages p WHERE p.id = $1"};
// Pages in publication order after ($5 microseconds, $6 id), $7 rows.
// clang-format off
constexpr Statement kList{
    "updates_list",
    "SELECT " PACKAGE_COLS
    ", floor(extract(epoch from p.created_at) * 1000000)::bigint, p.id::text "
    "FROM updates.packages p "
    "WHERE ($1 = '' OR p.name = $1) AND ($2 = '' OR p.platform = $2) "
    "AND ($3 = '' OR p.channel = $3) AND ($4 OR p.revoked_at IS NULL) "
    "AND " REDFLAG_AFTER_TIME_ID("p.created_at", "p.id", "$5", "$6")
    " ORDER BY p.created_at, p.id LIMIT $7"};
// clang-format on
constexpr Statement kRevoke{
    "updates_revoke",
    "UPDATE updates.packages p SET revoked_reason = CASE WHEN revoked_at IS NULL THEN $2 "
    "ELSE revoked_reason END, revoked_at = coalesce(revoked_at, now()) WHERE id = $1 "
    "RETURNING " PACKAGE_COLS};
constexpr Statement kLatest{"updates_latest",
                            "SELECT DISTINCT ON (p.name) p.id, " PACKAGE_COLS
                            " FROM updates.packages p "
                            "WHERE p.platform = $1 AND p.channel = $2 AND p.revoked_at IS NULL "
                            "ORDER BY p.name, p.created_at DESC"};
// $2 is a JSON array of agent ids: one statement for a whole batch of agents.
constexpr Statement kEnsureDeliveries{
    "updates_ensure_deliveries",
    "INSERT INTO updates.deliveries(id, update_id, agent_id, state) "
    "SELECT gen_random_uuid(), $1, a, 'OFFERED' FROM json_array_elements_text($2::json) a "
    "ON CONFLICT (update_id, agent_id) DO NOTHING"};
// The same for an update with a rollout: $3 each agent's stage (StageAssigner), offered when
// its stage has started ($4 the current stage), else HELD.
constexpr Statement kEnsureStagedDeliveries{
    "updates_ensure_staged_deliveries",
    "INSERT INTO updates.deliveries(id, update_id, agent_id, state, stage) "
    "SELECT gen_random_uuid(), $1, a, CASE WHEN s <= $4 THEN 'OFFERED' ELSE 'HELD' END, s "
    "FROM unnest($2::text[], $3::int[]) AS t(a, s) "
    "ON CONFLICT (update_id, agent_id) DO NOTHING",
    Planning::kPerCall};
// FOR SHARE: a stage cannot start between reading current_stage and inserting the held rows
// it would have to promote (starting one locks the row FOR UPDATE).
constexpr Statement kRolloutGate{
    "updates_rollout_gate",
    "SELECT plan, state, current_stage FROM updates.rollouts WHERE update_id = $1 FOR SHARE"};
constexpr Statement kOpenDeliveries{
    "updates_open_deliveries",
    "SELECT agent_id, id FROM updates.deliveries WHERE update_id = $1 "
    "AND agent_id = ANY($2::text[]) "
    "AND state IN " REDFLAG_OPEN_DELIVERY_STATES " AND NOT offer_acked",
    Planning::kPerCall};
constexpr Statement kRevocationsOwed{
    "updates_revocations_owed",
    "SELECT d.agent_id, d.id, d.update_id, CASE WHEN p.revoked_at IS NOT NULL "
    "THEN p.revoked_reason ELSE 'rollout aborted: ' || coalesce(r.reason, '') END "
    "FROM updates.deliveries d JOIN updates.packages p ON p.id = d.update_id "
    "LEFT JOIN updates.rollouts r ON r.update_id = d.update_id "
    "WHERE d.agent_id = ANY($1::text[]) AND NOT d.revocation_acked "
    "AND (p.revoked_at IS NOT NULL OR d.state = 'WITHDRAWN')",
    Planning::kPerCall};
#define DELIVERY_COLS                                          \
  "d.id, d.update_id, d.agent_id, d.state, d.failure_reason, " \
  "floor(extract(epoch from d.updated_at))::bigint"
// The ack ends the offer (never delivered again) and carries its outcome: an open delivery
// whose INSTALLED or FAILED report was lost (it died with a gateway while the ack got
// through) ends as the ack says. The last column says whether it did.
constexpr Statement kAckOffer{
    "updates_ack_offer",
    "WITH old AS (SELECT id, state IN " REDFLAG_OPEN_DELIVERY_STATES
    " AS open "
    "FROM updates.deliveries WHERE id = $2 AND agent_id = $1 AND state <> 'HELD' FOR UPDATE) "
    "UPDATE updates.deliveries d SET offer_acked = true, updated_at = now(), "
    "state = CASE WHEN old.open THEN CASE WHEN $3 THEN 'INSTALLED' ELSE 'FAILED' END "
    "ELSE d.state END, "
    "failure_reason = CASE WHEN old.open AND NOT $3 THEN $4 ELSE d.failure_reason END "
    "FROM old WHERE d.id = old.id RETURNING " DELIVERY_COLS ", old.open"};
constexpr Statement kAckRevocation{
    "updates_ack_revocation",
    "UPDATE updates.deliveries SET revocation_acked = true WHERE id = $2 AND agent_id = $1 "
    "RETURNING id"};
constexpr Statement kReport{
    "updates_report",
    "UPDATE updates.deliveries d SET state = $3, failure_reason = $4, updated_at = now() "
    "WHERE id = $2 AND agent_id = $1 AND state = ANY(string_to_array($5, ',')) "
    "RETURNING " DELIVERY_COLS};
constexpr Statement kDeliveryOf{"updates_delivery_of",
                                "SELECT " DELIVERY_COLS
                                " FROM updates.deliveries d WHERE d.id = $2 AND d.agent_id = $1"};
// $1 update id ('' any), $2 agent id ('' any); pages in id order after $3, $4 rows.
#define DELIVERY_FILTER                                                                   \
  " FROM updates.deliveries d WHERE ($1 = '' OR d.update_id = $1::uuid) AND ($2 = '' OR " \
  "d.agent_id = $2)"
constexpr Statement kDeliveries{
    "updates_deliveries",
    "SELECT " DELIVERY_COLS DELIVERY_FILTER
    " AND d.id > coalesce(nullif($3, '')::uuid, '00000000-0000-0000-0000-000000000000') "
    "ORDER BY d.id LIMIT $4"};
constexpr Statement kDeliveryCounts{"updates_delivery_counts",
                                    "SELECT d.state, count(*)" DELIVERY_FILTER " GROUP BY d.state"};
constexpr Statement kDownloadAllowed{
    "updates_download_allowed",
    "SELECT d.state, p.revoked_at IS NOT NULL, p.size FROM updates.deliveries d "
    "JOIN updates.packages p ON p.id = d.update_id WHERE d.agent_id = $1 AND d.update_id = $2"};
// Binary parameters and results: the bytes travel as they are, not as hex text.
constexpr Statement kChunk{
    "updates_chunk", "SELECT data FROM updates.package_chunks WHERE update_id = $1 AND seq = $2"};

absl::StatusOr<v1::Update> UpdateFrom(const PgResult& r, int row, int col) {
  v1::Update u;
  REDFLAG_ASSIGN_OR_RETURN(std::string env, HexDecode(r.Text(row, col)));
  if (!u.mutable_signed_manifest()->ParseFromString(env) ||
      !u.mutable_manifest()->ParseFromString(u.signed_manifest().payload())) {
    return absl::DataLossError("stored manifest does not parse");
  }
  u.set_revoked(r.Bool(row, col + 1));
  u.set_revoked_reason(r.Text(row, col + 2));
  u.set_published_by(r.Text(row, col + 3));
  return u;
}

v1::DeliveryState StateFromName(const std::string& s) {
  v1::DeliveryState st = v1::DELIVERY_STATE_UNSPECIFIED;
  v1::DeliveryState_Parse(s, &st);
  return st;
}

v1::Delivery DeliveryFrom(const PgResult& r, int i) {
  v1::Delivery d;
  d.set_delivery_id(r.Text(i, 0));
  d.set_update_id(r.Text(i, 1));
  d.set_agent_id(r.Text(i, 2));
  d.set_state(StateFromName(r.Text(i, 3)));
  d.set_failure_reason(r.Text(i, 4));
  d.mutable_updated_at()->set_seconds(r.Int(i, 5));
  return d;
}

// Buffers to whole chunks and inserts each as it fills.
class PgUpload final : public PackageUpload {
 public:
  PgUpload(PgConnection& c, std::string update_id) : c_(c), update_id_(std::move(update_id)) {}
  absl::Status Append(absl::string_view data) override {
    while (!data.empty()) {
      size_t take = std::min(kChunkBytes - buffer_.size(), data.size());
      buffer_.append(data.data(), take);
      data.remove_prefix(take);
      if (buffer_.size() == kChunkBytes) REDFLAG_RETURN_IF_ERROR(Flush());
    }
    return absl::OkStatus();
  }
  absl::Status Flush() {
    if (buffer_.empty()) return absl::OkStatus();
    absl::Status s = c_.ExecBinary(kInsertChunk, {update_id_, absl::StrCat(seq_++), buffer_},
                                   {false, false, true}, /*binary_result=*/false)
                         .status();
    buffer_.clear();
    return s;
  }

 private:
  PgConnection& c_;
  std::string update_id_;
  std::string buffer_;
  int seq_ = 0;
};

absl::Status CheckRises(PgConnection& c, const v1::PublishUpdateChunk::Header& h) {
  REDFLAG_ASSIGN_OR_RETURN(Version v, Version::Parse(h.version()));
  REDFLAG_ASSIGN_OR_RETURN(PgResult r,
                           c.Exec(kSeriesVersions, {h.name(), h.platform(), h.channel()}));
  for (int i = 0; i < r.Rows(); ++i) {
    absl::StatusOr<Version> old = Version::Parse(r.Text(i, 0));
    if (old.ok() && v.Compare(*old) <= 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "version ", h.version(), " of ", h.name(), " (", h.platform(), ", ", h.channel(),
          ") is not above ", r.Text(i, 0), ", published before; versions must rise"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status UpdateStore::CheckVersionRises(const v1::PublishUpdateChunk::Header& h) {
  return pool_.WithConnection([&](PgConnection& c) { return CheckRises(c, h); });
}

absl::StatusOr<v1::Update> UpdateStore::Publish(
    const v1::PublishUpdateChunk::Header& h, const std::string& published_by,
    const std::function<absl::Status(PackageUpload&)>& fill,
    const std::function<absl::StatusOr<v1::Update>(const std::string&)>& finish,
    const std::function<absl::Status(PgConnection&, const std::string&)>& before_notify) {
  v1::Update out;
  std::string id = RandomUuid();
  REDFLAG_RETURN_IF_ERROR(pool_.InTransaction(
      [&](PgConnection& c) -> absl::Status {
        REDFLAG_RETURN_IF_ERROR(
            c.Exec(kLockSeries, {h.name(), h.platform(), h.channel()}).status());
        REDFLAG_RETURN_IF_ERROR(CheckRises(c, h));
        PgUpload upload(c, id);
        REDFLAG_RETURN_IF_ERROR(fill(upload));
        REDFLAG_RETURN_IF_ERROR(upload.Flush());
        REDFLAG_ASSIGN_OR_RETURN(out, finish(id));
        const v1::Manifest& m = out.manifest();
        REDFLAG_RETURN_IF_ERROR(
            c.Exec(kInsertPackage,
                   {id, m.name(), m.version(), m.platform(), m.channel(),
                    absl::StrCat(static_cast<int>(m.kind())), absl::StrCat(m.size()), m.sha256(),
                    HexEncode(out.signed_manifest().SerializeAsString()), m.key_id(), published_by})
                .status());
        if (before_notify) REDFLAG_RETURN_IF_ERROR(before_notify(c, id));
        return Notify(c, kUpdatesChannel, absl::StrCat("published:", id));
      },
      absl::Minutes(1)));
  return out;
}

absl::StatusOr<UpdateStore::UpdatePage> UpdateStore::List(const v1::ListUpdatesRequest& f,
                                                          const TimeIdCursor& after, int limit) {
  UpdatePage out;
  REDFLAG_RETURN_IF_ERROR(pool_.WithConnection([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(
        PgResult r,
        c.Exec(kList, {f.name(), f.platform(), f.channel(), f.include_revoked() ? "true" : "false",
                       absl::StrCat(after.at_us), after.id, absl::StrCat(limit)}));
    for (int i = 0; i < r.Rows(); ++i) {
      REDFLAG_ASSIGN_OR_RETURN(v1::Update u, UpdateFrom(r, i, 0));
      out.updates.push_back(std::move(u));
      out.keys.push_back({r.Int(i, 4), r.Text(i, 5)});
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::Update> UpdateStore::Get(const std::string& update_id) {
  v1::Update out;
  REDFLAG_RETURN_IF_ERROR(pool_.WithConnection([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(PgResult r, c.Exec(kGet, {update_id}));
    if (r.Rows() == 0) return absl::NotFoundError(absl::StrCat("no update ", update_id));
    REDFLAG_ASSIGN_OR_RETURN(out, UpdateFrom(r, 0, 0));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::Update> UpdateStore::Revoke(const std::string& update_id,
                                               const std::string& reason) {
  v1::Update out;
  REDFLAG_RETURN_IF_ERROR(pool_.InTransaction([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(PgResult r, c.Exec(kRevoke, {update_id, reason}));
    if (r.Rows() == 0) return absl::NotFoundError(absl::StrCat("no update ", update_id));
    REDFLAG_ASSIGN_OR_RETURN(out, UpdateFrom(r, 0, 0));
    REDFLAG_RETURN_IF_ERROR(c.Exec(kWithdrawOpenOffers, {update_id}).status());
    return Notify(c, kUpdatesChannel, absl::StrCat("revoked:", update_id));
  }));
  return out;
}

absl::StatusOr<std::map<std::string, std::vector<OfferCandidate>>> UpdateStore::Offers(
    const std::vector<std::string>& agent_ids, const std::string& platform,
    const std::string& channel) {
  std::map<std::string, std::vector<OfferCandidate>> out;
  const std::string agents = JsonArray(agent_ids);
  const std::string agent_array = PgTextArray(agent_ids);
  REDFLAG_RETURN_IF_ERROR(pool_.InTransaction([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(PgResult latest, c.Exec(kLatest, {platform, channel}));
    for (int i = 0; i < latest.Rows(); ++i) {
      std::string update_id = latest.Text(i, 0);
      REDFLAG_ASSIGN_OR_RETURN(v1::Update u, UpdateFrom(latest, i, 1));
      REDFLAG_ASSIGN_OR_RETURN(bool offered, EnsureDeliveries(c, update_id, agent_ids, agents));
      if (!offered) continue;
      REDFLAG_ASSIGN_OR_RETURN(PgResult d, c.Exec(kOpenDeliveries, {update_id, agent_array}));
      for (int j = 0; j < d.Rows(); ++j) out[d.Text(j, 0)].push_back({d.Text(j, 1), u});
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<bool> UpdateStore::EnsureDeliveries(PgConnection& c, const std::string& update_id,
                                                   const std::vector<std::string>& agent_ids,
                                                   const std::string& agents_json) {
  REDFLAG_ASSIGN_OR_RETURN(PgResult gate, c.Exec(kRolloutGate, {update_id}));
  if (gate.Rows() == 0) {  // no rollout: every matching agent at once
    REDFLAG_RETURN_IF_ERROR(c.Exec(kEnsureDeliveries, {update_id, agents_json}).status());
    return true;
  }
  const std::string state = gate.Text(0, 1);
  // Paused, halted or aborted: nothing is offered, and no one joins a stage meanwhile.
  if (state != "ACTIVE" && state != "WAITING_APPROVAL" && state != "COMPLETED") return false;
  REDFLAG_ASSIGN_OR_RETURN(std::string plan_bytes, HexDecode(gate.Text(0, 0)));
  v1::RolloutPlan plan;
  if (!plan.ParseFromString(plan_bytes)) {
    return absl::DataLossError(absl::StrCat("rollout plan of ", update_id, " does not parse"));
  }
  StageAssigner stages(plan, update_id);
  std::vector<std::string> stage_of;
  stage_of.reserve(agent_ids.size());
  for (const std::string& a : agent_ids) stage_of.push_back(absl::StrCat(stages.StageOf(a)));
  REDFLAG_RETURN_IF_ERROR(c.Exec(kEnsureStagedDeliveries, {update_id, PgTextArray(agent_ids),
                                                           PgTextArray(stage_of), gate.Text(0, 2)})
                              .status());
  return true;
}

absl::StatusOr<std::map<std::string, std::vector<v1::Delivery>>> UpdateStore::RevocationsOwed(
    const std::vector<std::string>& agent_ids) {
  std::map<std::string, std::vector<v1::Delivery>> out;
  REDFLAG_RETURN_IF_ERROR(pool_.WithConnection([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(PgResult r, c.Exec(kRevocationsOwed, {PgTextArray(agent_ids)}));
    for (int i = 0; i < r.Rows(); ++i) {
      v1::Delivery d;
      d.set_agent_id(r.Text(i, 0));
      d.set_delivery_id(r.Text(i, 1));
      d.set_update_id(r.Text(i, 2));
      d.set_failure_reason(r.Text(i, 3));
      out[d.agent_id()].push_back(std::move(d));
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<UpdateStore::AckedOffer> UpdateStore::AckOffer(const std::string& agent_id,
                                                              const std::string& delivery_id,
                                                              bool applied,
                                                              const std::string& error) {
  AckedOffer out;
  REDFLAG_RETURN_IF_ERROR(pool_.WithConnection([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(
        PgResult r, c.Exec(kAckOffer, {agent_id, delivery_id, applied ? "true" : "false", error}));
    if (r.Rows() == 0) return absl::NotFoundError("no such delivery for this agent");
    out.delivery = DeliveryFrom(r, 0);
    out.closed = r.Bool(0, 6);
    return absl::OkStatus();
  }));
  return out;
}

absl::Status UpdateStore::AckRevocation(const std::string& agent_id,
                                        const std::string& delivery_id) {
  return pool_.WithConnection([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(PgResult r, c.Exec(kAckRevocation, {agent_id, delivery_id}));
    if (r.Rows() == 0) return absl::NotFoundError("no such delivery for this agent");
    return absl::OkStatus();
  });
}

namespace {

// Position of a state on the delivery's way; FAILED ends it like INSTALLED does.
int Rank(v1::DeliveryState s) {
  switch (s) {
    case v1::OFFERED:
      return 1;
    case v1::DOWNLOADING:
      return 2;
    case v1::VERIFIED:
      return 3;
    case v1::INSTALLED:
    case v1::FAILED:
      return 4;
    default:
      return 0;
  }
}

// A report that changes nothing because the delivery already is there or beyond: a retry
// after a lost reply, or a progress report overtaken by a later one.
bool AlreadyRecorded(v1::DeliveryState current, v1::DeliveryState reported) {
  if (current == reported) return true;
  bool progress =
      reported == v1::OFFERED || reported == v1::DOWNLOADING || reported == v1::VERIFIED;
  return progress && current != v1::WITHDRAWN && Rank(current) >= Rank(reported);
}

// The open states a delivery may move from to `reported` (comma-separated, for the report
// statement): those below it; FAILED ends an open delivery from any of them.
std::string AdvancesFrom(v1::DeliveryState reported) {
  std::vector<std::string> from;
  for (v1::DeliveryState open : {v1::OFFERED, v1::DOWNLOADING, v1::VERIFIED}) {
    if (reported == v1::FAILED || Rank(open) < Rank(reported)) {
      from.push_back(v1::DeliveryState_Name(open));
    }
  }
  return absl::StrJoin(from, ",");
}

}  // namespace

absl::StatusOr<UpdateStore::Reported> UpdateStore::Report(const v1::ReportDeliveryRequest& req) {
  Reported out;
  REDFLAG_RETURN_IF_ERROR(pool_.WithConnection([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(
        PgResult r,
        c.Exec(kReport, {req.agent_id(), req.delivery_id(), v1::DeliveryState_Name(req.state()),
                         req.failure_reason(), AdvancesFrom(req.state())}));
    if (r.Rows() == 1) {
      out.delivery = DeliveryFrom(r, 0);
      out.changed = true;
      return absl::OkStatus();
    }
    REDFLAG_ASSIGN_OR_RETURN(PgResult cur,
                             c.Exec(kDeliveryOf, {req.agent_id(), req.delivery_id()}));
    if (cur.Rows() == 0) {
      return absl::FailedPreconditionError("no delivery with this id for this agent");
    }
    out.delivery = DeliveryFrom(cur, 0);
    if (AlreadyRecorded(out.delivery.state(), req.state())) return absl::OkStatus();
    return absl::FailedPreconditionError(
        absl::StrCat("delivery is ", v1::DeliveryState_Name(out.delivery.state()),
                     "; it cannot become ", v1::DeliveryState_Name(req.state())));
  }));
  return out;
}

absl::StatusOr<UpdateStore::DeliveryPage> UpdateStore::Deliveries(
    const v1::ListDeliveriesRequest& f, const std::string& after_id, int limit) {
  DeliveryPage out;
  REDFLAG_RETURN_IF_ERROR(pool_.WithConnection([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(PgResult r, c.Exec(kDeliveries, {f.update_id(), f.agent_id(), after_id,
                                                              absl::StrCat(limit)}));
    for (int i = 0; i < r.Rows(); ++i) out.rows.push_back(DeliveryFrom(r, i));
    REDFLAG_ASSIGN_OR_RETURN(PgResult n, c.Exec(kDeliveryCounts, {f.update_id(), f.agent_id()}));
    for (int i = 0; i < n.Rows(); ++i) out.counts[n.Text(i, 0)] = n.Int(i, 1);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<int64_t> UpdateStore::DownloadSize(const std::string& agent_id,
                                                  const std::string& update_id) {
  int64_t size = 0;
  REDFLAG_RETURN_IF_ERROR(pool_.WithConnection([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(PgResult r, c.Exec(kDownloadAllowed, {agent_id, update_id}));
    if (r.Rows() == 0) {
      return absl::PermissionDeniedError("this update was not offered to this agent");
    }
    if (r.Bool(0, 1) || r.Text(0, 0) == "WITHDRAWN") {
      return absl::FailedPreconditionError("this update was revoked or its rollout aborted");
    }
    if (r.Text(0, 0) == "HELD") {
      return absl::PermissionDeniedError("this agent's rollout stage has not started");
    }
    size = r.Int(0, 2);
    return absl::OkStatus();
  }));
  return size;
}

absl::StatusOr<std::string> UpdateStore::ReadChunk(const std::string& update_id, int64_t seq) {
  std::string bytes;
  REDFLAG_RETURN_IF_ERROR(pool_.WithConnection([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(PgResult r, c.ExecBinary(kChunk, {update_id, absl::StrCat(seq)}, {},
                                                      /*binary_result=*/true));
    if (r.Rows() == 0) {
      return absl::DataLossError(
          absl::StrCat("chunk ", seq, " of package ", update_id, " is missing"));
    }
    bytes = r.Text(0, 0);
    return absl::OkStatus();
  }));
  return bytes;
}

}  // namespace redflag::updates
