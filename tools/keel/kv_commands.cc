#include "tools/keel/kv_commands.h"

#include <iostream>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "tools/keel/commands.h"
#include "tools/keel/context.h"

namespace keel::cli {
namespace {

// etcd's way to say "every key": key "\0" with range_end "\0".
constexpr absl::string_view kAllKeys("\0", 1);

void PrintKv(const keel::KeyValue& kv, bool value_only, std::ostream& out) {
  if (!value_only) out << kv.key() << "\n";
  out << kv.value() << "\n";
}

// --prefix, --from-key and range_end go together only in some ways.
absl::Status CheckRangeFlags(const std::string& key, const std::string& range_end, bool prefix,
                             bool from_key) {
  if (prefix && from_key) {
    return absl::InvalidArgumentError("--prefix and --from-key cannot be used together");
  }
  if ((prefix || from_key) && !range_end.empty()) {
    return absl::InvalidArgumentError("a range_end cannot be used with --prefix or --from-key");
  }
  if (key.empty() && !prefix && !from_key) {
    return absl::InvalidArgumentError(
        "the key is empty (use --prefix or --from-key with \"\" for every key)");
  }
  return absl::OkStatus();
}

// The range fields of Range/DeleteOptions. An empty key with --prefix or --from-key
// means every key (as in etcdctl): RequestKey("") is "\0", and so is the range end.
template <typename Options>
void SetRange(const std::string& key, const std::string& range_end, bool prefix, bool from_key,
              Options* o) {
  if (key.empty()) {
    o->range_end = std::string(kAllKeys);
    return;
  }
  o->range_end = range_end;
  o->prefix = prefix;
  o->from_key = from_key;
}

absl::Status RunGet(Context& ctx, const GetArgs& args) {
  ASSIGN_OR_RETURN(keel::RangeOptions options, ToRangeOptions(args));
  ASSIGN_OR_RETURN(keel::Client * client, ctx.client());
  ASSIGN_OR_RETURN(keel::RangeResponse r, client->Get(RequestKey(args.key), options));
  PrintRange(r, args, ctx.format(), ctx.out());
  return absl::OkStatus();
}

absl::Status RunPut(Context& ctx, PutArgs args) {
  ASSIGN_OR_RETURN(keel::PutOptions options, ToPutOptions(args));
  if (!args.value_given && !args.ignore_value) {
    // etcdctl's habit: `put key < file` stores the file.
    args.value = ReadAll(std::cin);
  }
  ASSIGN_OR_RETURN(keel::Client * client, ctx.client());
  ASSIGN_OR_RETURN(keel::PutResponse r, client->Put(args.key, args.value, options));
  PrintPut(r, ctx.format(), ctx.out());
  return absl::OkStatus();
}

absl::Status RunDel(Context& ctx, const DelArgs& args) {
  ASSIGN_OR_RETURN(keel::DeleteOptions options, ToDeleteOptions(args));
  ASSIGN_OR_RETURN(keel::Client * client, ctx.client());
  ASSIGN_OR_RETURN(keel::DeleteResponse r, client->Delete(RequestKey(args.key), options));
  PrintDelete(r, ctx.format(), ctx.out());
  return absl::OkStatus();
}

}  // namespace

std::string RequestKey(const std::string& key) { return key.empty() ? std::string(kAllKeys) : key; }

void AddGetFlags(CLI::App* cmd, GetArgs* args) {
  cmd->add_option("key", args->key, "The key, or the start of the range")->required();
  cmd->add_option("range_end", args->range_end, "End of the range [key, range_end)");
  cmd->add_flag("--prefix", args->prefix, "Every key that starts with <key>");
  cmd->add_flag("--from-key", args->from_key, "Every key >= <key> (byte order)");
  cmd->add_option("--limit", args->limit, "At most this many keys (0: no limit)");
  cmd->add_option("--rev", args->rev, "Read as of this revision (0: the newest)");
  cmd->add_option("--consistency", args->consistency,
                  "l: linearizable (through the leader), s: serializable (local, may be stale)")
      ->check(CLI::IsMember({"l", "s"}))
      ->capture_default_str();
  cmd->add_option("--sort-by", args->sort_by, "Sort by KEY, VERSION, CREATE, MODIFY or VALUE");
  cmd->add_option("--order", args->order, "ASCEND or DESCEND (ASCEND when only --sort-by)");
  cmd->add_flag("--keys-only", args->keys_only, "Keys without values");
  cmd->add_flag("--count-only", args->count_only, "Only the number of keys");
  cmd->add_flag("--print-value-only", args->print_value_only,
                "Values without keys (simple output)");
  cmd->add_option("--min-mod-rev", args->min_mod_rev, "Keys modified at or after this revision");
  cmd->add_option("--max-mod-rev", args->max_mod_rev, "Keys modified at or before this revision");
  cmd->add_option("--min-create-rev", args->min_create_rev,
                  "Keys created at or after this revision");
  cmd->add_option("--max-create-rev", args->max_create_rev,
                  "Keys created at or before this revision");
}

void AddPutFlags(CLI::App* cmd, PutArgs* args) {
  cmd->add_option("key", args->key, "The key")->required();
  cmd->add_option_function<std::string>(
      "value",
      [args](const std::string& v) {
        args->value = v;
        args->value_given = true;
      },
      "The value (read from stdin when left out)");
  cmd->add_option("--lease", args->lease, "Attach to this lease (hex id, as keel prints it)");
  cmd->add_flag("--prev-kv", args->prev_kv, "Print the previous key-value");
  cmd->add_flag("--ignore-value", args->ignore_value, "Keep the current value (key must exist)");
  cmd->add_flag("--ignore-lease", args->ignore_lease, "Keep the current lease (key must exist)");
}

void AddDelFlags(CLI::App* cmd, DelArgs* args) {
  cmd->add_option("key", args->key, "The key, or the start of the range")->required();
  cmd->add_option("range_end", args->range_end, "End of the range [key, range_end)");
  cmd->add_flag("--prefix", args->prefix, "Every key that starts with <key>");
  cmd->add_flag("--from-key", args->from_key, "Every key >= <key> (byte order)");
  cmd->add_flag("--prev-kv", args->prev_kv, "Print the deleted key-values");
}

absl::StatusOr<keel::RangeOptions> ToRangeOptions(const GetArgs& args) {
  RETURN_IF_ERROR(CheckRangeFlags(args.key, args.range_end, args.prefix, args.from_key));
  keel::RangeOptions o;
  SetRange(args.key, args.range_end, args.prefix, args.from_key, &o);
  if (args.limit < 0) return absl::InvalidArgumentError("--limit must be >= 0");
  if (args.rev < 0) return absl::InvalidArgumentError("--rev must be >= 0");
  o.limit = args.limit;
  o.revision = args.rev;
  if (args.consistency == "s") {
    o.consistency = keel::Consistency::kSerializable;
  } else if (args.consistency != "l") {
    return absl::InvalidArgumentError(
        absl::StrCat("--consistency is l or s, not '", args.consistency, "'"));
  }
  const std::string sort_by = absl::AsciiStrToUpper(args.sort_by);
  const std::string order = absl::AsciiStrToUpper(args.order);
  if (!sort_by.empty() || !order.empty()) {
    if (sort_by.empty() || sort_by == "KEY") {
      o.sort_target = keel::SortTarget::kKey;
    } else if (sort_by == "VERSION") {
      o.sort_target = keel::SortTarget::kVersion;
    } else if (sort_by == "CREATE") {
      o.sort_target = keel::SortTarget::kCreateRevision;
    } else if (sort_by == "MODIFY") {
      o.sort_target = keel::SortTarget::kModRevision;
    } else if (sort_by == "VALUE") {
      o.sort_target = keel::SortTarget::kValue;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "--sort-by is KEY, VERSION, CREATE, MODIFY or VALUE, not '", args.sort_by, "'"));
    }
    if (order.empty() || order == "ASCEND") {
      o.sort_order = keel::SortOrder::kAscend;
    } else if (order == "DESCEND") {
      o.sort_order = keel::SortOrder::kDescend;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("--order is ASCEND or DESCEND, not '", args.order, "'"));
    }
  }
  o.keys_only = args.keys_only;
  o.count_only = args.count_only;
  o.min_mod_revision = args.min_mod_rev;
  o.max_mod_revision = args.max_mod_rev;
  o.min_create_revision = args.min_create_rev;
  o.max_create_revision = args.max_create_rev;
  return o;
}

absl::StatusOr<keel::PutOptions> ToPutOptions(const PutArgs& args) {
  if (args.key.empty()) return absl::InvalidArgumentError("the key is empty");
  keel::PutOptions o;
  if (!absl::SimpleHexAtoi(args.lease, &o.lease)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--lease '", args.lease, "' is not a hex lease id"));
  }
  if (args.ignore_value && args.value_given) {
    return absl::InvalidArgumentError("a value cannot be given with --ignore-value");
  }
  o.prev_kv = args.prev_kv;
  o.ignore_value = args.ignore_value;
  o.ignore_lease = args.ignore_lease;
  return o;
}

absl::StatusOr<keel::DeleteOptions> ToDeleteOptions(const DelArgs& args) {
  RETURN_IF_ERROR(CheckRangeFlags(args.key, args.range_end, args.prefix, args.from_key));
  keel::DeleteOptions o;
  SetRange(args.key, args.range_end, args.prefix, args.from_key, &o);
  o.prev_kv = args.prev_kv;
  return o;
}

void PrintRange(const keel::RangeResponse& r, const GetArgs& args, OutputFormat format,
                std::ostream& out) {
  if (format == OutputFormat::kJson) {
    out << GoJson(r) << "\n";
    return;
  }
  if (args.count_only) {
    out << r.count() << "\n";
    return;
  }
  if (format == OutputFormat::kTable) {
    Table table({"key", "value", "version", "create rev", "mod rev", "lease"});
    for (const keel::KeyValue& kv : r.kvs()) {
      table.AddRow({Printable(kv.key()), Printable(kv.value()), absl::StrCat(kv.version()),
                    absl::StrCat(kv.create_revision()), absl::StrCat(kv.mod_revision()),
                    kv.lease() == 0 ? "" : HexId(kv.lease())});
    }
    out << table.Render();
    return;
  }
  for (const keel::KeyValue& kv : r.kvs()) PrintKv(kv, args.print_value_only, out);
}

void PrintPut(const keel::PutResponse& r, OutputFormat format, std::ostream& out) {
  if (format == OutputFormat::kJson) {
    out << GoJson(r) << "\n";
    return;
  }
  out << "OK\n";
  if (r.has_prev_kv()) PrintKv(r.prev_kv(), false, out);
}

void PrintDelete(const keel::DeleteResponse& r, OutputFormat format, std::ostream& out) {
  if (format == OutputFormat::kJson) {
    out << GoJson(r) << "\n";
    return;
  }
  out << r.deleted() << "\n";
  for (const keel::KeyValue& kv : r.prev_kvs()) PrintKv(kv, false, out);
}

void AddKvCommands(CLI::App& app, Context& ctx) {
  auto get_args = std::make_shared<GetArgs>();
  CLI::App* get = app.add_subcommand("get", "Read a key or a range of keys");
  get->footer(
      "Output: simple prints each key and value on their own lines; table adds versions and "
      "revisions; json is etcdctl's (keys and values base64).\n"
      "Examples:\n  keel get greeting\n  keel get app/ --prefix --keys-only\n"
      "  keel get a c            # every key in [a, c)\n  keel get \"\" --prefix --limit 10");
  AddGetFlags(get, get_args.get());
  get->callback(
      [&ctx, get_args] { ctx.set_action([&ctx, get_args] { return RunGet(ctx, *get_args); }); });

  auto put_args = std::make_shared<PutArgs>();
  CLI::App* put = app.add_subcommand("put", "Write a key");
  put->footer(
      "Prints OK (and with --prev-kv the previous key and value).\n"
      "Examples:\n  keel put greeting hello\n  keel put config < config.yaml");
  AddPutFlags(put, put_args.get());
  put->callback(
      [&ctx, put_args] { ctx.set_action([&ctx, put_args] { return RunPut(ctx, *put_args); }); });

  auto del_args = std::make_shared<DelArgs>();
  CLI::App* del = app.add_subcommand("del", "Delete a key or a range of keys");
  del->alias("delete");
  del->footer(
      "Prints the number of keys deleted (and with --prev-kv each deleted key and value).\n"
      "Examples:\n  keel del greeting\n  keel del app/ --prefix");
  AddDelFlags(del, del_args.get());
  del->callback(
      [&ctx, del_args] { ctx.set_action([&ctx, del_args] { return RunDel(ctx, *del_args); }); });
}

}  // namespace keel::cli
