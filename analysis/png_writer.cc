#include "analysis/png_writer.h"

#include <zlib.h>

#include <array>

#include "absl/strings/str_cat.h"

namespace fraglab::picture {
namespace {

std::array<uint32_t, 256> MakeCrcTable() {
  std::array<uint32_t, 256> t{};
  for (uint32_t n = 0; n < 256; ++n) {
    uint32_t c = n;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    t[n] = c;
  }
  return t;
}

void PutBe32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

// length, type, data, CRC over type+data.
void AppendChunk(std::string& out, const char type[4], const std::string& data) {
  PutBe32(out, static_cast<uint32_t>(data.size()));
  std::string td(type, 4);
  td += data;
  out += td;
  PutBe32(out, PngCrc32(reinterpret_cast<const uint8_t*>(td.data()), td.size()));
}

}  // namespace

RgbImage::RgbImage(int width, int height, uint8_t r, uint8_t g, uint8_t b)
    : width_(width), height_(height),
      pixels_(static_cast<size_t>(width > 0 ? width : 0) * static_cast<size_t>(height > 0 ? height : 0) * 3) {
  for (size_t i = 0; i < pixels_.size(); i += 3) {
    pixels_[i] = r;
    pixels_[i + 1] = g;
    pixels_[i + 2] = b;
  }
}

void RgbImage::Set(int x, int y, uint8_t r, uint8_t g, uint8_t b) {
  if (x < 0 || y < 0 || x >= width_ || y >= height_) return;
  const size_t i = (static_cast<size_t>(y) * static_cast<size_t>(width_) + static_cast<size_t>(x)) * 3;
  pixels_[i] = r;
  pixels_[i + 1] = g;
  pixels_[i + 2] = b;
}

void RgbImage::FillRect(int x, int y, int w, int h, uint8_t r, uint8_t g, uint8_t b) {
  for (int yy = y < 0 ? 0 : y; yy < y + h && yy < height_; ++yy) {
    for (int xx = x < 0 ? 0 : x; xx < x + w && xx < width_; ++xx) Set(xx, yy, r, g, b);
  }
}

uint32_t RgbImage::Get(int x, int y) const {
  const size_t i = (static_cast<size_t>(y) * static_cast<size_t>(width_) + static_cast<size_t>(x)) * 3;
  return (uint32_t{pixels_[i]} << 16) | (uint32_t{pixels_[i + 1]} << 8) | pixels_[i + 2];
}

uint32_t PngCrc32(const uint8_t* data, size_t len, uint32_t crc) {
  static const std::array<uint32_t, 256> kTable = MakeCrcTable();
  uint32_t c = crc ^ 0xffffffffu;
  for (size_t i = 0; i < len; ++i) c = kTable[(c ^ data[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

absl::StatusOr<std::string> EncodePng(const RgbImage& image,
                                      const std::vector<std::pair<std::string, std::string>>& text) {
  if (image.width() < 1 || image.height() < 1 || image.width() > 65535 || image.height() > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("PNG size ", image.width(), "x", image.height(),
                                                   " outside 1..65535"));
  }
  for (const auto& [key, value] : text) {
    bool printable = !key.empty() && key.size() <= 79;
    for (char ch : key) printable = printable && ch >= 32 && ch <= 126;
    if (!printable) return absl::InvalidArgumentError(absl::StrCat("PNG tEXt keyword '", key, "' invalid"));
  }
  std::string out("\x89PNG\r\n\x1a\n", 8);
  std::string ihdr;
  PutBe32(ihdr, static_cast<uint32_t>(image.width()));
  PutBe32(ihdr, static_cast<uint32_t>(image.height()));
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);  // depth 8, colour type 2 (RGB), deflate, filter 0, no interlace
  AppendChunk(out, "IHDR", ihdr);
  for (const auto& [key, value] : text) AppendChunk(out, "tEXt", key + std::string(1, '\0') + value);

  // Raw scanlines, each prefixed by filter type 0 (None): cell pictures are
  // flat colour runs that deflate compresses well without prediction.
  const size_t row = static_cast<size_t>(image.width()) * 3;
  std::string raw;
  raw.reserve((row + 1) * static_cast<size_t>(image.height()));
  const auto* px = reinterpret_cast<const char*>(image.pixels().data());
  for (int y = 0; y < image.height(); ++y) {
    raw.push_back('\0');
    raw.append(px + row * static_cast<size_t>(y), row);
  }
  uLongf dest_len = compressBound(static_cast<uLong>(raw.size()));
  std::string idat(dest_len, '\0');
  int rc = compress2(reinterpret_cast<Bytef*>(idat.data()), &dest_len,
                     reinterpret_cast<const Bytef*>(raw.data()), static_cast<uLong>(raw.size()), 6);
  if (rc != Z_OK) return absl::InternalError(absl::StrCat("zlib compress2 failed with code ", rc));
  idat.resize(dest_len);
  AppendChunk(out, "IDAT", idat);
  AppendChunk(out, "IEND", "");
  return out;
}

}  // namespace fraglab::picture
