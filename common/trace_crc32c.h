// CRC-32C (Castagnoli polynomial, reflected 0x82F63B78), the checksum of the
// trace file's header and chunks. Our own table-driven implementation
// (slicing by 8), so the format does not depend on a library's checksum.
#pragma once

#include <cstddef>
#include <cstdint>

namespace fraglab {

// Returns the CRC-32C of `len` bytes at `data`, continuing from `crc` (the
// value returned for the preceding bytes; 0 to start). Crc32c("123456789")
// is 0xE3069283.
uint32_t Crc32c(const void* data, size_t len, uint32_t crc = 0);

}  // namespace fraglab
