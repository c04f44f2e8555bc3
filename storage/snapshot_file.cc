#include "storage/snapshot_file.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "storage/crc32c.h"

namespace keel::storage {
namespace {

void AppendBe32(std::string* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

uint32_t DecodeBe32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

// Chunks are at most a few MiB (snapshot.h); anything far larger is corruption.
constexpr uint32_t kMaxRecordBytes = 256u << 20;

}  // namespace

std::string SnapshotFileEncoder::Track(std::string bytes) {
  crc_ = Crc32cExtend(crc_, bytes.data(), bytes.size());
  bytes_ += bytes.size();
  return bytes;
}

std::string SnapshotFileEncoder::Record(const internalpb::SnapshotChunk& chunk) {
  std::string out;
  if (!started_) {
    out.append(kSnapshotFileMagic, kSnapshotFileMagicBytes);
    started_ = true;
  }
  const std::string body = chunk.SerializeAsString();
  AppendBe32(&out, static_cast<uint32_t>(body.size()));
  out += body;
  return Track(std::move(out));
}

std::string SnapshotFileEncoder::End() {
  std::string out;
  if (!started_) out.append(kSnapshotFileMagic, kSnapshotFileMagicBytes);
  AppendBe32(&out, 0);
  const uint64_t before_padding = bytes_ + out.size();
  out.append((512 - before_padding % 512) % 512, '\0');
  out = Track(std::move(out));
  out.append(kSnapshotFileTrailerMagic, 8);
  AppendBe32(&out, crc_);
  out.append(kSnapshotFileTrailerBytes - 12, '\0');
  return out;
}

absl::StatusOr<std::unique_ptr<SnapshotFileReader>> SnapshotFileReader::Open(
    const std::string& path) {
  auto r = std::unique_ptr<SnapshotFileReader>(new SnapshotFileReader());
  r->path_ = path;
  r->in_.open(path, std::ios::binary);
  if (!r->in_) return absl::NotFoundError(absl::StrCat("cannot open snapshot file ", path));
  // Pass 1: the whole-file checksum over everything but its last 4 bytes.
  r->in_.seekg(0, std::ios::end);
  const auto size = static_cast<uint64_t>(r->in_.tellg());
  r->file_bytes_ = size;
  if (size < kSnapshotFileMagicBytes + 4 + kSnapshotFileTrailerBytes) {
    return absl::DataLossError(absl::StrCat(path, " is not a keel snapshot (too short)"));
  }
  r->in_.seekg(0);
  char magic[kSnapshotFileMagicBytes];
  r->in_.read(magic, sizeof magic);
  if (std::string_view(magic, sizeof magic) != kSnapshotFileMagic) {
    return absl::DataLossError(absl::StrCat(
        path,
        " is not a keel snapshot (no KEELSNP1 header; etcd's bbolt snapshots cannot be "
        "restored by keel)"));
  }
  uint32_t crc = Crc32cExtend(0, magic, sizeof magic);
  std::vector<char> buf(1 << 20);
  uint64_t left = size - kSnapshotFileMagicBytes - kSnapshotFileTrailerBytes;
  while (left > 0) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(left, buf.size()));
    r->in_.read(buf.data(), static_cast<std::streamsize>(n));
    if (static_cast<size_t>(r->in_.gcount()) != n) {
      return absl::DataLossError(absl::StrCat("cannot read ", path));
    }
    crc = Crc32cExtend(crc, buf.data(), n);
    left -= n;
  }
  char tail[kSnapshotFileTrailerBytes];
  r->in_.read(tail, sizeof tail);
  if (std::string_view(tail, 8) != kSnapshotFileTrailerMagic) {
    return absl::DataLossError(absl::StrCat(path, " is truncated (no KEELEND1 trailer)"));
  }
  const std::string_view reserved(tail + 12, kSnapshotFileTrailerBytes - 12);
  if (DecodeBe32(tail + 8) != crc || reserved.find_first_not_of('\0') != std::string_view::npos) {
    return absl::DataLossError(
        absl::StrCat(path, " is corrupt or truncated (whole-file checksum mismatch)"));
  }
  r->in_.clear();
  r->in_.seekg(static_cast<std::streamoff>(kSnapshotFileMagicBytes));
  return r;
}

absl::StatusOr<bool> SnapshotFileReader::Next(internalpb::SnapshotChunk* chunk) {
  if (done_) return false;
  char len_bytes[4];
  in_.read(len_bytes, 4);
  if (in_.gcount() != 4) return absl::DataLossError(absl::StrCat(path_, ": truncated record"));
  const uint32_t len = DecodeBe32(len_bytes);
  if (len == 0) {
    done_ = true;
    return false;
  }
  if (len > kMaxRecordBytes) return absl::DataLossError(absl::StrCat(path_, ": bad record"));
  std::string body(len, '\0');
  in_.read(body.data(), len);
  if (static_cast<uint32_t>(in_.gcount()) != len || !chunk->ParseFromString(body)) {
    return absl::DataLossError(absl::StrCat(path_, ": malformed record"));
  }
  return true;
}

}  // namespace keel::storage
