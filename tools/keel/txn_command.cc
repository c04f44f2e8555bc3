// `keel txn`: a transaction in etcdctl's text form (txn_parser.h), from a terminal
// with prompts or from stdin.
#include <unistd.h>

#include <iostream>
#include <memory>

#include "common/status_macros.h"
#include "tools/keel/commands.h"
#include "tools/keel/kv_commands.h"
#include "tools/keel/txn_parser.h"

namespace keel::cli {
namespace {

// etcdctl's simple form: SUCCESS or FAILURE, then each operation's own output after
// a blank line.
void PrintTxn(const keel::TxnResponse& r, OutputFormat format, std::ostream& out) {
  if (format == OutputFormat::kJson) {
    out << GoJson(r) << "\n";
    return;
  }
  out << (r.succeeded() ? "SUCCESS" : "FAILURE") << "\n";
  for (const etcdserverpb::ResponseOp& op : r.responses()) {
    out << "\n";
    switch (op.response_case()) {
      case etcdserverpb::ResponseOp::kResponseRange:
        PrintRange(op.response_range(), GetArgs{}, OutputFormat::kSimple, out);
        break;
      case etcdserverpb::ResponseOp::kResponsePut:
        PrintPut(op.response_put(), OutputFormat::kSimple, out);
        break;
      case etcdserverpb::ResponseOp::kResponseDeleteRange:
        PrintDelete(op.response_delete_range(), OutputFormat::kSimple, out);
        break;
      case etcdserverpb::ResponseOp::kResponseTxn:
        PrintTxn(op.response_txn(), OutputFormat::kSimple, out);
        break;
      case etcdserverpb::ResponseOp::RESPONSE_NOT_SET:
        out << "(empty response)\n";
        break;
    }
  }
}

struct TxnArgs {
  bool interactive = false;
  bool interactive_given = false;
};

absl::Status RunTxn(Context& ctx, const TxnArgs& args) {
  const bool prompts = args.interactive_given ? args.interactive : isatty(STDIN_FILENO) == 1;
  ASSIGN_OR_RETURN(keel::Txn txn, ReadTxn(std::cin, prompts ? &ctx.err() : nullptr));
  ASSIGN_OR_RETURN(keel::Client * client, ctx.client());
  ASSIGN_OR_RETURN(keel::TxnResponse r, client->Txn(txn));
  PrintTxn(r, ctx.format(), ctx.out());
  return absl::OkStatus();
}

}  // namespace

void AddTxnCommand(CLI::App& app, Context& ctx) {
  auto args = std::make_shared<TxnArgs>();
  CLI::App* txn = app.add_subcommand("txn",
                                     "Run a transaction: if the compares hold, the "
                                     "success operations, else the failure ones");
  txn->footer(R"(Reads three sections, each ended by a blank line (or the end of input):
  compares, one per line:  <target>("<key>") <op> "<value>"
    target: value, version, create, mod or lease;  op: = != < >
  success operations:      put/get/del lines, as the commands take them
  failure operations:      likewise
Prints SUCCESS or FAILURE, then each operation's output after a blank line.
The exit code is 0 for either branch (as in etcdctl); scripts read the first line
or `-w json` (.succeeded).
Example (compare-and-swap):
  printf 'value("counter") = "41"\n\nput counter 42\n\nget counter\n' | keel txn)");
  CLI::Option* interactive = txn->add_flag(
      "-i,--interactive", args->interactive,
      "Prompt for each section (default: when stdin is a terminal); --interactive=false: never");
  txn->callback([&ctx, args, interactive] {
    args->interactive_given = interactive->count() > 0;
    ctx.set_action([&ctx, args] { return RunTxn(ctx, *args); });
  });
}

}  // namespace keel::cli
