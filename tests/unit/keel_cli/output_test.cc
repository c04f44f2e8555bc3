#include "tools/keel/output.h"

#include "gtest/gtest.h"
#include "proto/etcdserverpb/rpc.pb.h"

namespace keel::cli {
namespace {

etcdserverpb::ResponseHeader Header(int64_t revision) {
  etcdserverpb::ResponseHeader h;
  h.set_cluster_id(5025172942606570928u);
  h.set_member_id(16397034424897820494u);
  h.set_revision(revision);
  h.set_raft_term(2);
  return h;
}

// The expected strings are what etcdctl 3.4.23 printed against a keel cluster.
TEST(GoJsonTest, RangeResponseAsEtcdctlPrintsIt) {
  etcdserverpb::RangeResponse r;
  *r.mutable_header() = Header(3);
  mvccpb::KeyValue* kv = r.add_kvs();
  kv->set_key("foo");
  kv->set_create_revision(2);
  kv->set_mod_revision(3);
  kv->set_version(2);
  kv->set_value("b<a>r");
  r.set_count(1);
  EXPECT_EQ(GoJson(r),
            R"({"header":{"cluster_id":5025172942606570928,"member_id":16397034424897820494,)"
            R"("revision":3,"raft_term":2},"kvs":[{"key":"Zm9v","create_revision":2,)"
            R"("mod_revision":3,"version":2,"value":"YjxhPnI="}],"count":1})");
}

TEST(GoJsonTest, TxnOneofsAreWrappedInGoFieldNames) {
  etcdserverpb::TxnResponse r;
  *r.mutable_header() = Header(5);
  r.add_responses()->mutable_response_put()->mutable_header()->set_revision(5);
  EXPECT_EQ(GoJson(r),
            R"({"header":{"cluster_id":5025172942606570928,"member_id":16397034424897820494,)"
            R"("revision":5,"raft_term":2},"responses":[{"Response":{"ResponsePut":)"
            R"({"header":{"revision":5}}}}]})");
  r.set_succeeded(true);
  r.mutable_responses(0)->mutable_response_delete_range()->set_deleted(1);
  EXPECT_NE(GoJson(r).find(R"("succeeded":true)"), std::string::npos);
  EXPECT_NE(GoJson(r).find(R"({"Response":{"ResponseDeleteRange":{"deleted":1}}})"),
            std::string::npos)
      << GoJson(r);
}

TEST(GoJsonTest, MemberListUsesProtoNamesAndEmptyMessagesPrintAsBraces) {
  etcdserverpb::MemberListResponse r;
  r.mutable_header();
  etcdserverpb::Member* m = r.add_members();
  m->set_id(3590557946949813591u);
  m->set_name("n2");
  m->add_peerurls("http://127.0.0.1:41480");
  m->add_clienturls("http://127.0.0.1:41479");
  EXPECT_EQ(GoJson(r), R"({"header":{},"members":[{"ID":3590557946949813591,"name":"n2",)"
                       R"("peerURLs":["http://127.0.0.1:41480"],)"
                       R"("clientURLs":["http://127.0.0.1:41479"]}]})");
}

TEST(JsonStringTest, EscapesLikeGo) {
  EXPECT_EQ(JsonString("a\"b\\c\n<&>\x01"), R"("a\"b\\c\n\u003c\u0026\u003e\u0001")");
}

TEST(TableTest, DrawnLikeEtcdctl) {
  Table t({"endpoint", "is leader"});
  t.AddRow({"127.0.0.1:41379", "false"});
  t.AddRow({"127.0.0.1:1", "true", "extra cell dropped"});
  EXPECT_EQ(t.Render(),
            "+-----------------+-----------+\n"
            "|    ENDPOINT     | IS LEADER |\n"
            "+-----------------+-----------+\n"
            "| 127.0.0.1:41379 |     false |\n"
            "|     127.0.0.1:1 |      true |\n"
            "+-----------------+-----------+\n");
}

TEST(FormatTest, HumanBytesAndGoDurations) {
  EXPECT_EQ(HumanBytes(0), "0 B");
  EXPECT_EQ(HumanBytes(94910), "95 kB");
  EXPECT_EQ(HumanBytes(1234567), "1.2 MB");
  EXPECT_EQ(GoDuration(absl::Nanoseconds(4835800)), "4.8358ms");
  EXPECT_EQ(GoDuration(absl::Microseconds(350)), "350µs");
  EXPECT_EQ(GoDuration(absl::Milliseconds(1500)), "1.5s");
  EXPECT_EQ(GoDuration(absl::Seconds(90)), "1m30s");
  EXPECT_EQ(GoDuration(absl::ZeroDuration()), "0s");
  EXPECT_EQ(HexId(0x7f18a942b63abec3u), "7f18a942b63abec3");
}

TEST(FormatTest, PrintableEscapesBinary) {
  EXPECT_EQ(Printable(std::string("a\0b\n\xff", 5)), "a\\x00b\\n\\xff");
}

TEST(FormatTest, OutputFormatNames) {
  EXPECT_EQ(*ParseOutputFormat("json"), OutputFormat::kJson);
  EXPECT_FALSE(ParseOutputFormat("yaml").ok());
}

}  // namespace
}  // namespace keel::cli
