#include "tools/keel/context.h"

#include <istream>
#include <iterator>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace keel::cli {

keel::ClientOptions Context::ClientOptionsFor(std::vector<std::string> endpoints) const {
  keel::ClientOptions options;
  options.endpoints = std::move(endpoints);
  options.connect_timeout = flags_.dial_timeout;
  options.call_timeout = flags_.command_timeout;
  // One attempt may use the whole command deadline: a CLI call that waits is better
  // than one that gives up on a slow but healthy member.
  options.attempt_timeout = flags_.command_timeout;
  return options;
}

absl::StatusOr<keel::Client*> Context::client() {
  if (client_ == nullptr) {
    keel::ClientOptions options = ClientOptionsFor(flags_.endpoints);
    options.follow_membership = true;
    absl::StatusOr<std::unique_ptr<keel::Client>> client = keel::Client::Connect(options);
    if (!client.ok()) return client.status();
    client_ = std::move(*client);
  }
  return client_.get();
}

CLI::Option* AddDurationOption(CLI::App* app, const std::string& name, absl::Duration* value,
                               const std::string& description) {
  auto parse = [value, name](const CLI::results_t& results) {
    const std::string& text = results.front();
    absl::Duration d;
    double seconds = 0;
    if (absl::SimpleAtod(text, &seconds)) {
      d = absl::Seconds(seconds);
    } else if (!absl::ParseDuration(text, &d)) {
      throw CLI::ValidationError(name, "'" + text + "' is not a duration (e.g. 5s, 500ms, 1m)");
    }
    if (d <= absl::ZeroDuration()) {
      throw CLI::ValidationError(name, "must be more than 0 (e.g. 5s)");
    }
    *value = d;
    return true;
  };
  CLI::Option* option = app->add_option(name, CLI::callback_t(parse), description);
  option->type_name("DURATION")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
      ->default_str(absl::FormatDuration(*value));
  return option;
}

std::string ReadAll(std::istream& in) {
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace keel::cli
