// `keel lease ...` output against what etcdctl 3.4.23 printed for the same answers from
// a keel cluster.
#include <sstream>

#include "gtest/gtest.h"
#include "tools/keel/lease_commands.h"

namespace keel::cli {
namespace {

etcdserverpb::ResponseHeader Header(int64_t revision) {
  etcdserverpb::ResponseHeader h;
  h.set_cluster_id(10579979120958892012u);
  h.set_member_id(11394182193316061743u);
  h.set_revision(revision);
  h.set_raft_term(2);
  return h;
}

template <typename Print>
std::string Out(Print print) {
  std::ostringstream out;
  print(out);
  return out.str();
}

constexpr char kHeaderJson[] =
    R"("cluster_id":10579979120958892012,"member_id":11394182193316061743,)";

TEST(LeaseIdTest, HexBothWays) {
  EXPECT_EQ(LeaseIdHex(0x694d77aa9e38260f), "694d77aa9e38260f");
  EXPECT_EQ(LeaseIdHex(6), "0000000000000006");
  EXPECT_EQ(*ParseLeaseId("0000000000000006"), 6);
  EXPECT_EQ(*ParseLeaseId("694D77AA9E38260F"), 0x694d77aa9e38260f);
  EXPECT_EQ(*ParseLeaseId("ffffffffffffffff"), -1);  // etcd's ids are int64.
  for (const char* bad : {"", "xyz", "0x12", "10000000000000000", "-1"}) {
    EXPECT_EQ(ParseLeaseId(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(LeaseOutputTest, Grant) {
  keel::LeaseGrantResponse r;
  *r.mutable_header() = Header(1);
  r.set_id(1);
  r.set_ttl(60);
  EXPECT_EQ(Out([&](std::ostream& o) { PrintLeaseGrant(r, OutputFormat::kSimple, o); }),
            "lease 0000000000000001 granted with TTL(60s)\n");
  EXPECT_EQ(Out([&](std::ostream& o) { PrintLeaseGrant(r, OutputFormat::kJson, o); }),
            std::string("{") + kHeaderJson +
                R"("revision":1,"raft_term":2,"ID":1,"TTL":60,"Error":""})" + "\n");
}

TEST(LeaseOutputTest, KeepAliveListRevoke) {
  keel::LeaseKeepAliveResponse ka;
  *ka.mutable_header() = Header(1);
  ka.set_id(2);
  ka.set_ttl(60);
  EXPECT_EQ(Out([&](std::ostream& o) { PrintLeaseKeepAlive(ka, OutputFormat::kSimple, o); }),
            "lease 0000000000000002 keepalived with TTL(60)\n");
  EXPECT_EQ(
      Out([&](std::ostream& o) { PrintLeaseKeepAlive(ka, OutputFormat::kJson, o); }),
      std::string("{") + kHeaderJson + R"("revision":1,"raft_term":2,"ID":2,"TTL":60})" + "\n");

  keel::LeaseLeasesResponse list;
  *list.mutable_header() = Header(1);
  list.add_leases()->set_id(1);
  list.add_leases()->set_id(2);
  EXPECT_EQ(Out([&](std::ostream& o) { PrintLeaseList(list, OutputFormat::kSimple, o); }),
            "found 2 leases\n0000000000000001\n0000000000000002\n");
  EXPECT_EQ(Out([&](std::ostream& o) { PrintLeaseList(list, OutputFormat::kJson, o); }),
            std::string("{") + kHeaderJson +
                R"("revision":1,"raft_term":2,"leases":[{"id":1},{"id":2}]})" + "\n");

  keel::LeaseRevokeResponse revoked;
  *revoked.mutable_header() = Header(1);
  EXPECT_EQ(Out([&](std::ostream& o) { PrintLeaseRevoke(2, revoked, OutputFormat::kSimple, o); }),
            "lease 0000000000000002 revoked\n");
  EXPECT_EQ(Out([&](std::ostream& o) { PrintLeaseRevoke(2, revoked, OutputFormat::kJson, o); }),
            std::string(R"({"header":{)") + kHeaderJson + R"("revision":1,"raft_term":2}})" + "\n");
}

TEST(LeaseOutputTest, TimeToLive) {
  keel::LeaseTimeToLiveResponse r;
  *r.mutable_header() = Header(2);
  r.set_id(6);
  r.set_ttl(29);
  r.set_grantedttl(30);
  r.add_keys("lk");
  EXPECT_EQ(Out([&](std::ostream& o) { PrintLeaseTimeToLive(r, true, OutputFormat::kSimple, o); }),
            "lease 0000000000000006 granted with TTL(30s), remaining(29s), attached keys([lk])\n");
  EXPECT_EQ(Out([&](std::ostream& o) { PrintLeaseTimeToLive(r, false, OutputFormat::kSimple, o); }),
            "lease 0000000000000006 granted with TTL(30s), remaining(29s)\n");
  EXPECT_EQ(Out([&](std::ostream& o) { PrintLeaseTimeToLive(r, true, OutputFormat::kJson, o); }),
            std::string("{") + kHeaderJson +
                R"("revision":2,"raft_term":2,"id":6,"ttl":29,"granted-ttl":30,"keys":["bGs="]})" +
                "\n");

  keel::LeaseTimeToLiveResponse gone;
  *gone.mutable_header() = Header(1);
  gone.set_id(2);
  gone.set_ttl(-1);
  EXPECT_EQ(
      Out([&](std::ostream& o) { PrintLeaseTimeToLive(gone, false, OutputFormat::kSimple, o); }),
      "lease 0000000000000002 already expired\n");
  EXPECT_EQ(
      Out([&](std::ostream& o) { PrintLeaseTimeToLive(gone, false, OutputFormat::kJson, o); }),
      std::string("{") + kHeaderJson +
          R"("revision":1,"raft_term":2,"id":2,"ttl":-1,"granted-ttl":0,"keys":null})" + "\n");
}

}  // namespace
}  // namespace keel::cli
