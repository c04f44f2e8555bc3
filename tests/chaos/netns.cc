#include "tests/chaos/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"
#include "tests/integration/cluster.h"

namespace keel::chaos {
namespace {

constexpr char kPrefix[] = "kchaos";
constexpr char kNetnsDir[] = "/var/run/netns";
constexpr char kDriverName[] = "keel-chaos";

absl::Status Run(const std::vector<std::string>& argv, const std::string& input = "") {
  integration::CommandResult r = integration::RunCommand(argv, input, {}, absl::Seconds(20));
  if (r.exit_code == 0) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("`", absl::StrJoin(argv, " "), "` failed (exit ",
                                          r.exit_code, r.timed_out ? ", timed out" : "",
                                          "): ", absl::StripAsciiWhitespace(r.err)));
}

std::string ProcessName(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/comm"));
  std::string name;
  std::getline(in, name);
  return name;
}

// The pid in "kchaos<pid>-...", or 0.
pid_t OwnerOf(const std::string& ns) {
  absl::string_view rest = ns;
  if (!absl::ConsumePrefix(&rest, kPrefix)) return 0;
  int pid = 0;
  if (!absl::SimpleAtoi(rest.substr(0, rest.find('-')), &pid)) return 0;
  return pid;
}

// Forks a process that outlives a crash of this one: it waits until its pipe from us
// closes (we exited, however) and deletes every namespace named with our prefix. Must
// be called while this process has a single thread.
void StartReaper(const std::string& prefix) {
  int fds[2];
  if (pipe(fds) != 0) return;
  const pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return;
  }
  if (pid > 0) {
    close(fds[0]);
    fcntl(fds[1], F_SETFD, FD_CLOEXEC);  // keeld children must not hold it open.
    return;                              // The write end stays open, unused, until we exit.
  }
  close(fds[1]);
  signal(SIGINT, SIG_IGN);  // Ctrl-C reaches the driver, which cleans up and exits.
  signal(SIGTERM, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  const int null_fd = open("/dev/null", O_RDWR);
  dup2(null_fd, 0);
  dup2(null_fd, 1);  // Whoever reads our stdout must not wait for the reaper.
  char byte;
  for (;;) {
    const ssize_t r = read(fds[0], &byte, 1);
    if (r == 0 || (r < 0 && errno != EINTR)) break;
  }
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(kNetnsDir, ec)) {
    const std::string ns = entry.path().filename();
    if (absl::StartsWith(ns, prefix)) (void)Run({"/usr/sbin/ip", "netns", "delete", ns});
  }
  _exit(0);
}

}  // namespace

std::set<NetworkLab::Link> Cut(const std::vector<std::vector<int>>& groups) {
  std::set<NetworkLab::Link> links;
  for (size_t a = 0; a < groups.size(); ++a) {
    for (size_t b = 0; b < groups.size(); ++b) {
      if (a == b) continue;
      for (int from : groups[a]) {
        for (int to : groups[b]) links.insert({from, to});
      }
    }
  }
  return links;
}

int NetworkLab::RemoveStale() {
  int removed = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(kNetnsDir, ec)) {
    const std::string ns = entry.path().filename();
    const pid_t owner = OwnerOf(ns);
    if (owner == 0) continue;
    // Prefix: a copy of the driver under another name ("keel-chaos-v2") is still one
    // (the kernel's comm is the file name, cut to 15 characters).
    if (owner == getpid() ||
        (kill(owner, 0) == 0 && absl::StartsWith(ProcessName(owner), kDriverName))) {
      continue;
    }
    // keelds die with their driver (PDEATHSIG); anything of ours still inside is killed.
    integration::CommandResult pids =
        integration::RunCommand({"/usr/sbin/ip", "netns", "pids", ns}, "", {}, absl::Seconds(10));
    for (absl::string_view line : absl::StrSplit(pids.out, '\n', absl::SkipEmpty())) {
      int pid = 0;
      if (absl::SimpleAtoi(line, &pid) && ProcessName(pid) == "keeld") kill(pid, SIGKILL);
    }
    if (Run({"/usr/sbin/ip", "netns", "delete", ns}).ok()) ++removed;
  }
  return removed;
}

absl::StatusOr<std::unique_ptr<NetworkLab>> NetworkLab::Create(int members) {
  const std::string prefix = absl::StrCat(kPrefix, getpid(), "-");
  StartReaper(prefix);
  std::unique_ptr<NetworkLab> lab(new NetworkLab(prefix, members));
  absl::Status status = lab->Build();
  if (!status.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot build the chaos network (network namespaces need root and the ip and "
                     "iptables commands; tools/install-deps.sh installs them): ",
                     status.message()));
  }
  return lab;
}

std::string NetworkLab::member_ns(int i) const { return absl::StrCat(prefix_, "n", i + 1); }

std::string NetworkLab::member_address(int i) const { return absl::StrCat("10.211.0.", 11 + i); }

std::string NetworkLab::member_netns_path(int i) const {
  return absl::StrCat(kNetnsDir, "/", member_ns(i));
}

absl::Status NetworkLab::Build() {
  const std::string ip = "/usr/sbin/ip";
  const std::string br = bridge_ns();
  RETURN_IF_ERROR(Run({ip, "netns", "add", br}));
  created_.push_back(br);
  RETURN_IF_ERROR(Run({ip, "-n", br, "link", "set", "lo", "up"}));
  RETURN_IF_ERROR(Run({ip, "-n", br, "link", "add", "br0", "type", "bridge"}));
  RETURN_IF_ERROR(Run({ip, "-n", br, "addr", "add", client_address() + "/24", "dev", "br0"}));
  RETURN_IF_ERROR(Run({ip, "-n", br, "link", "set", "br0", "up"}));
  for (int i = 0; i < members_; ++i) {
    const std::string ns = member_ns(i);
    const std::string veth = absl::StrCat("vn", i + 1);
    RETURN_IF_ERROR(Run({ip, "netns", "add", ns}));
    created_.push_back(ns);
    RETURN_IF_ERROR(Run({ip, "-n", ns, "link", "set", "lo", "up"}));
    // Both ends are created inside our namespaces: the host never sees them.
    RETURN_IF_ERROR(Run(
        {ip, "-n", br, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns}));
    RETURN_IF_ERROR(Run({ip, "-n", br, "link", "set", veth, "master", "br0", "up"}));
    RETURN_IF_ERROR(Run({ip, "-n", ns, "addr", "add", member_address(i) + "/24", "dev", "eth0"}));
    RETURN_IF_ERROR(Run({ip, "-n", ns, "link", "set", "eth0", "up"}));
  }
  // Partitions need iptables inside the member namespaces: fail now, not mid-run.
  return SetBlocked({});
}

NetworkLab::~NetworkLab() {
  for (auto it = created_.rbegin(); it != created_.rend(); ++it) {
    absl::Status status = Run({"/usr/sbin/ip", "netns", "delete", *it});
    if (!status.ok()) std::fprintf(stderr, "keel-chaos: %s\n", status.ToString().c_str());
  }
}

absl::Status NetworkLab::EnterBridgeNamespace() {
  const std::string path = absl::StrCat(kNetnsDir, "/", bridge_ns());
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::InternalError(absl::StrCat("open ", path, ": ", std::strerror(errno)));
  const int r = setns(fd, CLONE_NEWNET);
  const int err = errno;
  close(fd);
  if (r != 0) return absl::InternalError(absl::StrCat("setns ", path, ": ", std::strerror(err)));
  return absl::OkStatus();
}

absl::Status NetworkLab::SetBlocked(const std::set<Link>& blocked) {
  rules_.resize(members_);
  for (int to = 0; to < members_; ++to) {
    // One atomic iptables-restore per member whose rules change: the whole table at once.
    std::string rules =
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n";
    for (const auto& [from, dest] : blocked) {
      if (dest == to) absl::StrAppend(&rules, "-A INPUT -s ", member_address(from), " -j DROP\n");
    }
    rules += "COMMIT\n";
    if (rules == rules_[to]) continue;
    RETURN_IF_ERROR(
        Run({"/usr/sbin/ip", "netns", "exec", member_ns(to), "iptables-restore"}, rules));
    rules_[to] = rules;
  }
  blocked_ = blocked;
  return absl::OkStatus();
}

}  // namespace keel::chaos
