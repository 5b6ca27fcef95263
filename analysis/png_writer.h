// A minimal PNG encoder: 8-bit RGB, no interlace, filter 0 on every row,
// one IDAT chunk deflated by zlib, optional tEXt chunks. Chunk layout and
// CRC-32 are our own (PNG spec, ISO/IEC 15948 sections 5.3 and annex D).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace fraglab::picture {

// A width x height RGB raster, row-major, 3 bytes per pixel.
class RgbImage {
 public:
  // Creates an image filled with (r, g, b). Sizes must be 1..65535 (checked
  // by EncodePng, not here, so drawing code stays simple).
  RgbImage(int width, int height, uint8_t r = 255, uint8_t g = 255, uint8_t b = 255);

  int width() const { return width_; }
  int height() const { return height_; }
  // Sets one pixel; coordinates outside the image are ignored (clipping).
  void Set(int x, int y, uint8_t r, uint8_t g, uint8_t b);
  // Fills [x, x+w) x [y, y+h), clipped.
  void FillRect(int x, int y, int w, int h, uint8_t r, uint8_t g, uint8_t b);
  // Pixel (x, y) as 0xRRGGBB; the coordinates must be inside.
  uint32_t Get(int x, int y) const;
  const std::vector<uint8_t>& pixels() const { return pixels_; }

 private:
  int width_, height_;
  std::vector<uint8_t> pixels_;
};

// CRC-32 (ISO 3309, polynomial 0xEDB88320 reflected) of `data`, as PNG chunks use.
uint32_t PngCrc32(const uint8_t* data, size_t len, uint32_t crc = 0);

// PNG file bytes of `image` with tEXt chunks (keyword, Latin-1 text).
// InvalidArgument for a size outside 1..65535 or a keyword that is not 1-79
// printable characters; Internal when deflate fails.
[[nodiscard]] absl::StatusOr<std::string> EncodePng(
    const RgbImage& image, const std::vector<std::pair<std::string, std::string>>& text = {});

}  // namespace fraglab::picture
