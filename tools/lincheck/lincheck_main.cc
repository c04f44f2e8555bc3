// keel-lincheck: checks a recorded client history for linearizability (see history.h for the
// format and checker.h for the model), or generates a valid random one to time the checker.
//
// Exit codes: 0 VALID, 1 INVALID, 2 usage or input error, 3 UNKNOWN (a key's search timed out).
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "tools/lincheck/checker.h"
#include "tools/lincheck/generator.h"
#include "tools/lincheck/history.h"
#include "tools/lincheck/report.h"

namespace keel::lincheck {
namespace {

constexpr int kExitValid = 0;
constexpr int kExitInvalid = 1;
constexpr int kExitUsage = 2;
constexpr int kExitUnknown = 3;

constexpr char kUsage[] = R"(usage:
  keel-lincheck [--history FILE] [--timeout DURATION] [--max-memory-mb N] [-w text|json]
                [--timeline] [--width N]
      Checks the JSON-lines history in FILE (default: stdin). Prints VALID, INVALID key=<k>
      with the window of operations that cannot be linearized, or UNKNOWN key=<k> when a key's
      search exceeded --timeout (per key, e.g. 30s; default: none) or --max-memory-mb (per key,
      default 1024). --timeline draws the window as a timeline. Exit: 0 valid, 1 invalid, 2 usage/input error, 3 unknown.
  keel-lincheck --generate OPS [--keys N] [--processes N] [--unknown FRACTION] [--seed N]
                [--stale-read]
      Writes a random linearizable history of OPS operations to stdout (defaults: 10 keys,
      16 processes, unknown 0.02, seed 1); --stale-read makes one read stale (not linearizable).
)";

struct Args {
  std::string history_path;  // Empty: stdin.
  absl::Duration timeout = absl::InfiniteDuration();
  uint64_t max_memory_mb = CheckOptions().max_memory_bytes_per_key >> 20;
  bool json = false;
  ReportOptions report;
  bool generate = false;
  GeneratorOptions generator;
  bool stale_read = false;
};

int UsageError(const std::string& message) {
  std::fprintf(stderr, "keel-lincheck: %s\n\n%s", message.c_str(), kUsage);
  return kExitUsage;
}

template <typename T>
bool ParseNumber(const std::string& text, T* out) {
  if constexpr (std::is_floating_point_v<T>) {
    return absl::SimpleAtod(text, out);
  } else {
    return absl::SimpleAtoi(text, out);
  }
}

// Returns an empty string on success, else the error.
std::string ParseArgs(int argc, char** argv, Args* args) {
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    std::string value;
    bool has_inline_value = false;
    if (const size_t eq = flag.find('='); flag.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
      has_inline_value = true;
    }
    auto next = [&](std::string* out) -> bool {
      if (has_inline_value) {
        *out = value;
        return true;
      }
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    auto number = [&](auto* out) -> std::string {
      std::string text;
      if (!next(&text)) return absl::StrCat(flag, " needs a value");
      if (!ParseNumber(text, out)) return absl::StrCat(flag, ": not a number: '", text, "'");
      return "";
    };
    std::string error;
    if (flag == "-h" || flag == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(kExitValid);
    } else if (flag == "--history") {
      if (!next(&args->history_path)) error = "--history needs a file";
    } else if (flag == "--timeout") {
      std::string text;
      if (!next(&text) || !absl::ParseDuration(text, &args->timeout) ||
          args->timeout < absl::ZeroDuration()) {
        error = absl::StrCat("--timeout needs a duration such as 30s or 500ms, not '", text, "'");
      }
    } else if (flag == "--max-memory-mb") {
      error = number(&args->max_memory_mb);
      if (error.empty() && (args->max_memory_mb == 0 || args->max_memory_mb > (1 << 24))) {
        error = "--max-memory-mb must be in [1, 16777216]";
      }
    } else if (flag == "-w" || flag == "--write-out") {
      std::string text;
      if (!next(&text) || (text != "text" && text != "json")) {
        error = absl::StrCat(flag, " must be text or json");
      }
      args->json = text == "json";
    } else if (flag == "--timeline") {
      args->report.timeline = true;
    } else if (flag == "--width") {
      error = number(&args->report.timeline_width);
      if (error.empty() &&
          (args->report.timeline_width < 20 || args->report.timeline_width > 1000)) {
        error = "--width must be in [20, 1000]";
      }
    } else if (flag == "--generate") {
      args->generate = true;
      error = number(&args->generator.ops);
    } else if (flag == "--keys") {
      error = number(&args->generator.keys);
      if (error.empty() && args->generator.keys == 0) error = "--keys must be at least 1";
    } else if (flag == "--processes") {
      error = number(&args->generator.processes);
      if (error.empty() && args->generator.processes == 0) error = "--processes must be >= 1";
    } else if (flag == "--unknown") {
      error = number(&args->generator.unknown_fraction);
      if (error.empty() &&
          !(args->generator.unknown_fraction >= 0 && args->generator.unknown_fraction <= 0.5)) {
        error = "--unknown must be in [0, 0.5]";
      }
    } else if (flag == "--seed") {
      error = number(&args->generator.seed);
    } else if (flag == "--stale-read") {
      args->stale_read = true;
    } else {
      error = absl::StrCat("unknown flag ", flag);
    }
    if (!error.empty()) return error;
  }
  if (!args->generate && args->stale_read) return "--stale-read needs --generate";
  return "";
}

int Generate(const Args& args) {
  History history = GenerateHistory(args.generator);
  if (args.stale_read) {
    auto id = InjectStaleRead(&history, args.generator.seed);
    if (!id.ok()) {
      std::fprintf(stderr, "keel-lincheck: %s\n", std::string(id.status().message()).c_str());
      return kExitUsage;
    }
    std::fprintf(stderr, "keel-lincheck: made read id=%llu stale\n",
                 static_cast<unsigned long long>(*id));
  }
  std::string out;
  for (const Operation& op : history) {
    out += OperationToJson(op);
    out += '\n';
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return kExitValid;
}

int Check(const Args& args) {
  const auto history =
      args.history_path.empty() ? ReadHistory(std::cin) : ReadHistoryFile(args.history_path);
  if (!history.ok()) {
    std::fprintf(stderr, "keel-lincheck: %s\n", std::string(history.status().message()).c_str());
    return kExitUsage;
  }
  CheckOptions options;
  options.timeout_per_key = args.timeout;
  options.max_memory_bytes_per_key = args.max_memory_mb << 20;
  const CheckResult result = CheckHistory(*history, options);
  const std::string report = args.json ? FormatJson(result) : FormatText(result, args.report);
  std::fwrite(report.data(), 1, report.size(), stdout);
  switch (result.verdict) {
    case Verdict::kValid:
      return kExitValid;
    case Verdict::kInvalid:
      return kExitInvalid;
    case Verdict::kUnknown:
      return kExitUnknown;
  }
  return kExitUsage;
}

}  // namespace
}  // namespace keel::lincheck

int main(int argc, char** argv) {
  keel::lincheck::Args args;
  if (const std::string error = keel::lincheck::ParseArgs(argc, argv, &args); !error.empty()) {
    return keel::lincheck::UsageError(error);
  }
  return args.generate ? keel::lincheck::Generate(args) : keel::lincheck::Check(args);
}
