// `keel alarm list|disarm`, `keel defrag`, `keel snapshot save|status|restore`: the
// maintenance commands, with etcdctl 3.4's output.
#include <iostream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "tools/keel/commands.h"
#include "tools/keel/probe.h"
#include "tools/keel/snapshot_files.h"

namespace keel::cli {
namespace {

// etcdctl prints each alarm with Go's %+v of the message: its compact text form.
std::string AlarmLine(const etcdserverpb::AlarmMember& a) {
  return absl::StrCat("memberID:", a.memberid(), " alarm:", etcdserverpb::AlarmType_Name(a.alarm()),
                      " ");
}

void PrintAlarms(const keel::AlarmResponse& r, OutputFormat format, std::ostream& out) {
  if (format == OutputFormat::kJson) {
    out << GoJson(r) << "\n";
    return;
  }
  for (const auto& a : r.alarms()) out << AlarmLine(a) << "\n";
}

absl::Status RunAlarmList(Context& ctx) {
  ASSIGN_OR_RETURN(keel::Client * client, ctx.client());
  ASSIGN_OR_RETURN(keel::AlarmResponse r, client->AlarmList());
  PrintAlarms(r, ctx.format(), ctx.out());
  return absl::OkStatus();
}

// etcdctl's disarm: list the alarms, then clear each one by its member and type.
absl::Status RunAlarmDisarm(Context& ctx) {
  ASSIGN_OR_RETURN(keel::Client * client, ctx.client());
  ASSIGN_OR_RETURN(keel::AlarmResponse active, client->AlarmList());
  keel::AlarmResponse cleared;
  for (const auto& a : active.alarms()) {
    ASSIGN_OR_RETURN(keel::AlarmResponse r, client->AlarmDisarm(a.memberid(), a.alarm()));
    *cleared.mutable_header() = r.header();
    for (const auto& c : r.alarms()) *cleared.add_alarms() = c;
  }
  PrintAlarms(cleared, ctx.format(), ctx.out());
  return absl::OkStatus();
}

struct DefragFlags {
  bool cluster = false;
};

absl::Status RunDefrag(Context& ctx, const DefragFlags& flags) {
  ASSIGN_OR_RETURN(keel::Client * client, ctx.client());
  std::vector<std::string> targets;
  if (flags.cluster) {
    targets = AllMemberEndpoints(ctx.flags(), client);
  } else {
    for (const auto& e : ctx.flags().endpoints) targets.push_back(NormalizeEndpoint(e));
  }
  std::vector<std::string> failed;
  for (const std::string& e : targets) {
    // Compacting a large store takes a while: a generous deadline of its own.
    keel::CallOptions options;
    options.timeout = std::max(ctx.flags().command_timeout, absl::Minutes(5));
    absl::StatusOr<keel::DefragmentResponse> r = client->Defragment(e, options);
    if (r.ok()) {
      ctx.out() << "Finished defragmenting etcd member[" << e << "]\n";
    } else {
      ctx.err() << "Failed to defragment etcd member[" << e << "] (" << r.status().message()
                << ")\n";
      failed.push_back(e);
    }
  }
  if (failed.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("defragment failed on ", absl::StrJoin(failed, ", ")));
}

absl::Status RunSnapshotSave(Context& ctx, const std::string& path) {
  ASSIGN_OR_RETURN(keel::Client * client, ctx.client());
  // etcdctl asks the first --endpoints entry; so does keel.
  const std::string endpoint = NormalizeEndpoint(ctx.flags().endpoints.front());
  keel::CallOptions options;  // No deadline: a big snapshot takes as long as it takes.
  ASSIGN_OR_RETURN(uint64_t bytes, client->SnapshotToFile(endpoint, path, options));
  (void)bytes;
  ctx.out() << "Snapshot saved at " << path << "\n";
  return absl::OkStatus();
}

absl::Status RunSnapshotStatus(Context& ctx, const std::string& path) {
  ASSIGN_OR_RETURN(SnapshotFileStatus st, ReadSnapshotStatus(path));
  const std::string hash = absl::StrCat(absl::Hex(st.hash));
  switch (ctx.format()) {
    case OutputFormat::kJson:
      ctx.out() << "{\"hash\":" << st.hash << ",\"revision\":" << st.revision
                << ",\"totalKey\":" << st.total_keys << ",\"totalSize\":" << st.total_size << "}\n";
      break;
    case OutputFormat::kTable: {
      Table table({"hash", "revision", "total keys", "total size"});
      table.AddRow({hash, absl::StrCat(st.revision), absl::StrCat(st.total_keys),
                    HumanBytes(st.total_size)});
      ctx.out() << table.Render();
      break;
    }
    case OutputFormat::kSimple:
      ctx.out() << hash << ", " << st.revision << ", " << st.total_keys << ", "
                << HumanBytes(st.total_size) << "\n";
      break;
  }
  return absl::OkStatus();
}

absl::Status RunSnapshotRestore(Context& ctx, const std::string& path,
                                const RestoreOptions& options) {
  ASSIGN_OR_RETURN(SnapshotFileStatus st, RestoreSnapshot(path, options));
  ctx.out() << "Restored snapshot " << path << " (revision " << st.revision << ", " << st.total_keys
            << " keys) into " << options.data_dir << " for member '" << options.name
            << "'; start keeld with the same --name, --initial-cluster, "
               "--initial-cluster-token and --initial-advertise-peer-urls and "
               "--initial-cluster-state new\n";
  return absl::OkStatus();
}

}  // namespace

void AddMaintenanceCommands(CLI::App& app, Context& ctx) {
  CLI::App* alarm = app.add_subcommand("alarm", "The cluster's alarms (NOSPACE, CORRUPT)");
  alarm->require_subcommand(1);
  alarm->add_subcommand("list", "List the active alarms")->callback([&ctx] {
    ctx.set_action([&ctx] { return RunAlarmList(ctx); });
  });
  CLI::App* disarm = alarm->add_subcommand("disarm", "Clear every active alarm");
  disarm->footer(
      "A NOSPACE alarm comes back within a second while the data is still over "
      "keeld's --quota-backend-bytes: free space first (delete keys, keel compaction <rev>, "
      "keel defrag), then disarm.");
  disarm->callback([&ctx] { ctx.set_action([&ctx] { return RunAlarmDisarm(ctx); }); });

  auto defrag_flags = std::make_shared<DefragFlags>();
  CLI::App* defrag =
      app.add_subcommand("defrag", "Compact the storage of the --endpoints members now");
  defrag->add_flag("--cluster", defrag_flags->cluster, "Every member of the cluster");
  defrag->footer(
      "RocksDB reclaims the space of deleted and compacted data on its own, in the "
      "background; defrag makes it happen now (a flush and a full compaction on that "
      "member), beside live traffic — nothing is blocked, unlike etcd's defrag.");
  defrag->callback([&ctx, defrag_flags] {
    ctx.set_action([&ctx, defrag_flags] { return RunDefrag(ctx, *defrag_flags); });
  });

  CLI::App* snapshot = app.add_subcommand("snapshot", "Back up and restore the key space");
  snapshot->require_subcommand(1);
  auto path = std::make_shared<std::string>();
  CLI::App* save = snapshot->add_subcommand(
      "save", "Stream a consistent snapshot of the first --endpoints member into FILE");
  save->add_option("file", *path, "Where to write it")->required();
  save->footer(
      "The file is keel's snapshot format (a header, the state machine's RocksDB "
      "checkpoint in CRC32C-checked chunks, a whole-file CRC32C); `etcdctl snapshot save` "
      "against keel writes the same file.");
  save->callback(
      [&ctx, path] { ctx.set_action([&ctx, path] { return RunSnapshotSave(ctx, *path); }); });

  CLI::App* status = snapshot->add_subcommand("status", "Hash, revision, keys and size of FILE");
  status->add_option("file", *path, "A file from snapshot save")->required();
  status->footer(
      "HASH is the key space's HashKV at the snapshot's revision: the same number "
      "`keel endpoint hashkv --rev REVISION` prints for the members it was taken from.");
  status->callback(
      [&ctx, path] { ctx.set_action([&ctx, path] { return RunSnapshotStatus(ctx, *path); }); });

  auto restore_options = std::make_shared<RestoreOptions>();
  CLI::App* restore = snapshot->add_subcommand(
      "restore", "Turn FILE into the data dir of a member of a new cluster");
  restore->add_option("file", *path, "A file from snapshot save")->required();
  restore->add_option("--data-dir", restore_options->data_dir, "The new data dir (must not exist)")
      ->required();
  restore->add_option("--name", restore_options->name, "This member's name")->capture_default_str();
  restore->add_option("--initial-cluster", restore_options->initial_cluster,
                      "The new cluster: name=peer-url,...");
  restore
      ->add_option("--initial-cluster-token", restore_options->initial_cluster_token,
                   "The new cluster's token")
      ->capture_default_str();
  restore
      ->add_option("--initial-advertise-peer-urls", restore_options->initial_advertise_peer_urls,
                   "This member's peer URLs")
      ->delimiter(',');
  restore->footer(
      "Run it once per member with that member's --name and --initial-advertise-peer-urls, "
      "then start every keeld with the same flags and --initial-cluster-state new. The "
      "new cluster has new cluster and member ids and a fresh raft log; keys, values, "
      "the revision and leases are the snapshot's.");
  restore->callback([&ctx, path, restore_options] {
    ctx.set_action(
        [&ctx, path, restore_options] { return RunSnapshotRestore(ctx, *path, *restore_options); });
  });
}

}  // namespace keel::cli
