// CRC32C (Castagnoli), the checksum on every log entry and snapshot chunk.
// Uses the SSE4.2 crc32 instruction when the CPU has it, a table otherwise.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace keel::storage {

// Extends `crc` (the CRC32C of earlier bytes, 0 to start) over `data`.
[[nodiscard]] uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t size);

[[nodiscard]] inline uint32_t Crc32c(std::string_view data) {
  return Crc32cExtend(0, data.data(), data.size());
}

}  // namespace keel::storage
