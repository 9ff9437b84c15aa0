// PostgreSQL access through libpq: a fixed-size connection pool, named prepared
// statements (parameters are always bound, never spliced into SQL), transactions,
// SQLSTATE → status mapping and per-schema migrations that are safe when several
// replicas start at once. All calls block: never call them on a gRPC completion thread.
#pragma once

#include <libpq-fe.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/config.h"

namespace redflag {

// How PostgreSQL plans a statement.
enum class Planning {
  // Prepared once per connection on first use; after five runs PostgreSQL may keep one
  // generic plan, built from the statistics of that moment and blind to parameter values.
  kPrepared,
  // Planned at every call with its parameter values (an unnamed statement): for a batch
  // matched against a big table, where the array's size matters to the plan and a constant
  // array is searched by hash (see PgTextArray).
  kPerCall,
};

// A statement with a stable name (used in errors and, when prepared, as its name).
struct Statement {
  const char* name;
  const char* sql;
  Planning planning = Planning::kPrepared;
};

using Params = std::vector<std::optional<std::string>>;

// Owns a PGresult. Accessors take (row, column) and return text values.
class PgResult {
 public:
  explicit PgResult(PGresult* r) : r_(r, &PQclear) {}
  int Rows() const { return PQntuples(r_.get()); }
  int AffectedRows() const;
  bool IsNull(int row, int col) const { return PQgetisnull(r_.get(), row, col) != 0; }
  // The value's bytes as returned (in a binary result, a bytea's raw bytes).
  std::string Text(int row, int col) const;
  int64_t Int(int row, int col) const;
  bool Bool(int row, int col) const;
  // Timestamps are selected as epoch microseconds (bigint).
  absl::Time TimeFromMicros(int row, int col) const;
  const PGresult* raw() const { return r_.get(); }

 private:
  std::unique_ptr<PGresult, void (*)(PGresult*)> r_;
};

// Maps a SQLSTATE to a status code; unknown errors become INTERNAL with a generic message.
absl::Status SqlStateToStatus(absl::string_view sqlstate, absl::string_view detail);

class PgConnection {
 public:
  explicit PgConnection(PGconn* conn) : conn_(conn) {}
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  absl::StatusOr<PgResult> Exec(const Statement& stmt, const Params& params = {});
  // Exec with parameter i sent as raw bytes when binary_params[i] (bytea without hex, half
  // the size) and, with `binary_result`, every column in PostgreSQL's binary form (a bytea
  // column's Text is then its raw bytes).
  absl::StatusOr<PgResult> ExecBinary(const Statement& stmt, const Params& params,
                                      const std::vector<bool>& binary_params, bool binary_result);
  // Runs parameterless SQL (migrations, BEGIN/COMMIT). Never for user input.
  absl::Status ExecScript(absl::string_view sql);
  // Reconnects if the server connection was lost.
  bool EnsureHealthy();
  PGconn* raw() { return conn_; }

  // For PgPool: forget what ran before this checkout.
  void BeginUse() { succeeded_ = 0; }
  // Whether the connection broke before anything ran in this checkout: then nothing of the
  // caller's work reached the server and it may run again on a fresh connection.
  bool LostBeforeAnyWork() const { return succeeded_ == 0 && PQstatus(conn_) == CONNECTION_BAD; }

 private:
  absl::Status Track(absl::Status s) {
    if (s.ok()) ++succeeded_;
    return s;
  }
  static absl::Status ResultStatus(const PGresult* r, absl::string_view what);
  PGconn* conn_;
  std::unordered_set<std::string> prepared_;
  int succeeded_ = 0;  // statements that succeeded since BeginUse
};

class PgPool {
 public:
  // Opens `config.pool_size` connections; fails with UNAVAILABLE naming host:port.
  static absl::StatusOr<std::unique_ptr<PgPool>> Connect(const DbConfig& config);

  // Runs `fn` with a connection to itself; waits up to `wait` for one to be free. A pooled
  // connection the server dropped (a PostgreSQL restart, a failover, an idle timeout) is
  // re-established and `fn` run again once, but only when the connection broke before any
  // statement of `fn` succeeded: nothing of it can have taken effect. Connections have TCP
  // keepalives on (a half-open connection is noticed in about a minute, not hours).
  absl::Status WithConnection(const std::function<absl::Status(PgConnection&)>& fn,
                              absl::Duration wait = absl::Seconds(10));
  // Runs `fn` inside BEGIN/COMMIT; rolls back when fn fails.
  absl::Status InTransaction(const std::function<absl::Status(PgConnection&)>& fn,
                             absl::Duration wait = absl::Seconds(10));

  // Connections found dropped by the server and re-established under a caller's work.
  int64_t reconnects() const { return reconnects_.load(std::memory_order_relaxed); }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<PgConnection>> idle_;
  std::atomic<int64_t> reconnects_{0};
};

// How many migrations of `schema` are applied: PERMISSION_DENIED when this role may not read
// <schema>.schema_migrations, FAILED_PRECONDITION when it does not exist.
absl::StatusOr<int64_t> AppliedMigrations(PgConnection& conn, absl::string_view schema);

// Applies `steps[i]` (i from the number already applied) in order, each once, under a
// transaction-scoped advisory lock, recording progress in <schema>.schema_migrations.
absl::Status ApplyMigrations(PgPool& pool, absl::string_view schema,
                             const std::vector<std::string>& steps);

// Escapes a string as a JSON string literal (for json_to_recordset batch parameters).
std::string JsonQuote(absl::string_view s);
// A JSON array of strings (for json_array_elements_text batch parameters).
std::string JsonArray(const std::vector<std::string>& items);
// A PostgreSQL text[] literal of `items` (every element quoted), for `col = ANY($n::text[])`.
std::string PgTextArray(const std::vector<std::string>& items);

}  // namespace redflag

// SQL for "one of the strings in the JSON array parameter `param`", as in
//   "WHERE key = " REDFLAG_ANY_OF_JSON("$1")
// ARRAY(SELECT ...) is an InitPlan: PostgreSQL expands the array once. Never write
// `col IN (SELECT json_array_elements_text($n::json))`: on a table without fresh statistics
// the planner picks a nested loop that expands the array again for every row (measured:
// 1.6 s for 500 ids against 10,000 deliveries).
// For SMALL arrays only (a few keys or event types). When the planner filters rows with it
// instead of using an index (stale statistics), `= ANY($0)` searches a parameter array
// linearly for every row: 500 ids against an update's 60,000 deliveries took 592 ms. A batch
// against a big table takes a PgTextArray parameter, `col = ANY($n::text[])`, in a
// Planning::kPerCall statement: the array is then a constant, which PostgreSQL searches by
// hash when it filters (the same batch: 38 ms) and sizes correctly when it plans an index.
#define REDFLAG_ANY_OF_JSON(param) "ANY(ARRAY(SELECT json_array_elements_text(" param "::json)))"
