#include "tools/lincheck/report.h"

#include <algorithm>
#include <limits>
#include <map>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace keel::lincheck {
namespace {

constexpr uint64_t kInfinity = std::numeric_limits<uint64_t>::max();

// A string as a JSON string literal (also how the text report quotes values).
std::string Quote(absl::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      absl::StrAppend(&out, absl::StrFormat("\\u%04x", static_cast<unsigned char>(c)));
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
  return out;
}

std::string KeyForText(absl::string_view key) {
  const bool plain = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return c > ' ' && c < 0x7F && c != '"' && c != '\\';
  });
  return plain ? std::string(key) : Quote(key);
}

uint64_t EndOrInfinity(const Operation& op) {
  return op.outcome == Outcome::kUnknown ? kInfinity : std::max(op.end_ns, op.start_ns);
}

// "+1.234ms" relative to `origin`.
std::string RelativeTime(uint64_t t, uint64_t origin) {
  if (t == kInfinity) return "never";
  const double us = static_cast<double>(t - origin) / 1000.0;
  if (us < 1000) return absl::StrFormat("+%.3fus", us);
  if (us < 1e6) return absl::StrFormat("+%.3fms", us / 1000);
  return absl::StrFormat("+%.3fs", us / 1e6);
}

std::string Interval(const Operation& op, uint64_t origin) {
  return absl::StrCat("[", RelativeTime(op.start_ns, origin), " .. ",
                      op.outcome == Outcome::kUnknown ? "?" : RelativeTime(op.end_ns, origin), "]");
}

uint64_t WindowOrigin(const Counterexample& cx) {
  uint64_t origin = kInfinity;
  for (const Operation& op : cx.context) origin = std::min(origin, op.start_ns);
  for (const Operation& op : cx.stuck) origin = std::min(origin, op.start_ns);
  for (const Operation& op : cx.sources) origin = std::min(origin, op.start_ns);
  if (cx.state_set_by.has_value()) origin = std::min(origin, cx.state_set_by->start_ns);
  return origin == kInfinity ? 0 : origin;
}

void AppendCounterexample(const KeyResult& key, const ReportOptions& options, std::string* out) {
  const Counterexample& cx = *key.counterexample;
  const uint64_t origin = WindowOrigin(cx);
  absl::StrAppend(out, "  why: ", cx.reason, "\n");
  absl::StrAppend(out, "  ", key.ops, " operations on this key (", key.unknown_ops,
                  " with unknown outcome); times are relative to start_ns=", origin, "\n");
  absl::StrAppend(out, "  the register ",
                  cx.found_by_search ? "after the furthest partial linearization" : "then", ": ",
                  cx.state.has_value() ? Quote(*cx.state) : "absent");
  if (cx.state_set_by.has_value()) {
    absl::StrAppend(out, ", set by ", DescribeOperation(*cx.state_set_by));
  }
  out->append("\n");
  if (!cx.context.empty()) {
    absl::StrAppend(out, cx.found_by_search ? "  its end, in linearization order:\n"
                                            : "  the change that rules the read out:\n");
    for (const Operation& op : cx.context) {
      absl::StrAppend(out, "    ", DescribeOperation(op), "  ", Interval(op, origin), "\n");
    }
  }
  absl::StrAppend(out, cx.found_by_search ? "  none of these can be linearized next:\n"
                                          : "  the impossible read:\n");
  for (const Operation& op : cx.stuck) {
    absl::StrAppend(out, "    ", DescribeOperation(op), "  ", Interval(op, origin), "\n");
  }
  if (!cx.sources.empty()) {
    absl::StrAppend(out, "  the operations that could have produced what ",
                    cx.found_by_search ? "they need" : "it needs", ":\n");
    for (const Operation& op : cx.sources) {
      absl::StrAppend(out, "    ", DescribeOperation(op), "  ", Interval(op, origin), "\n");
    }
  }
  if (options.timeline) {
    // The window: context, stuck and sources, each op once.
    std::vector<Operation> window;
    absl::flat_hash_set<uint64_t> ids;
    for (const auto* ops : {&cx.context, &cx.stuck, &cx.sources}) {
      for (const Operation& op : *ops) {
        if (ids.insert(op.id).second) window.push_back(op);
      }
    }
    std::sort(window.begin(), window.end(), [](const Operation& x, const Operation& y) {
      return std::tie(x.start_ns, x.id) < std::tie(y.start_ns, y.id);
    });
    out->append("\n");
    out->append(RenderTimeline(window, options.timeline_width));
  }
}

std::string OpJson(const Operation& op) {
  std::string out = absl::StrCat("{\"id\":", op.id, ",\"process\":", op.process, ",\"op\":\"",
                                 OpTypeName(op.type), "\",\"outcome\":\"", OutcomeName(op.outcome),
                                 "\",\"description\":", Quote(DescribeOperation(op)), "}");
  return out;
}

}  // namespace

std::string DescribeOperation(const Operation& op) {
  std::string out = absl::StrCat("id=", op.id, " p=", op.process, " ");
  const bool ok = op.outcome == Outcome::kOk;
  switch (op.type) {
    case OpType::kRead:
      out.append("read");
      if (ok) absl::StrAppend(&out, " -> ", op.found ? Quote(op.result) : "absent");
      break;
    case OpType::kWrite:
      absl::StrAppend(&out, "write ", Quote(op.value));
      break;
    case OpType::kDelete:
      out.append("delete");
      break;
    case OpType::kCas:
      absl::StrAppend(&out, "cas ", Quote(op.expect), " -> ", Quote(op.value));
      if (ok) out.append(op.cas_succeeded ? " succeeded" : " compare failed");
      break;
  }
  if (!ok) absl::StrAppend(&out, " (", OutcomeName(op.outcome), ")");
  return out;
}

std::string RenderTimeline(const std::vector<Operation>& ops, int width) {
  width = std::max(width, 20);
  if (ops.empty()) return "timeline: no operations\n";
  uint64_t t0 = kInfinity;
  uint64_t t1 = 0;
  for (const Operation& op : ops) {
    t0 = std::min(t0, op.start_ns);
    t1 = std::max(t1, op.start_ns);
    if (op.outcome != Outcome::kUnknown) t1 = std::max(t1, op.end_ns);
  }
  const uint64_t span = std::max<uint64_t>(t1 - t0, 1);
  auto column = [&](uint64_t t) {
    if (t == kInfinity) return width - 1;
    return static_cast<int>(static_cast<double>(t - t0) * (width - 1) / static_cast<double>(span));
  };

  // Rows: per process, as many lanes as its ops need to not overlap (in time).
  struct Lane {
    uint64_t process;
    uint64_t busy_until;
    std::string row;
  };
  std::vector<Lane> lanes;
  std::vector<size_t> order(ops.size());
  for (size_t i = 0; i < ops.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) {
    return std::tie(ops[x].process, ops[x].start_ns) < std::tie(ops[y].process, ops[y].start_ns);
  });
  for (const size_t i : order) {
    const Operation& op = ops[i];
    const uint64_t end = EndOrInfinity(op);
    Lane* lane = nullptr;
    for (Lane& l : lanes) {
      if (l.process == op.process && l.busy_until < op.start_ns) {
        lane = &l;
        break;
      }
    }
    if (lane == nullptr) {
      lanes.push_back(Lane{op.process, 0, std::string(width, ' ')});
      lane = &lanes.back();
    }
    lane->busy_until = end;
    const int c0 = column(op.start_ns);
    const int c1 = std::max(column(end), c0);
    std::string& row = lane->row;
    for (int c = c0; c <= c1; ++c) row[c] = '-';
    row[c0] = '[';
    row[c1] = end == kInfinity ? '>' : (c1 == c0 ? '|' : ']');
    const std::string label = absl::StrCat(i + 1);
    for (size_t k = 0; k < label.size() && c0 + 1 + static_cast<int>(k) < width; ++k) {
      row[c0 + 1 + k] = label[k];
    }
  }
  std::stable_sort(lanes.begin(), lanes.end(),
                   [](const Lane& x, const Lane& y) { return x.process < y.process; });

  std::string out = absl::StrCat("timeline: ", width, " columns = ", RelativeTime(t1, t0),
                                 " from start_ns=", t0, "; [n---] = op n, > = outcome unknown\n");
  for (const Lane& lane : lanes) {
    absl::StrAppend(&out, absl::StrFormat("%-8s|", absl::StrCat("p", lane.process)), lane.row,
                    "|\n");
  }
  for (size_t i = 0; i < ops.size(); ++i) {
    absl::StrAppend(&out, absl::StrFormat("%4d  ", i + 1), DescribeOperation(ops[i]), "  ",
                    Interval(ops[i], t0), "\n");
  }
  return out;
}

std::string FormatText(const CheckResult& result, const ReportOptions& options) {
  std::string out;
  const KeyResult* invalid = result.FirstInvalid();
  const KeyResult* unknown = nullptr;
  for (const KeyResult& k : result.keys) {
    if (k.verdict == Verdict::kUnknown && unknown == nullptr) unknown = &k;
  }
  if (invalid != nullptr) {
    absl::StrAppend(&out, "INVALID key=", KeyForText(invalid->key), "\n");
    AppendCounterexample(*invalid, options, &out);
  } else if (unknown != nullptr) {
    absl::StrAppend(&out, "UNKNOWN key=", KeyForText(unknown->key), "\n  ", unknown->unknown_reason,
                    " (", unknown->states,
                    " states): raise --timeout or --max-memory-mb, or check fewer operations per "
                    "key\n");
  } else {
    out.append("VALID\n");
  }
  size_t counts[3] = {0, 0, 0};
  for (const KeyResult& k : result.keys) counts[static_cast<int>(k.verdict)]++;
  absl::StrAppend(&out, "checked ", result.ops, " operations on ", result.keys.size(), " keys in ",
                  absl::FormatDuration(result.elapsed), ": ", counts[0], " valid, ", counts[1],
                  " invalid, ", counts[2], " unknown\n");
  return out;
}

std::string FormatJson(const CheckResult& result) {
  size_t counts[3] = {0, 0, 0};
  std::vector<std::string> keys;
  for (const KeyResult& k : result.keys) {
    counts[static_cast<int>(k.verdict)]++;
    keys.push_back(absl::StrFormat(
        "{\"key\":%s,\"verdict\":\"%s\",\"ops\":%d,\"unknown_ops\":%d,\"states\":%d,"
        "\"elapsed_ms\":%.3f%s}",
        Quote(k.key), VerdictName(k.verdict), k.ops, k.unknown_ops, k.states,
        absl::ToDoubleMilliseconds(k.elapsed),
        k.unknown_reason.empty() ? ""
                                 : absl::StrCat(",\"unknown_reason\":", Quote(k.unknown_reason))));
  }
  std::string out = absl::StrFormat(
      "{\"verdict\":\"%s\",\"ops\":%d,\"keys\":%d,\"valid_keys\":%d,\"invalid_keys\":%d,"
      "\"unknown_keys\":%d,\"elapsed_ms\":%.3f,\"per_key\":[%s]",
      VerdictName(result.verdict), result.ops, result.keys.size(), counts[0], counts[1], counts[2],
      absl::ToDoubleMilliseconds(result.elapsed), absl::StrJoin(keys, ","));
  if (const KeyResult* bad = result.FirstInvalid(); bad != nullptr) {
    const Counterexample& cx = *bad->counterexample;
    std::vector<std::string> context;
    std::vector<std::string> stuck;
    std::vector<std::string> sources;
    for (const Operation& op : cx.context) context.push_back(OpJson(op));
    for (const Operation& op : cx.stuck) stuck.push_back(OpJson(op));
    for (const Operation& op : cx.sources) sources.push_back(OpJson(op));
    absl::StrAppend(
        &out, ",\"invalid\":{\"key\":", Quote(bad->key), ",\"reason\":", Quote(cx.reason),
        ",\"found_by_search\":", cx.found_by_search ? "true" : "false",
        ",\"linearized\":", cx.linearized_count,
        ",\"state\":", cx.state.has_value() ? Quote(*cx.state) : "null", ",\"context\":[",
        absl::StrJoin(context, ","), "],\"stuck\":[", absl::StrJoin(stuck, ","), "],\"sources\":[",
        absl::StrJoin(sources, ","), "]}");
  }
  out.append("}\n");
  return out;
}

}  // namespace keel::lincheck
