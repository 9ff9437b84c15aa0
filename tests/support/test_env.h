// The fixture's environment (REDFLAG_TEST_ENV names a KEY=VALUE file written by
// tests/fixture.sh): database settings, dev secrets and the PKI directory.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "common/pg.h"

namespace redflag::testing {

const std::map<std::string, std::string>& TestEnv();
std::string TestVar(const std::string& name);
// Exports every fixture variable into this process's environment.
void ExportTestEnv();
std::string PkiFile(const std::string& name);
std::string ReadFile(const std::string& path);
// A small pool on the fixture database.
std::unique_ptr<PgPool> TestPool(int size = 4);
// A pool connected as another PostgreSQL role of the test cluster (e.g. "redflag_auth" with
// REDFLAG_DB_AUTH_PASSWORD, or the "postgres" superuser).
std::unique_ptr<PgPool> TestPoolAs(const std::string& user, const std::string& password,
                                   int size = 1);

}  // namespace redflag::testing
