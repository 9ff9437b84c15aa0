// Per-source limits key on SourceIp: it must give one key per address, whatever the port.
#include "common/actor.h"

#include <catch2/catch.hpp>

using redflag::SourceIp;

TEST_CASE("SourceIp drops the port of IPv4 and IPv6 peers in every form gRPC writes", "[actor]") {
  CHECK(SourceIp("ipv4:10.0.0.1:5555") == "10.0.0.1");
  CHECK(SourceIp("ipv4:10.0.0.1:6666") == "10.0.0.1");
  // gRPC 1.51 URI-escapes the brackets; a reconnect (new port) is the same source.
  CHECK(SourceIp("ipv6:%5B::1%5D:36032") == "::1");
  CHECK(SourceIp("ipv6:%5B::1%5D:41000") == "::1");
  CHECK(SourceIp("ipv6:%5b2001:db8::7%5d:443") == "2001:db8::7");
  CHECK(SourceIp("ipv6:[2001:db8::7]:443") == "2001:db8::7");
  CHECK(SourceIp("unix:/tmp/sock") == "unix:/tmp/sock");
}
