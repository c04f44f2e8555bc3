#include "tests/integration/cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace keel::integration {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string MakeTempDir(const std::string& prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = absl::StrCat(tmp && *tmp ? tmp : "/tmp", "/", prefix, "XXXXXX");
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  const char* dir = mkdtemp(buf.data());
  if (dir == nullptr) {
    std::perror("mkdtemp");
    std::abort();
  }
  return dir;
}

namespace {

// fork + exec with stdin/stdout/stderr redirected to files. Everything the child needs
// is prepared before fork: after fork in a multi-threaded process only async-signal-safe
// calls are allowed.
// `netns_fd` >= 0: the child joins that network namespace before exec.
pid_t SpawnProcess(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                   const std::string& stdin_path, const std::string& stdout_path,
                   const std::string& stderr_path, int netns_fd = -1) {
  std::vector<char*> c_argv;
  for (const auto& a : argv) c_argv.push_back(const_cast<char*>(a.c_str()));
  c_argv.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  for (const auto& e : env) env_strings.push_back(e);
  std::vector<char*> c_env;
  for (const auto& e : env_strings) c_env.push_back(const_cast<char*>(e.c_str()));
  c_env.push_back(nullptr);
  const pid_t parent = getpid();

  const pid_t pid = fork();
  if (pid != 0) return pid;  // Parent (or -1 on failure).
  // Child: die with the test process so no keeld outlives a crashed test.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(127);
  if (netns_fd >= 0 && setns(netns_fd, CLONE_NEWNET) != 0) _exit(126);
  // keeld blocks SIGTERM itself; undo any mask inherited from the test's threads.
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  const int in = open(stdin_path.empty() ? "/dev/null" : stdin_path.c_str(), O_RDONLY);
  const int out = open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  const int err = stderr_path == stdout_path
                      ? out
                      : open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (in < 0 || out < 0 || err < 0) _exit(127);
  dup2(in, 0);
  dup2(out, 1);
  dup2(err, 2);
  execve(c_argv[0], c_argv.data(), c_env.data());
  _exit(127);
}

// Waits for `pid` to exit within `timeout`; returns its exit code (-1 for a signal), or
// nullopt on timeout.
std::optional<int> WaitExit(pid_t pid, absl::Duration timeout) {
  std::optional<int> code;
  WaitFor(
      [&] {
        int status = 0;
        const pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
          code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
          return true;
        }
        return r < 0;  // Not our child any more (already reaped).
      },
      timeout);
  return code;
}

}  // namespace

const char* KeeldPath() { return KEELD_PATH; }
const char* EtcdctlPath() { return KEEL_ETCDCTL_PATH; }

void SetDeadline(grpc::ClientContext* context, absl::Duration timeout) {
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)));
}

bool WaitFor(const std::function<bool()>& done, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    if (done()) return true;
    if (absl::Now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

int PickFreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  int port = 0;
  if (fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    socklen_t len = sizeof(addr);
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port = ntohs(addr.sin_port);
    }
  }
  if (fd >= 0) close(fd);
  return port;
}

CommandResult RunCommand(const std::vector<std::string>& argv, const std::string& input,
                         const std::vector<std::string>& env, absl::Duration timeout) {
  const std::string dir = MakeTempDir("keel-cmd-");
  const std::string in_path = dir + "/stdin", out_path = dir + "/stdout",
                    err_path = dir + "/stderr";
  { std::ofstream(in_path, std::ios::binary) << input; }
  CommandResult result;
  const pid_t pid = SpawnProcess(argv, env, in_path, out_path, err_path);
  if (pid > 0) {
    std::optional<int> code = WaitExit(pid, timeout);
    if (!code) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      result.timed_out = true;
    } else {
      result.exit_code = *code;
    }
  }
  result.out = ReadFile(out_path);
  result.err = ReadFile(err_path);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return result;
}

BackgroundCommand::BackgroundCommand(const std::vector<std::string>& argv,
                                     const std::vector<std::string>& env) {
  dir_ = MakeTempDir("keel-bg-");
  pid_ = SpawnProcess(argv, env, "", dir_ + "/stdout", dir_ + "/stderr");
}

BackgroundCommand::~BackgroundCommand() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::string BackgroundCommand::Out() const { return ReadFile(dir_ + "/stdout"); }
std::string BackgroundCommand::Err() const { return ReadFile(dir_ + "/stderr"); }

bool BackgroundCommand::WaitForOut(const std::function<bool(const std::string&)>& done,
                                   absl::Duration timeout) {
  return WaitFor([&] { return done(Out()); }, timeout);
}

std::optional<int> BackgroundCommand::WaitExited(absl::Duration timeout) {
  if (pid_ <= 0) return std::nullopt;
  std::optional<int> code = WaitExit(pid_, timeout);
  if (code) pid_ = -1;
  return code;
}

Cluster::Cluster(ClusterOptions options) : options_(std::move(options)) {
  if (options_.root.empty()) {
    root_ = MakeTempDir("keel-it-");
  } else {
    root_ = options_.root;
    own_root_ = false;
    std::error_code ec;
    std::filesystem::create_directories(root_, ec);
  }
  members_.resize(options_.size);
  log_offset_at_spawn_.resize(options_.size, 0);
  for (int i = 0; i < options_.size; ++i) {
    Member& m = members_[i];
    m.name = absl::StrCat("n", i + 1);
    m.data_dir = absl::StrCat(root_, "/", m.name, ".data");
    m.log_path = absl::StrCat(root_, "/", m.name, ".log");
  }
  AssignPorts();
}

Cluster::~Cluster() {
  for (int i = 0; i < size(); ++i) Kill(i);
  if (!own_root_) return;
  const char* keep = std::getenv("KEEL_IT_KEEP");
  if (keep != nullptr && *keep != '\0' && *keep != '0') {
    std::fprintf(stderr, "keeping %s\n", root_.c_str());
    return;
  }
  std::error_code ec;
  std::filesystem::remove_all(root_, ec);
}

void Cluster::AssignPorts() {
  const bool own_hosts = !options_.member_hosts.empty();
  for (Member& m : members_) {
    m.client_port = own_hosts ? 2379 : PickFreePort();
    m.peer_port = own_hosts ? 2380 : PickFreePort();
  }
  for (int i = 0; i < size(); ++i) BuildFlags(i);
}

int Cluster::AddMember(const std::string& initial_cluster_flag) {
  const int i = size();
  members_.emplace_back();
  log_offset_at_spawn_.push_back(0);
  Member& m = members_[i];
  m.name = absl::StrCat("n", i + 1);
  m.data_dir = absl::StrCat(root_, "/", m.name, ".data");
  m.log_path = absl::StrCat(root_, "/", m.name, ".log");
  m.client_port = PickFreePort();
  m.peer_port = PickFreePort();
  BuildFlags(i);
  std::string cluster = initial_cluster_flag;
  if (cluster.empty()) {
    std::vector<std::string> parts;
    for (int j = 0; j <= i; ++j) {
      if (j == i || running(j)) parts.push_back(absl::StrCat(members_[j].name, "=", peer_url(j)));
    }
    cluster = absl::StrJoin(parts, ",");
  }
  SetInitialCluster(i, cluster);
  m.flags.push_back("--initial-cluster-state");
  m.flags.push_back("existing");
  return i;
}

void Cluster::SetInitialCluster(int i, const std::string& initial_cluster) {
  std::vector<std::string>& flags = members_[i].flags;
  for (size_t f = 0; f + 1 < flags.size(); ++f) {
    if (flags[f] == "--initial-cluster") flags[f + 1] = initial_cluster;
  }
}

absl::Status Cluster::PrepareRejoin(int i) {
  Member& m = members_[i];
  if (m.pid > 0) return absl::FailedPreconditionError(absl::StrCat(m.name, " is running"));
  std::error_code ec;
  std::filesystem::remove_all(m.data_dir, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("cannot remove ", m.data_dir, ": ", ec.message()));
  }
  BuildFlags(i);
  m.flags.push_back("--initial-cluster-state");
  m.flags.push_back("existing");
  m.member_id = 0;
  return absl::OkStatus();
}

std::string Cluster::peer_url(int i) const {
  return absl::StrCat("http://", host(i), ":", members_[i].peer_port);
}

std::string Cluster::initial_cluster() const {
  std::vector<std::string> parts;
  for (int i = 0; i < size(); ++i) {
    parts.push_back(
        absl::StrCat(members_[i].name, "=http://", host(i), ":", members_[i].peer_port));
  }
  return absl::StrJoin(parts, ",");
}

std::string Cluster::host(int i) const {
  return options_.member_hosts.empty() ? "127.0.0.1" : options_.member_hosts[i];
}

void Cluster::BuildFlags(int i) {
  Member& m = members_[i];
  m.flags = {"--name",
             m.name,
             "--data-dir",
             m.data_dir,
             "--listen-client-urls",
             absl::StrCat("http://", host(i), ":", m.client_port),
             "--listen-peer-urls",
             absl::StrCat("http://", host(i), ":", m.peer_port),
             "--initial-cluster",
             initial_cluster(),
             "--initial-cluster-token",
             options_.token,
             "--heartbeat-interval",
             absl::StrCat(options_.heartbeat_interval_ms),
             "--election-timeout",
             absl::StrCat(options_.election_timeout_ms)};
  for (const auto& f : options_.extra_flags) m.flags.push_back(f);
  if (options_.member_flags) {
    for (const auto& f : options_.member_flags(i)) m.flags.push_back(f);
  }
  ResetChannel(i);
}

std::string Cluster::client_address(int i) const {
  return absl::StrCat(host(i), ":", members_[i].client_port);
}

void Cluster::ResetChannel(int i) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  // A restarted member must be reachable again quickly, not after gRPC's default
  // reconnect backoff (1 s growing to 120 s).
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 300);
  // Separate channels per member even to the same address (no subchannel sharing).
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  members_[i].channel =
      grpc::CreateCustomChannel(client_address(i), grpc::InsecureChannelCredentials(), args);
}

absl::Status Cluster::Spawn(int i) {
  Member& m = members_[i];
  if (m.pid > 0) return absl::FailedPreconditionError(absl::StrCat(m.name, " is running"));
  const std::string keeld = options_.keeld_path.empty() ? KeeldPath() : options_.keeld_path;
  if (access(keeld.c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("no keeld binary at ", keeld, ": build the keeld target"));
  }
  std::error_code ec;
  log_offset_at_spawn_[i] =
      std::filesystem::exists(m.log_path, ec) ? std::filesystem::file_size(m.log_path, ec) : 0;
  std::vector<std::string> argv = {keeld};
  argv.insert(argv.end(), m.flags.begin(), m.flags.end());
  int netns_fd = -1;
  if (!options_.member_netns.empty()) {
    netns_fd = open(options_.member_netns[i].c_str(), O_RDONLY | O_CLOEXEC);
    if (netns_fd < 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot open network namespace ", options_.member_netns[i]));
    }
  }
  m.pid = SpawnProcess(argv, {}, "", m.log_path, m.log_path, netns_fd);
  if (netns_fd >= 0) close(netns_fd);
  if (m.pid < 0) return absl::InternalError("fork failed");
  return absl::OkStatus();
}

std::optional<int> Cluster::Exited(int i) {
  Member& m = members_[i];
  if (m.pid <= 0) return std::nullopt;
  int status = 0;
  if (waitpid(m.pid, &status, WNOHANG) == m.pid) {
    m.pid = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  return std::nullopt;
}

absl::Status Cluster::WaitServing(int i, absl::Duration timeout) {
  std::optional<int> exit_code;
  const bool ok = WaitFor(
      [&] {
        const std::string log = Log(i);
        if (log.size() > log_offset_at_spawn_[i] &&
            log.find("keeld: serving as", log_offset_at_spawn_[i]) != std::string::npos) {
          return true;
        }
        exit_code = Exited(i);
        return exit_code.has_value();
      },
      timeout);
  if (ok && !exit_code) return absl::OkStatus();
  const std::string tail = LogTail(i, 10);
  if (exit_code) {
    // A lost port race shows up as "cannot listen"; the caller may retry.
    if (absl::StrContains(tail, "cannot listen")) {
      return absl::UnavailableError(absl::StrCat(members_[i].name, " could not listen:\n", tail));
    }
    return absl::InternalError(
        absl::StrCat(members_[i].name, " exited with code ", *exit_code, ":\n", tail));
  }
  return absl::DeadlineExceededError(
      absl::StrCat(members_[i].name, " did not start serving:\n", tail));
}

absl::Status Cluster::Start(absl::Duration timeout) {
  absl::Status status;
  for (int attempt = 0; attempt < 4; ++attempt) {
    if (attempt > 0) {
      for (int i = 0; i < size(); ++i) Kill(i);
      std::error_code ec;
      for (const Member& m : members_) std::filesystem::remove_all(m.data_dir, ec);
      AssignPorts();
    }
    status = absl::OkStatus();
    for (int i = 0; i < size() && status.ok(); ++i) status = Spawn(i);
    for (int i = 0; i < size() && status.ok(); ++i) status = WaitServing(i, timeout);
    if (absl::IsUnavailable(status)) continue;  // Port race: fresh ports.
    if (!status.ok()) return status;
    auto leader = WaitForLeader(timeout);
    if (!leader.ok()) return leader.status();
    return absl::OkStatus();
  }
  return status;
}

void Cluster::Kill(int i) {
  Member& m = members_[i];
  if (m.pid <= 0) return;
  kill(m.pid, SIGKILL);
  waitpid(m.pid, nullptr, 0);
  m.pid = -1;
}

int Cluster::Stop(int i, absl::Duration timeout) {
  Member& m = members_[i];
  if (m.pid <= 0) return -1;
  kill(m.pid, SIGTERM);
  std::optional<int> code = WaitExit(m.pid, timeout);
  if (!code) {
    Kill(i);
    return -1;
  }
  m.pid = -1;
  return *code;
}

void Cluster::Signal(int i, int signal) {
  if (members_[i].pid > 0) kill(members_[i].pid, signal);
}

std::optional<int> Cluster::WaitExited(int i, absl::Duration timeout) {
  Member& m = members_[i];
  if (m.pid <= 0) return std::nullopt;
  std::optional<int> code = WaitExit(m.pid, timeout);
  if (code) m.pid = -1;
  return code;
}

absl::Status Cluster::Restart(int i, absl::Duration timeout) {
  absl::Status status = Spawn(i);
  if (!status.ok()) return status;
  status = WaitServing(i, timeout);
  ResetChannel(i);
  return status;
}

std::unique_ptr<etcdserverpb::KV::Stub> Cluster::Kv(int i) {
  return etcdserverpb::KV::NewStub(members_[i].channel);
}
std::unique_ptr<etcdserverpb::Maintenance::Stub> Cluster::Maintenance(int i) {
  return etcdserverpb::Maintenance::NewStub(members_[i].channel);
}
std::unique_ptr<etcdserverpb::Cluster::Stub> Cluster::ClusterApi(int i) {
  return etcdserverpb::Cluster::NewStub(members_[i].channel);
}

absl::StatusOr<etcdserverpb::StatusResponse> Cluster::Status(int i, absl::Duration timeout) {
  grpc::ClientContext context;
  SetDeadline(&context, timeout);
  etcdserverpb::StatusResponse response;
  grpc::Status s = Maintenance(i)->Status(&context, etcdserverpb::StatusRequest(), &response);
  if (!s.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                        absl::StrCat(members_[i].name, ": ", s.error_message()));
  }
  members_[i].member_id = response.header().member_id();
  return response;
}

int Cluster::IndexOfMemberId(uint64_t member_id) const {
  for (int i = 0; i < size(); ++i) {
    if (members_[i].member_id == member_id && member_id != 0) return i;
  }
  return -1;
}

absl::StatusOr<int> Cluster::WaitForLeader(absl::Duration timeout, int exclude) {
  int leader_index = -1;
  std::string last;
  const bool ok = WaitFor(
      [&] {
        uint64_t leader = 0;
        for (int i = 0; i < size(); ++i) {
          if (!running(i) || i == exclude) continue;
          auto status = Status(i, absl::Milliseconds(500));
          if (!status.ok()) {
            last = std::string(status.status().message());
            return false;
          }
          if (status->leader() == 0 || (leader != 0 && status->leader() != leader)) {
            last = absl::StrCat(members_[i].name, " reports leader ", status->leader());
            return false;
          }
          leader = status->leader();
        }
        leader_index = IndexOfMemberId(leader);
        if (leader_index < 0 || !running(leader_index) || leader_index == exclude) {
          last = absl::StrCat("leader ", leader, " is not a running member");
          return false;
        }
        return true;
      },
      timeout);
  if (!ok) return absl::DeadlineExceededError(absl::StrCat("no agreed leader: ", last));
  return leader_index;
}

grpc::Status Cluster::Put(int i, const std::string& key, const std::string& value,
                          absl::Duration timeout, etcdserverpb::PutResponse* response) {
  grpc::ClientContext context;
  SetDeadline(&context, timeout);
  etcdserverpb::PutRequest request;
  request.set_key(key);
  request.set_value(value);
  etcdserverpb::PutResponse local;
  return Kv(i)->Put(&context, request, response ? response : &local);
}

grpc::Status Cluster::Get(int i, const std::string& key, bool serializable,
                          etcdserverpb::RangeResponse* response, absl::Duration timeout) {
  grpc::ClientContext context;
  SetDeadline(&context, timeout);
  etcdserverpb::RangeRequest request;
  request.set_key(key);
  request.set_serializable(serializable);
  return Kv(i)->Range(&context, request, response);
}

grpc::Status Cluster::PutWithRetry(int i, const std::string& key, const std::string& value,
                                   absl::Duration timeout) {
  grpc::Status status;
  WaitFor(
      [&] {
        status = Put(i, key, value, absl::Seconds(3));
        return status.ok() || (status.error_code() != grpc::StatusCode::UNAVAILABLE &&
                               status.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED);
      },
      timeout);
  return status;
}

std::string Cluster::Log(int i) const { return ReadFile(members_[i].log_path); }

std::string Cluster::LogSinceSpawn(int i) const {
  const std::string log = Log(i);
  return log.size() > log_offset_at_spawn_[i] ? log.substr(log_offset_at_spawn_[i]) : "";
}

std::string Cluster::LogTail(int i, int lines) const {
  const std::string log = Log(i);
  std::vector<absl::string_view> all = absl::StrSplit(log, '\n');
  const size_t from = all.size() > static_cast<size_t>(lines) ? all.size() - lines : 0;
  return absl::StrJoin(all.begin() + from, all.end(), "\n");
}

std::string Cluster::AllLogTails(int lines) const {
  std::string out;
  for (int i = 0; i < static_cast<int>(members_.size()); ++i) {
    absl::StrAppend(&out, "----- ", members_[i].name, " (", members_[i].log_path,
                    ") last lines -----\n", LogTail(i, lines), "\n");
  }
  return out;
}

}  // namespace keel::integration
