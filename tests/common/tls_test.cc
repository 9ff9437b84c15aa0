#include "common/tls.h"

#include <catch2/catch.hpp>

#include "tests/support/test_env.h"

using namespace redflag;
using redflag::testing::PkiFile;

namespace {

TlsFiles Files(const std::string& ca, const std::string& cert, const std::string& key) {
  return TlsFiles{ca, cert, key};
}

std::string Message(const absl::StatusOr<TlsMaterial>& m) {
  return std::string(m.status().message());
}

}  // namespace

TEST_CASE("matching certificate and key load", "[tls]") {
  auto m = TlsMaterial::Load(
      Files(PkiFile("internal-ca.crt"), PkiFile("auth.crt"), PkiFile("auth.key")));
  REQUIRE(m.ok());
  CHECK_THAT(m->cert_pem, Catch::Contains("BEGIN CERTIFICATE"));
}

TEST_CASE("certificate loading errors name the file and the problem", "[tls]") {
  CHECK_THAT(Message(TlsMaterial::Load(
                 Files("/nonexistent/ca.crt", PkiFile("auth.crt"), PkiFile("auth.key")))),
             Catch::Contains("/nonexistent/ca.crt cannot be read"));
  CHECK_THAT(Message(TlsMaterial::Load(
                 Files(PkiFile("internal-ca.crt"), PkiFile("redflag.env"), PkiFile("auth.key")))),
             Catch::Contains("is not PEM"));
  CHECK_THAT(Message(TlsMaterial::Load(
                 Files(PkiFile("internal-ca.crt"), PkiFile("auth.crt"), PkiFile("agents.key")))),
             Catch::Contains("does not match certificate"));
  CHECK_THAT(Message(TlsMaterial::Load(
                 Files(PkiFile("internal-ca.crt"), PkiFile("auth.key"), PkiFile("auth.key")))),
             Catch::Contains("holds no X.509 certificate"));
}
