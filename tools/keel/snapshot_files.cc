#include "tools/keel/snapshot_files.h"

#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "storage/kv_store.h"
#include "storage/snapshot.h"
#include "storage/snapshot_file.h"

namespace keel::cli {
namespace fs = std::filesystem;
namespace {

// Unpacks `path` into the (new or empty) store directory `kv_dir`, staging in
// `staging_dir` (same file system). Returns the open store.
absl::StatusOr<std::unique_ptr<storage::KvStore>> Unpack(const std::string& path,
                                                         const std::string& kv_dir,
                                                         const std::string& staging_dir) {
  ASSIGN_OR_RETURN(std::unique_ptr<storage::SnapshotFileReader> reader,
                   storage::SnapshotFileReader::Open(path));
  storage::KvStoreOptions options;
  options.dir = kv_dir;
  options.block_cache_bytes = 16 << 20;
  ASSIGN_OR_RETURN(std::unique_ptr<storage::KvStore> store, storage::KvStore::Open(options));
  ASSIGN_OR_RETURN(std::unique_ptr<storage::SnapshotInstaller> installer,
                   storage::SnapshotInstaller::Begin(staging_dir));
  internalpb::SnapshotChunk chunk;
  for (;;) {
    ASSIGN_OR_RETURN(bool more, reader->Next(&chunk));
    if (!more) break;
    absl::Status added = installer->Add(chunk);
    if (!added.ok()) return absl::DataLossError(absl::StrCat(path, ": ", added.message()));
  }
  ASSIGN_OR_RETURN(internalpb::SnapshotManifest manifest, installer->Finish(*store));
  (void)manifest;
  return store;
}

absl::StatusOr<SnapshotFileStatus> Describe(const storage::KvStore& store,
                                            const std::string& path) {
  SnapshotFileStatus st;
  ASSIGN_OR_RETURN(storage::KvStore::KvHash hash, store.HashKv(0));
  st.hash = hash.hash;
  st.revision = store.Revision();
  etcdserverpb::RangeRequest all;
  all.set_key(std::string(1, '\0'));
  all.set_range_end(std::string(1, '\0'));
  all.set_count_only(true);
  ASSIGN_OR_RETURN(etcdserverpb::RangeResponse count, store.Range(all));
  st.total_keys = count.count();
  std::error_code ec;
  st.total_size = static_cast<int64_t>(fs::file_size(path, ec));
  return st;
}

}  // namespace

absl::StatusOr<SnapshotFileStatus> ReadSnapshotStatus(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    return absl::InvalidArgumentError(absl::StrCat("snapshot file ", path, " does not exist"));
  }
  std::string tmpl = (fs::temp_directory_path(ec) / "keel-snapshot-status-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    return absl::UnavailableError(absl::StrCat("cannot create a temporary directory ", tmpl));
  }
  const std::string tmp = tmpl;
  absl::StatusOr<SnapshotFileStatus> result = [&]() -> absl::StatusOr<SnapshotFileStatus> {
    ASSIGN_OR_RETURN(std::unique_ptr<storage::KvStore> store,
                     Unpack(path, tmp + "/kv", tmp + "/staging"));
    return Describe(*store, path);
  }();
  fs::remove_all(tmp, ec);
  return result;
}

absl::StatusOr<SnapshotFileStatus> RestoreSnapshot(const std::string& path,
                                                   const RestoreOptions& options) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    return absl::InvalidArgumentError(absl::StrCat("snapshot file ", path, " does not exist"));
  }
  if (options.data_dir.empty()) return absl::InvalidArgumentError("--data-dir is required");
  if (fs::exists(options.data_dir, ec) && !fs::is_empty(options.data_dir, ec)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "data dir ", options.data_dir, " exists and is not empty; restore makes a new one"));
  }
  if (options.initial_advertise_peer_urls.empty()) {
    return absl::InvalidArgumentError("--initial-advertise-peer-urls is empty");
  }
  // The member must be in --initial-cluster with exactly its advertised peer URLs, as
  // keeld will require when it bootstraps the new cluster from the same flags.
  const std::string cluster =
      options.initial_cluster.empty()
          ? absl::StrCat(options.name, "=", options.initial_advertise_peer_urls.front())
          : options.initial_cluster;
  std::vector<std::string> mine;
  for (absl::string_view item : absl::StrSplit(cluster, ',', absl::SkipEmpty())) {
    std::vector<std::string> kv = absl::StrSplit(item, absl::MaxSplits('=', 1));
    if (kv.size() != 2 || kv[0].empty() || kv[1].empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--initial-cluster: '", item, "' is not name=peer-url"));
    }
    if (kv[0] == options.name) mine.push_back(kv[1]);
  }
  if (mine.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--name '", options.name, "' is not in --initial-cluster '", cluster, "'"));
  }
  std::vector<std::string> advertised = options.initial_advertise_peer_urls;
  std::sort(mine.begin(), mine.end());
  std::sort(advertised.begin(), advertised.end());
  if (mine != advertised) {
    return absl::InvalidArgumentError(
        absl::StrCat("--initial-cluster has ", options.name, "=", absl::StrJoin(mine, ","),
                     " but --initial-advertise-peer-urls is ", absl::StrJoin(advertised, ",")));
  }
  fs::create_directories(options.data_dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create data dir ", options.data_dir, ": ", ec.message()));
  }
  absl::StatusOr<SnapshotFileStatus> result = [&]() -> absl::StatusOr<SnapshotFileStatus> {
    ASSIGN_OR_RETURN(std::unique_ptr<storage::KvStore> store,
                     Unpack(path, options.data_dir + "/kv", options.data_dir + "/snap"));
    RETURN_IF_ERROR(store->ResetForNewCluster());
    return Describe(*store, path);
  }();
  if (!result.ok()) fs::remove_all(options.data_dir, ec);  // Nothing half-restored stays.
  return result;
}

}  // namespace keel::cli
