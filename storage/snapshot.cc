#include "storage/snapshot.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "storage/crc32c.h"
#include "storage/mvcc_encoding.h"
#include "storage/mvcc_fs.h"

namespace keel::storage {
namespace fs = std::filesystem;

namespace {

absl::StatusOr<uint32_t> FileCrc(const std::string& path, uint64_t* size) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::UnavailableError("cannot open " + path);
  std::vector<char> buf(1 << 20);
  uint32_t crc = 0;
  *size = 0;
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto n = static_cast<size_t>(in.gcount());
    crc = Crc32cExtend(crc, buf.data(), n);
    *size += n;
  }
  return crc;
}

bool SafeName(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos;
}

}  // namespace

uint32_t ChunkCrc(const internalpb::SnapshotChunk& chunk) {
  std::string head;
  mvcc::AppendBigEndian64(&head, chunk.seq());
  mvcc::AppendBigEndian64(&head, chunk.file_index());
  mvcc::AppendBigEndian64(&head, chunk.offset());
  head.push_back(chunk.done() ? 1 : 0);
  if (chunk.has_manifest()) head += chunk.manifest().SerializeAsString();
  const uint32_t crc = Crc32c(head);
  return Crc32cExtend(crc, chunk.data().data(), chunk.data().size());
}

// ------------------------------------------------------------------- reader

absl::StatusOr<std::unique_ptr<SnapshotReader>> SnapshotReader::Create(
    KvStore& store, const raftpb::SnapshotMetadata& metadata, std::string checkpoint_dir,
    uint64_t chunk_bytes) {
  RETURN_IF_ERROR(store.CreateCheckpoint(metadata, checkpoint_dir));
  std::unique_ptr<SnapshotReader> r(new SnapshotReader(std::move(checkpoint_dir), chunk_bytes));
  *r->manifest_.mutable_metadata() = metadata;
  r->manifest_.set_revision(store.Revision());
  r->manifest_.set_compact_revision(store.CompactRevision());
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(r->dir_)) {
    if (e.is_regular_file()) names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  uint64_t total = 0;
  for (const auto& name : names) {
    uint64_t size = 0;
    ASSIGN_OR_RETURN(uint32_t crc, FileCrc(r->dir_ + "/" + name, &size));
    auto* f = r->manifest_.add_files();
    f->set_name(name);
    f->set_size_bytes(size);
    f->set_crc32c(crc);
    total += size;
  }
  r->manifest_.set_total_bytes(total);
  return r;
}

SnapshotReader::~SnapshotReader() {
  in_.close();
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

absl::StatusOr<bool> SnapshotReader::Next(internalpb::SnapshotChunk* chunk) {
  if (done_) return false;
  chunk->Clear();
  chunk->set_seq(seq_++);
  if (file_ < 0) {
    *chunk->mutable_manifest() = manifest_;
    file_ = 0;
    offset_ = 0;
    if (manifest_.files_size() == 0) {
      chunk->set_done(true);
      done_ = true;
    }
    chunk->set_crc32c(ChunkCrc(*chunk));
    return true;
  }
  const auto& f = manifest_.files(file_);
  if (offset_ == 0) {
    in_.close();
    in_.clear();
    in_.open(dir_ + "/" + f.name(), std::ios::binary);
    if (!in_) return absl::UnavailableError("cannot open " + f.name());
  }
  const uint64_t n = std::min<uint64_t>(chunk_bytes_, f.size_bytes() - offset_);
  std::string data(n, '\0');
  in_.read(data.data(), static_cast<std::streamsize>(n));
  if (static_cast<uint64_t>(in_.gcount()) != n) {
    return absl::DataLossError("snapshot file shrank while streaming: " + f.name());
  }
  chunk->set_file_index(static_cast<uint32_t>(file_));
  chunk->set_offset(offset_);
  chunk->set_data(std::move(data));
  offset_ += n;
  if (offset_ == f.size_bytes()) {
    ++file_;
    offset_ = 0;
    if (file_ == manifest_.files_size()) {
      chunk->set_done(true);
      done_ = true;
    }
  }
  chunk->set_crc32c(ChunkCrc(*chunk));
  return true;
}

// ---------------------------------------------------------------- installer

absl::StatusOr<std::unique_ptr<SnapshotInstaller>> SnapshotInstaller::Begin(
    const std::string& store_dir) {
  const std::string dir = store_dir + "/incoming.tmp";
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("mkdir ", dir, ": ", ec.message()));
  return std::unique_ptr<SnapshotInstaller>(new SnapshotInstaller(dir));
}

SnapshotInstaller::~SnapshotInstaller() {
  if (fd_ >= 0) ::close(fd_);
  if (!installed_) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

absl::Status SnapshotInstaller::CloseFile() {
  if (fd_ < 0) return absl::OkStatus();
  const auto& f = manifest_.files(file_);
  const int rc = ::fsync(fd_);
  ::close(fd_);
  fd_ = -1;
  if (rc != 0) return absl::UnavailableError("fsync " + f.name());
  if (offset_ != f.size_bytes() || file_crc_ != f.crc32c()) {
    return absl::DataLossError(absl::StrCat("snapshot file ", f.name(), " does not match its ",
                                            "manifest (size or CRC32C)"));
  }
  return absl::OkStatus();
}

absl::Status SnapshotInstaller::Add(const internalpb::SnapshotChunk& chunk) {
  if (failed_) return absl::FailedPreconditionError("snapshot install already failed");
  failed_ = true;  // Until this chunk is accepted.
  if (done_) return absl::InvalidArgumentError("snapshot chunk after the last one");
  if (ChunkCrc(chunk) != chunk.crc32c()) {
    return absl::DataLossError(absl::StrCat("snapshot chunk ", chunk.seq(), ": CRC32C mismatch"));
  }
  if (chunk.seq() != next_seq_) {
    return absl::InvalidArgumentError(
        absl::StrCat("snapshot chunk ", chunk.seq(), " out of order, expected ", next_seq_));
  }
  ++next_seq_;
  if (chunk.seq() == 0) {
    if (!chunk.has_manifest()) return absl::InvalidArgumentError("first chunk has no manifest");
    manifest_ = chunk.manifest();
    for (const auto& f : manifest_.files()) {
      if (!SafeName(f.name())) return absl::InvalidArgumentError("bad file name " + f.name());
    }
    done_ = chunk.done();
    failed_ = false;
    return absl::OkStatus();
  }
  const int index = static_cast<int>(chunk.file_index());
  if (index != file_) {
    // Moving on to the next file: the previous one must be complete.
    if (index != file_ + 1 || chunk.offset() != 0 || index >= manifest_.files_size()) {
      return absl::InvalidArgumentError("snapshot chunk for an unexpected file");
    }
    RETURN_IF_ERROR(CloseFile());
    file_ = index;
    offset_ = 0;
    file_crc_ = 0;
    const std::string path = dir_ + "/" + manifest_.files(file_).name();
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) return absl::UnavailableError("cannot create " + path);
  }
  if (chunk.offset() != offset_) {
    return absl::InvalidArgumentError(
        absl::StrCat("snapshot chunk at offset ", chunk.offset(), ", expected ", offset_));
  }
  const std::string& data = chunk.data();
  size_t written = 0;
  while (written < data.size()) {
    const ssize_t n = ::write(fd_, data.data() + written, data.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::UnavailableError("write to snapshot file failed");
    written += static_cast<size_t>(n);
  }
  offset_ += data.size();
  file_crc_ = Crc32cExtend(file_crc_, data.data(), data.size());
  if (chunk.done()) {
    RETURN_IF_ERROR(CloseFile());
    if (file_ != manifest_.files_size() - 1) {
      return absl::InvalidArgumentError("snapshot stream ended before its last file");
    }
    done_ = true;
  }
  failed_ = false;
  return absl::OkStatus();
}

absl::StatusOr<internalpb::SnapshotManifest> SnapshotInstaller::Finish(KvStore& store) {
  if (failed_ || !done_) {
    return absl::FailedPreconditionError("snapshot stream incomplete or failed");
  }
  RETURN_IF_ERROR(mvcc::FsyncPath(dir_));
  RETURN_IF_ERROR(store.InstallStaged(dir_, manifest_.metadata().index()));
  installed_ = true;
  return manifest_;
}

}  // namespace keel::storage
