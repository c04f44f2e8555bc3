// `keel watch <key> [range_end]`: print every change of a key or range as it happens,
// or from a past revision, until interrupted. Printed like etcdctl: the event type,
// then (with --prev-kv) the previous key and value, then the key and value. The watch
// survives member failures (keel::Client resumes it elsewhere without a gap or a
// duplicate); it ends with an error only when its history was compacted.
#include <iostream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "tools/keel/commands.h"

namespace keel::cli {
namespace {

struct WatchArgs {
  std::string key;
  std::string range_end;
  bool prefix = false;
  bool from_key = false;
  int64_t rev = 0;
  bool prev_kv = false;
  bool progress_notify = false;
  int64_t max_events = 0;  // 0: until interrupted.
};

void PrintEvent(const mvccpb::Event& e, std::ostream& out) {
  out << (e.type() == mvccpb::Event::DELETE ? "DELETE" : "PUT") << "\n";
  if (e.has_prev_kv()) out << e.prev_kv().key() << "\n" << e.prev_kv().value() << "\n";
  out << e.kv().key() << "\n" << e.kv().value() << "\n";
}

// One JSON line per batch, in the shape of etcdctl -w json (clientv3.WatchResponse).
void PrintJson(const WatchBatch& b, std::ostream& out) {
  std::string events;
  for (const auto& e : b.events) absl::StrAppend(&events, events.empty() ? "" : ",", GoJson(e));
  out << "{\"Header\":{\"revision\":" << b.revision << "},\"Events\":[" << events
      << "],\"CompactRevision\":0,\"Canceled\":false,\"Created\":false}\n";
}

absl::Status RunWatch(Context& ctx, const WatchArgs& args) {
  if (args.prefix && args.from_key) {
    return absl::InvalidArgumentError("--prefix and --from-key cannot be used together");
  }
  if ((args.prefix || args.from_key) && !args.range_end.empty()) {
    return absl::InvalidArgumentError("a range_end cannot be used with --prefix or --from-key");
  }
  if (args.rev < 0) return absl::InvalidArgumentError("--rev must be >= 0");
  ASSIGN_OR_RETURN(keel::Client * client, ctx.client());
  WatchOptions options;
  options.range_end = args.range_end;
  options.prefix = args.prefix;
  options.from_key = args.from_key;
  options.start_revision = args.rev;
  options.prev_kv = args.prev_kv;
  options.progress_notify = args.progress_notify;
  std::unique_ptr<Watcher> watch = client->Watch(args.key, options);
  int64_t printed = 0;
  for (;;) {
    absl::StatusOr<WatchBatch> batch = watch->Next(absl::Seconds(1));
    if (batch.status().code() == absl::StatusCode::kDeadlineExceeded) continue;
    if (!batch.ok()) return batch.status();
    if (ctx.format() == OutputFormat::kJson) {
      PrintJson(*batch, ctx.out());
    } else if (batch->progress_notify) {
      ctx.out() << "progress notify: revision " << batch->revision << "\n";
    } else {
      for (const auto& e : batch->events) PrintEvent(e, ctx.out());
    }
    ctx.out().flush();  // Readers of a pipe see each change as it happens.
    printed += static_cast<int64_t>(batch->events.size());
    if (args.max_events > 0 && printed >= args.max_events) return absl::OkStatus();
  }
}

}  // namespace

void AddWatchCommand(CLI::App& app, Context& ctx) {
  auto args = std::make_shared<WatchArgs>();
  CLI::App* cmd = app.add_subcommand(
      "watch", "Print every change of a key or range, live or from a past revision");
  cmd->footer(
      "Runs until interrupted (or --max-events). Moves to another member by itself when "
      "the one it\nuses fails, without missing or repeating a change. Ends with exit 1 if "
      "--rev is below the\ncompaction point.\nExamples:\n"
      "  keel watch config/ --prefix\n"
      "  keel watch jobs/ --prefix --rev 1200 --prev-kv\n"
      "  keel watch k --max-events 1     # wait for the next change of k");
  cmd->add_option("key", args->key, "The key (\"\" with --prefix or --from-key: every key)")
      ->required();
  cmd->add_option("range_end", args->range_end, "Watch [key, range_end) instead of one key");
  cmd->add_flag("--prefix", args->prefix, "Every key starting with the key");
  cmd->add_flag("--from-key", args->from_key, "Every key >= the key");
  cmd->add_option("--rev", args->rev, "Start at this revision (replays history; 0: from now)");
  cmd->add_flag("--prev-kv", args->prev_kv, "Also print each key's previous value");
  cmd->add_flag("--progress-notify", args->progress_notify,
                "Print the server's periodic progress notifications");
  cmd->add_option("--max-events", args->max_events, "Exit after this many events (0: never)");
  cmd->callback([&ctx, args] { ctx.set_action([&ctx, args] { return RunWatch(ctx, *args); }); });
}

}  // namespace keel::cli
