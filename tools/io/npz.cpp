// npz.cpp: the zip container (end of central directory, zip64 records, central
// and local headers) and the .npy header of each entry. Every offset and size
// read from the file is checked against the bytes that exist before it is
// used; arithmetic on them is done in 64 bits after checking that each operand
// fits, so no sum can wrap.
#include "tools/io/npz.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <stdexcept>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npz.cpp reads little-endian arrays straight into host memory: port it before building on a big-endian host"
#endif

namespace gc {

uint32_t crc32_ieee(const void* data, size_t bytes, uint32_t crc) {
  static const auto table = [] {
    std::vector<uint32_t> t(256);
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  const auto* p = static_cast<const uint8_t*>(data);
  crc = ~crc;
  for (size_t i = 0; i < bytes; ++i) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

namespace {

constexpr uint32_t kEndOfCentralDirectory = 0x06054b50;
constexpr uint32_t kZip64EndLocator = 0x07064b50;
constexpr uint32_t kZip64End = 0x06064b50;
constexpr uint32_t kCentralHeader = 0x02014b50;
constexpr uint32_t kLocalHeader = 0x04034b50;
constexpr int64_t kMaxNpyHeaderBytes = 1 << 20;

class Parser {
 public:
  Parser(const std::vector<uint8_t>& bytes, const std::string& path) : bytes_(bytes), path_(path) {}

  NpzFile parse() {
    NpzFile file;
    file.path = path_;
    const uint64_t size = bytes_.size();
    if (size < 4 || read32(0) != kLocalHeader) {
      if (size >= 6 && std::memcmp(bytes_.data(), "\x93NUMPY", 6) == 0)
        fail("a single .npy array, not an .npz archive (np.save, not np.savez)");
      if (size == 0) fail("empty file, not an .npz archive");
      if (size >= 4 && read32(0) == kEndOfCentralDirectory) fail("an empty zip archive: no arrays");
      fail("not an .npz archive (no zip local header at the start)");
    }
    if (size < 22) fail("truncated: " + std::to_string(size) + " bytes, shorter than a zip end record");
    // The end record is the last 22 bytes plus a comment of at most 65535 bytes.
    uint64_t end = size - 22;
    const uint64_t lowest = size > 22 + 65535 ? size - 22 - 65535 : 0;
    while (read32(end) != kEndOfCentralDirectory || end + 22 + read16(end + 20) != size) {
      if (end == lowest) fail("truncated or not a zip archive: no end-of-central-directory record");
      --end;
    }
    uint64_t entries = read16(end + 10);
    uint64_t directory_bytes = read32(end + 12);
    uint64_t directory_offset = read32(end + 16);
    if (read16(end + 4) != 0 || read16(end + 6) != 0) fail("a multi-disk zip archive is not supported");
    if (entries == 0xFFFF || directory_bytes == 0xFFFFFFFFu || directory_offset == 0xFFFFFFFFu) {
      if (end < 20 || read32(end - 20) != kZip64EndLocator) fail("corrupted zip64 archive: no zip64 end locator");
      const uint64_t record = read64(end - 20 + 8);
      need(record, 56, "zip64 end record");
      if (read32(record) != kZip64End) fail("corrupted zip64 archive: bad zip64 end record signature");
      entries = read64(record + 32);
      directory_bytes = read64(record + 40);
      directory_offset = read64(record + 48);
    }
    need(directory_offset, directory_bytes, "central directory");
    if (entries > directory_bytes / 46) fail("corrupted central directory: " + std::to_string(entries) + " entries in " +
                                              std::to_string(directory_bytes) + " bytes");
    uint64_t at = directory_offset;
    const uint64_t directory_end = directory_offset + directory_bytes;
    for (uint64_t i = 0; i < entries; ++i) {
      if (at > directory_end || directory_end - at < 46 || read32(at) != kCentralHeader)
        fail("corrupted central directory at entry " + std::to_string(i));
      const uint16_t flags = read16(at + 8), method = read16(at + 10);
      const uint32_t crc = read32(at + 16);
      uint64_t stored = read32(at + 20), original = read32(at + 24);
      const uint64_t name_bytes = read16(at + 28), extra_bytes = read16(at + 30), comment_bytes = read16(at + 32);
      uint64_t local = read32(at + 42);
      if (directory_end - at - 46 < name_bytes + extra_bytes + comment_bytes)
        fail("corrupted central directory at entry " + std::to_string(i) + ": names run past its end");
      const std::string entry_name(reinterpret_cast<const char*>(bytes_.data() + at + 46), name_bytes);
      read_zip64_extra(at + 46 + name_bytes, extra_bytes, &original, &stored, &local, entry_name);
      if (flags & 1) fail("entry '" + entry_name + "' is encrypted");
      if (method != 0)
        fail("entry '" + entry_name + "' is compressed (zip method " + std::to_string(method) +
             "): gc reads only np.savez archives; re-save with np.savez, not np.savez_compressed");
      if (stored != original) fail("entry '" + entry_name + "': stored and original sizes differ");
      file.arrays.push_back(read_entry(entry_name, local, stored, crc));
      at += 46 + name_bytes + extra_bytes + comment_bytes;
    }
    for (size_t i = 0; i < file.arrays.size(); ++i)
      for (size_t j = 0; j < i; ++j)
        if (file.arrays[i].name == file.arrays[j].name) fail("array '" + file.arrays[i].name + "' appears twice");
    return file;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { throw std::runtime_error(path_ + ": " + what); }

  void need(uint64_t offset, uint64_t bytes, const std::string& what) const {
    if (offset > bytes_.size() || bytes > bytes_.size() - offset)
      fail("truncated: the " + what + " (" + std::to_string(bytes) + " bytes at offset " + std::to_string(offset) +
           ") runs past the end of the " + std::to_string(bytes_.size()) + "-byte file");
  }
  uint64_t read_le(uint64_t offset, int bytes) const {
    need(offset, static_cast<uint64_t>(bytes), "zip record");
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | bytes_[offset + static_cast<uint64_t>(i)];
    return v;
  }
  uint16_t read16(uint64_t offset) const { return static_cast<uint16_t>(read_le(offset, 2)); }
  uint32_t read32(uint64_t offset) const { return static_cast<uint32_t>(read_le(offset, 4)); }
  uint64_t read64(uint64_t offset) const { return read_le(offset, 8); }

  // The zip64 extra field (id 1) holds, in this order, those of the original
  // size, stored size and local header offset whose 32-bit field is saturated.
  void read_zip64_extra(uint64_t at, uint64_t bytes, uint64_t* original, uint64_t* stored, uint64_t* local,
                        const std::string& entry) const {
    const uint64_t end = at + bytes;
    while (end - at >= 4) {
      const uint16_t id = read16(at), size = read16(at + 2);
      if (end - at - 4 < size) fail("entry '" + entry + "': corrupted extra field");
      if (id == 1) {
        uint64_t field = at + 4;
        for (uint64_t* value : {original, stored, local}) {
          if (*value != 0xFFFFFFFFu) continue;
          if (field + 8 > at + 4 + size) fail("entry '" + entry + "': zip64 extra field too short");
          *value = read64(field);
          field += 8;
        }
      }
      at += 4 + size;
    }
  }

  NpyArray read_entry(const std::string& entry_name, uint64_t local, uint64_t bytes, uint32_t crc) const {
    need(local, 30, "local header of '" + entry_name + "'");
    if (read32(local) != kLocalHeader) fail("entry '" + entry_name + "': bad local header signature");
    const uint64_t start = local + 30 + read16(local + 26) + read16(local + 28);
    need(start, bytes, "data of entry '" + entry_name + "'");
    const uint8_t* data = bytes_.data() + start;
    if (crc32_ieee(data, bytes) != crc) fail("entry '" + entry_name + "': CRC-32 mismatch (the file is corrupted)");
    if (entry_name.size() < 5 || entry_name.compare(entry_name.size() - 4, 4, ".npy") != 0)
      fail("entry '" + entry_name + "' is not a .npy array");
    NpyArray array;
    array.name = entry_name.substr(0, entry_name.size() - 4);
    parse_npy(data, bytes, &array);
    return array;
  }

  void parse_npy(const uint8_t* data, uint64_t bytes, NpyArray* array) const {
    const std::string where = "array '" + array->name + "': ";
    if (bytes < 10 || std::memcmp(data, "\x93NUMPY", 6) != 0) fail(where + "not a .npy array (bad magic)");
    const int major = data[6];
    uint64_t header_bytes, header_start;
    if (major == 1) {
      header_bytes = data[8] | (data[9] << 8);
      header_start = 10;
    } else if (major == 2 || major == 3) {
      if (bytes < 12) fail(where + "truncated .npy header");
      header_bytes = static_cast<uint64_t>(data[8]) | (data[9] << 8) | (data[10] << 16) | (static_cast<uint64_t>(data[11]) << 24);
      header_start = 12;
    } else {
      fail(where + ".npy format version " + std::to_string(major) + " is not supported (1, 2 or 3)");
    }
    if (header_bytes > static_cast<uint64_t>(kMaxNpyHeaderBytes) || header_bytes > bytes - header_start)
      fail(where + "truncated .npy header");
    const std::string header(reinterpret_cast<const char*>(data + header_start), header_bytes);
    const std::string descr = dict_value(header, "descr", where);
    const std::string fortran = dict_value(header, "fortran_order", where);
    const std::string shape = dict_value(header, "shape", where);
    if (fortran != "False") fail(where + "Fortran-ordered arrays are not supported (save a C-ordered copy)");
    parse_descr(descr, array, where);
    parse_shape(shape, array, where);
    const uint64_t payload = bytes - header_start - header_bytes;
    uint64_t expected = static_cast<uint64_t>(array->item_bytes);
    for (int64_t d : array->shape) {
      if (d != 0 && expected > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(d))
        fail(where + "shape too large");
      expected *= static_cast<uint64_t>(d);
    }
    if (expected != payload)
      fail(where + "holds " + std::to_string(payload) + " data bytes, its header (" + array->describe() + ") says " +
           std::to_string(expected));
    const uint8_t* begin = data + header_start + header_bytes;
    array->data.assign(begin, begin + payload);
  }

  // The text after "'key':" up to the next top-level ',' or '}' (a tuple kept whole).
  std::string dict_value(const std::string& header, const std::string& key, const std::string& where) const {
    const std::string quoted = "'" + key + "'";
    const size_t at = header.find(quoted);
    if (at == std::string::npos) fail(where + "corrupted .npy header: no '" + key + "'");
    size_t i = header.find(':', at + quoted.size());
    if (i == std::string::npos) fail(where + "corrupted .npy header at '" + key + "'");
    ++i;
    while (i < header.size() && header[i] == ' ') ++i;
    size_t end = i;
    int depth = 0;
    bool in_quote = false;
    for (; end < header.size(); ++end) {
      const char c = header[end];
      if (c == '\'') in_quote = !in_quote;
      if (in_quote) continue;
      if (c == '(') ++depth;
      if (c == ')') --depth;
      if (depth == 0 && (c == ',' || c == '}')) break;
    }
    if (end == header.size()) fail(where + "corrupted .npy header at '" + key + "'");
    std::string value = header.substr(i, end - i);
    while (!value.empty() && value.back() == ' ') value.pop_back();
    return value;
  }

  void parse_descr(const std::string& quoted, NpyArray* array, const std::string& where) const {
    if (quoted.size() < 2 || quoted.front() != '\'' || quoted.back() != '\'')
      fail(where + "dtype " + quoted + " is not supported (structured dtype)");
    const std::string d = quoted.substr(1, quoted.size() - 2);
    struct Known { const char* descr; NpyKind kind; int64_t bytes; };
    for (const Known& k : {Known{"<f4", NpyKind::f32, 4}, Known{"<f8", NpyKind::f64, 8}, Known{"<i4", NpyKind::i32, 4},
                           Known{"<i8", NpyKind::i64, 8}, Known{"|b1", NpyKind::boolean, 1}}) {
      if (d == k.descr) {
        array->kind = k.kind;
        array->item_bytes = k.bytes;
        return;
      }
    }
    if (d.size() >= 3 && d.compare(0, 2, "<U") == 0 && d.find_first_not_of("0123456789", 2) == std::string::npos &&
        d.size() <= 9) {
      array->kind = NpyKind::unicode;
      array->item_bytes = 4 * std::stoll(d.substr(2));
      if (array->item_bytes == 0) fail(where + "dtype '<U0' is not supported");
      return;
    }
    if (d == "|O") fail(where + "an object array (a pickle); gc never unpickles");
    fail(where + "dtype '" + d + "' is not supported (f4, f8, i4, i8, b1 little-endian, or unicode)");
  }

  void parse_shape(const std::string& text, NpyArray* array, const std::string& where) const {
    if (text.size() < 2 || text.front() != '(' || text.back() != ')') fail(where + "corrupted .npy shape " + text);
    size_t i = 1;
    while (i < text.size() - 1) {
      while (i < text.size() - 1 && (text[i] == ' ' || text[i] == ',')) ++i;
      if (i >= text.size() - 1) break;
      size_t j = i;
      while (j < text.size() - 1 && text[j] >= '0' && text[j] <= '9') ++j;
      if (j == i || j - i > 15) fail(where + "corrupted .npy shape " + text);
      array->shape.push_back(std::stoll(text.substr(i, j - i)));
      if (array->shape.size() > 32) fail(where + "more than 32 dimensions");
      i = j;
      if (i < text.size() - 1 && text[i] != ',' && text[i] != ' ') fail(where + "corrupted .npy shape " + text);
    }
  }

  const std::vector<uint8_t>& bytes_;
  const std::string& path_;
};

}  // namespace

int64_t NpyArray::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string NpyArray::describe() const {
  static const char* names[] = {"<f4", "<f8", "<i4", "<i8", "|b1", "<U"};
  std::string s = std::string("'") + names[static_cast<int>(kind)];
  if (kind == NpyKind::unicode) s += std::to_string(item_bytes / 4);
  s += "' [";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::vector<double> NpyArray::to_doubles() const {
  const size_t n = static_cast<size_t>(numel());
  std::vector<double> out(n);
  auto take = [&](auto zero) {
    using T = decltype(zero);
    for (size_t i = 0; i < n; ++i) {
      T v;
      std::memcpy(&v, data.data() + i * sizeof(T), sizeof(T));
      out[i] = static_cast<double>(v);
    }
  };
  switch (kind) {
    case NpyKind::f32: take(float{}); break;
    case NpyKind::f64: take(double{}); break;
    case NpyKind::i32: take(int32_t{}); break;
    case NpyKind::i64: take(int64_t{}); break;
    case NpyKind::boolean: take(uint8_t{}); break;
    case NpyKind::unicode: throw std::runtime_error("array '" + name + "' holds text, not numbers");
  }
  return out;
}

double NpyArray::to_scalar() const {
  if (numel() != 1) throw std::runtime_error("array '" + name + "' is " + describe() + ", not a scalar");
  return to_doubles()[0];
}

std::string NpyArray::to_text() const {
  if (kind != NpyKind::unicode || numel() != 1)
    throw std::runtime_error("array '" + name + "' is " + describe() + ", not a string");
  std::string out;
  for (size_t i = 0; i + 4 <= data.size(); i += 4) {
    uint32_t c;
    std::memcpy(&c, data.data() + i, 4);
    if (c == 0) break;
    if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
      throw std::runtime_error("array '" + name + "' holds an invalid code point");
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else if (c < 0x800) {
      out += static_cast<char>(0xC0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
      out += static_cast<char>(0xE0 | (c >> 12));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (c & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (c >> 18));
      out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (c & 0x3F));
    }
  }
  return out;
}

Tensor NpyArray::to_tensor(DType dtype, Device device) const {
  if (device == Device::meta) return Tensor::empty(Shape(shape.begin(), shape.end()), dtype, device);
  if (dtype == DType::f32 && kind == NpyKind::f32 && device != Device::meta)
    return Tensor::from_host(data.data(), Shape(shape.begin(), shape.end()), DType::f32, device);
  return Tensor::from_doubles(to_doubles(), Shape(shape.begin(), shape.end()), dtype, device);
}

const NpyArray* NpzFile::find(const std::string& name) const {
  for (const NpyArray& a : arrays)
    if (a.name == name) return &a;
  return nullptr;
}

const NpyArray& NpzFile::at(const std::string& name) const {
  const NpyArray* a = find(name);
  if (a == nullptr) throw std::runtime_error(path + ": no array '" + name + "'");
  return *a;
}

NpzFile parse_npz(const std::vector<uint8_t>& bytes, const std::string& path) { return Parser(bytes, path).parse(); }

NpzFile load_npz(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(path + ": cannot open: " + std::strerror(errno));
  struct stat info;
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    throw std::runtime_error(path + ": not a regular file");
  }
  std::vector<uint8_t> bytes(static_cast<size_t>(info.st_size));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t got = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      ::close(fd);
      throw std::runtime_error(path + ": read error");
    }
    done += static_cast<size_t>(got);
  }
  ::close(fd);
  return parse_npz(bytes, path);
}

}  // namespace gc
