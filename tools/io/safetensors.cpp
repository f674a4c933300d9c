// safetensors.cpp: writer and validating reader of safetensors files.
//
// The reader trusts nothing in the file: every length is checked against the
// real file size before anything is allocated, so a flipped byte gives a clear
// error instead of a crash or a multi-gigabyte allocation. All tensors are
// validated before the first one is created; the bytes then go straight from
// the file into allocator-owned storage (for cuda through a host staging
// tensor, one tensor at a time). The writer learns the checksums while it
// writes the data, so it writes the header twice: first with placeholder
// checksums, then in place with the real ones (fixed width, so the length
// cannot change); each cuda tensor is copied to the host once.
#include "tools/io/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "tools/io/atomic_file.h"
#include "tools/io/json.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.cpp writes host memory as little-endian data: port it before building on a big-endian host"
#endif

namespace gc {

namespace {

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // far above any real header, far below a harmful allocation
constexpr const char* kMetadataKey = "__metadata__";
constexpr const char* kChecksumPrefix = "gc.crc32c.";  // + tensor name: metadata key of its checksum

bool is_checksum_key(const std::string& key) { return key.rfind(kChecksumPrefix, 0) == 0; }

std::string checksum_text(uint32_t crc) {
  char text[9];
  std::snprintf(text, sizeof text, "%08x", crc);
  return text;
}

// Exactly 8 hex digits (either case).
bool checksum_from_text(const std::string& text, uint32_t* crc) {
  if (text.size() != 8) return false;
  uint32_t value = 0;
  for (char c : text) {
    const int digit = c >= '0' && c <= '9'   ? c - '0'
                      : c >= 'a' && c <= 'f' ? c - 'a' + 10
                      : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                             : -1;
    if (digit < 0) return false;
    value = (value << 4) | static_cast<uint32_t>(digit);
  }
  *crc = value;
  return true;
}

// A value from the file for a message: quoted, or its length when too long to show.
std::string excerpt(const std::string& text) {
  return text.size() <= 40 ? json::Value(text).dump() : "a string of " + std::to_string(text.size()) + " bytes";
}

const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "of an unknown kind";
}

const char* safetensors_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::f32: return "F32";
    case DType::f64: return "F64";
    case DType::bf16: return "BF16";
    case DType::f16: return "F16";
    case DType::i32: return "I32";
    case DType::i64: return "I64";
  }
  throw std::invalid_argument("safetensors: unknown dtype");
}

bool safetensors_dtype_from_name(const std::string& name, DType* dtype) {
  static const std::pair<const char*, DType> kNames[] = {{"F32", DType::f32}, {"F64", DType::f64},
                                                         {"BF16", DType::bf16}, {"F16", DType::f16},
                                                         {"I32", DType::i32}, {"I64", DType::i64}};
  for (const auto& entry : kNames)
    if (name == entry.first) {
      *dtype = entry.second;
      return true;
    }
  return false;
}

struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

void write_bytes(std::FILE* file, const void* data, size_t bytes, const std::string& path) {
  if (bytes > 0 && std::fwrite(data, 1, bytes, file) != bytes)
    throw std::runtime_error(path + ": write failed: " + std::strerror(errno));
}

// One tensor entry of a header, validated.
struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin_bytes;
  uint64_t end_bytes;
  bool has_checksum = false;
  uint32_t checksum = 0;  // CRC32C of the bytes, when has_checksum
};

class Loader {
 public:
  Loader(const std::string& path, Device device) : path_(path), device_(device) {}

  SafetensorsFile load() {
    const uint64_t file_bytes = open_regular_file();
    if (file_bytes < 8)
      fail("truncated: the file has " + std::to_string(file_bytes) + " bytes, fewer than the 8-byte header length");

    unsigned char length_bytes[8];
    read_exact(length_bytes, 8);
    uint64_t header_bytes = 0;
    for (int i = 7; i >= 0; --i) header_bytes = (header_bytes << 8) | length_bytes[i];
    if (header_bytes > kMaxHeaderBytes)
      fail("corrupted header: header length " + std::to_string(header_bytes) + " bytes is absurd (limit " +
           std::to_string(kMaxHeaderBytes) + ")");
    if (header_bytes > file_bytes - 8)
      fail("truncated: the header length says " + std::to_string(header_bytes) + " bytes but only " +
           std::to_string(file_bytes - 8) + " bytes follow it");
    data_start_bytes_ = 8 + header_bytes;
    data_region_bytes_ = file_bytes - data_start_bytes_;

    std::string header_text(header_bytes, '\0');
    read_exact(header_text.data(), header_bytes);
    json::Value header;
    try {
      header = json::Value::parse(header_text);
    } catch (const json::ParseError& error) {
      fail(std::string("corrupted header: ") + error.what());
    }
    if (!header.is_object()) fail("corrupted header: expected a JSON object");

    SafetensorsFile result;
    std::vector<Entry> entries;
    for (const auto& [name, value] : header.as_object()) {
      if (name == kMetadataKey) {
        result.metadata = parse_metadata(value);
      } else {
        entries.push_back(parse_entry(name, value));
      }
    }
    check_tiling(entries);
    take_checksums(&result.metadata, &entries);
    for (const Entry& entry : entries) result.tensors.emplace_back(entry.name, read_tensor(entry));
    return result;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { throw std::runtime_error(path_ + ": " + what); }

  // Opens path_ as file_ and returns its size. A blocking open would wait
  // forever on a FIFO without a writer, so the kind of file is checked on a
  // non-blocking descriptor before anything is read.
  uint64_t open_regular_file() {
    const int fd = ::open(path_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) fail(std::string("cannot open: ") + std::strerror(errno));
    struct stat info;
    if (::fstat(fd, &info) != 0) {
      const int error = errno;
      ::close(fd);
      fail(std::string("cannot stat: ") + std::strerror(error));
    }
    if (!S_ISREG(info.st_mode)) {
      ::close(fd);
      fail(std::string("not a regular file but ") + file_kind(info.st_mode));
    }
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    file_.reset(::fdopen(fd, "rb"));
    if (!file_) {
      const int error = errno;
      ::close(fd);
      fail(std::string("cannot open: ") + std::strerror(error));
    }
    return static_cast<uint64_t>(info.st_size);
  }

  void read_exact(void* destination, uint64_t bytes) {
    if (bytes > 0 && std::fread(destination, 1, bytes, file_.get()) != bytes)
      fail(std::ferror(file_.get()) ? std::string("read error: ") + std::strerror(errno)
                                    : std::string("truncated: the file ended while reading"));
  }

  std::vector<std::pair<std::string, std::string>> parse_metadata(const json::Value& value) const {
    if (!value.is_object()) fail("corrupted header: \"__metadata__\" is not an object");
    std::vector<std::pair<std::string, std::string>> metadata;
    for (const auto& [key, text] : value.as_object()) {
      if (!text.is_string()) fail("corrupted header: \"__metadata__\" value of \"" + key + "\" is not a string");
      metadata.emplace_back(key, text.as_string());
    }
    return metadata;
  }

  Entry parse_entry(const std::string& name, const json::Value& value) const {
    const std::string where = "corrupted header: tensor '" + name + "': ";
    if (!value.is_object()) fail(where + "expected an object with dtype, shape and data_offsets");
    for (const auto& member : value.as_object())
      if (member.first != "dtype" && member.first != "shape" && member.first != "data_offsets")
        fail(where + "unexpected key \"" + member.first + "\"");
    const json::Value* dtype = value.find("dtype");
    const json::Value* shape = value.find("shape");
    const json::Value* offsets = value.find("data_offsets");
    if (!dtype || !shape || !offsets) fail(where + "missing dtype, shape or data_offsets");

    Entry entry;
    entry.name = name;
    if (!dtype->is_string()) fail(where + "dtype is not a string");
    if (!safetensors_dtype_from_name(dtype->as_string(), &entry.dtype))
      fail(where + "unknown dtype \"" + dtype->as_string() + "\" (supported: F32, F64, BF16, F16, I32, I64)");

    if (!shape->is_array()) fail(where + "shape is not an array");
    if (shape->size() > 4) fail(where + "shape has " + std::to_string(shape->size()) + " dims, gc tensors have at most 4");
    uint64_t numel = 1;
    for (const json::Value& dim : shape->as_array()) {
      if (!dim.is_int() || dim.as_int() < 0) fail(where + "shape " + shape->dump() + " is not a list of non-negative integers");
      entry.shape.push_back(dim.as_int());
      if (__builtin_mul_overflow(numel, static_cast<uint64_t>(dim.as_int()), &numel))
        fail(where + "shape " + shape->dump() + " overflows");
    }
    uint64_t tensor_bytes = 0;
    if (__builtin_mul_overflow(numel, static_cast<uint64_t>(dtype_size(entry.dtype)), &tensor_bytes))
      fail(where + "shape " + shape->dump() + " overflows");

    if (!offsets->is_array() || offsets->size() != 2 || !offsets->as_array()[0].is_int() ||
        !offsets->as_array()[1].is_int() || offsets->as_array()[0].as_int() < 0 ||
        offsets->as_array()[1].as_int() < offsets->as_array()[0].as_int())
      fail(where + "data_offsets " + offsets->dump() + " is not [begin, end] with 0 <= begin <= end");
    entry.begin_bytes = static_cast<uint64_t>(offsets->as_array()[0].as_int());
    entry.end_bytes = static_cast<uint64_t>(offsets->as_array()[1].as_int());
    if (entry.end_bytes - entry.begin_bytes != tensor_bytes)
      fail(where + "data_offsets " + offsets->dump() + " span " + std::to_string(entry.end_bytes - entry.begin_bytes) +
           " bytes but " + dtype->as_string() + shape->dump() + " needs " + std::to_string(tensor_bytes));
    if (entry.end_bytes > data_region_bytes_)
      fail("truncated: tensor '" + name + "' ends at data byte " + std::to_string(entry.end_bytes) +
           " but the file holds only " + std::to_string(data_region_bytes_) + " bytes of data");
    return entry;
  }

  // The tensors must cover [0, data_region_bytes_) exactly once.
  void check_tiling(const std::vector<Entry>& entries) const {
    std::vector<const Entry*> by_offset;
    for (const Entry& entry : entries) by_offset.push_back(&entry);
    std::sort(by_offset.begin(), by_offset.end(), [](const Entry* a, const Entry* b) {
      return a->begin_bytes != b->begin_bytes ? a->begin_bytes < b->begin_bytes : a->end_bytes < b->end_bytes;
    });
    uint64_t covered_bytes = 0;
    const Entry* previous = nullptr;
    for (const Entry* entry : by_offset) {
      if (entry->begin_bytes < covered_bytes)
        fail("corrupted header: tensors '" + previous->name + "' and '" + entry->name + "' overlap");
      if (entry->begin_bytes > covered_bytes)
        fail("corrupted header: a gap of " + std::to_string(entry->begin_bytes - covered_bytes) +
             " bytes in the data before tensor '" + entry->name + "'");
      covered_bytes = entry->end_bytes;
      previous = entry;
    }
    if (covered_bytes != data_region_bytes_)
      fail("data region size mismatch: the tensors cover " + std::to_string(covered_bytes) + " bytes but the file holds " +
           std::to_string(data_region_bytes_) + " bytes of data");
  }

  // Moves the checksum keys out of `metadata` onto the entries they name. A file
  // has a checksum for every tensor or for none, so a key with a damaged name
  // shows as the checksum of no tensor, or as a tensor without one.
  void take_checksums(std::vector<std::pair<std::string, std::string>>* metadata, std::vector<Entry>* entries) const {
    std::unordered_map<std::string, Entry*> by_name;
    for (Entry& entry : *entries) by_name[entry.name] = &entry;
    std::vector<std::pair<std::string, std::string>> kept;
    size_t checksums = 0;
    for (auto& [key, text] : *metadata) {
      if (!is_checksum_key(key)) {
        kept.emplace_back(std::move(key), std::move(text));
        continue;
      }
      const std::string name = key.substr(std::strlen(kChecksumPrefix));
      const auto found = by_name.find(name);
      if (found == by_name.end())
        fail("corrupted header: metadata \"" + key + "\" is the checksum of tensor '" + name +
             "', which the file does not hold");
      if (!checksum_from_text(text, &found->second->checksum))
        fail("corrupted header: the checksum of tensor '" + name + "' is " + excerpt(text) + ", not 8 hex digits");
      found->second->has_checksum = true;
      ++checksums;
    }
    if (checksums > 0)
      for (const Entry& entry : *entries)
        if (!entry.has_checksum)
          fail("corrupted header: tensor '" + entry.name + "' has no checksum (\"" + kChecksumPrefix + entry.name +
               "\") while the other tensors have one");
    *metadata = std::move(kept);
  }

  Tensor read_tensor(const Entry& entry) {
    if (device_ == Device::meta) return Tensor::empty(entry.shape, entry.dtype, Device::meta);
    seek_data(entry.begin_bytes);
    const uint64_t bytes = entry.end_bytes - entry.begin_bytes;
    if (device_ == Device::cpu) {
      Tensor tensor = Tensor::empty(entry.shape, entry.dtype, Device::cpu);
      read_exact(tensor.data(), bytes);
      verify_checksum(entry, tensor.data(), bytes);
      return tensor;
    }
    Tensor staging = Tensor::empty(entry.shape, entry.dtype, Device::cpu);
    read_exact(staging.data(), bytes);
    verify_checksum(entry, staging.data(), bytes);
    return Tensor::from_host(staging.data(), entry.shape, entry.dtype, device_);
  }

  void verify_checksum(const Entry& entry, const void* data, uint64_t bytes) const {
    if (!entry.has_checksum) return;
    const uint32_t actual = crc32c(data, bytes);
    if (actual != entry.checksum)
      fail("checksum mismatch in tensor '" + entry.name + "': its " + std::to_string(bytes) + " bytes have CRC32C " +
           checksum_text(actual) + " but the header records " + checksum_text(entry.checksum) +
           " (the data changed after the file was written)");
  }

  void seek_data(uint64_t offset_bytes) {
    const uint64_t position = data_start_bytes_ + offset_bytes;
    if (::fseeko(file_.get(), static_cast<off_t>(position), SEEK_SET) != 0)
      fail(std::string("seek failed: ") + std::strerror(errno));
  }

  std::string path_;
  Device device_;
  FilePtr file_;
  uint64_t data_start_bytes_ = 0;
  uint64_t data_region_bytes_ = 0;
};

// Entry b: the CRC32C register after shifting the byte b through it alone.
struct Crc32cTable {
  uint32_t entries[256];
  Crc32cTable() {
    for (uint32_t byte = 0; byte < 256; ++byte) {
      uint32_t crc = byte;
      for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1) ? 0x82F63B78u : 0u);
      entries[byte] = crc;
    }
  }
};

}  // namespace

uint32_t crc32c(const void* data, size_t bytes, uint32_t crc) {
  static const Crc32cTable table;
  const unsigned char* byte = static_cast<const unsigned char*>(data);
  crc = ~crc;
  for (size_t i = 0; i < bytes; ++i) crc = table.entries[(crc ^ byte[i]) & 0xffu] ^ (crc >> 8);
  return ~crc;
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::vector<std::pair<std::string, std::string>>& metadata) {
  const std::string where = "save_safetensors " + path + ": ";
  std::unordered_set<std::string> names;
  for (const auto& [name, tensor] : tensors) {
    if (name.empty()) throw std::invalid_argument(where + "empty tensor name");
    if (name == kMetadataKey) throw std::invalid_argument(where + "\"__metadata__\" is reserved, not a tensor name");
    if (json::Value::parse(json::Value(name).dump()).as_string() != name)
      throw std::invalid_argument(where + "tensor name is not valid UTF-8");
    if (!names.insert(name).second) throw std::invalid_argument(where + "duplicate tensor name '" + name + "'");
    if (!tensor.defined()) throw std::invalid_argument(where + "tensor '" + name + "' is undefined");
    if (tensor.is_meta())
      throw std::invalid_argument(where + "tensor '" + name + "' is " + tensor.describe() + ": meta tensors have no data");
  }
  std::unordered_set<std::string> metadata_keys;
  for (const auto& entry : metadata) {
    if (!metadata_keys.insert(entry.first).second)
      throw std::invalid_argument(where + "duplicate metadata key '" + entry.first + "'");
    if (is_checksum_key(entry.first))
      throw std::invalid_argument(where + "metadata key '" + entry.first + "' is reserved for the checksums");
  }

  // The header with checksums[i] as the checksum of tensor i, padded so that
  // the data starts 8-byte aligned after the 8-byte length.
  auto header_text = [&](const std::vector<uint32_t>& checksums) {
    json::Value header = json::Value::object();
    if (!metadata.empty() || !tensors.empty()) {
      json::Value& metadata_object = header[kMetadataKey] = json::Value::object();
      for (const auto& [key, text] : metadata) metadata_object[key] = text;
      for (size_t i = 0; i < tensors.size(); ++i)
        metadata_object[kChecksumPrefix + tensors[i].first] = checksum_text(checksums[i]);
    }
    int64_t offset_bytes = 0;
    for (const auto& [name, tensor] : tensors) {
      json::Value entry = json::Value::object();
      entry["dtype"] = safetensors_dtype_name(tensor.dtype());
      json::Value shape = json::Value::array();
      for (int64_t dim : tensor.shape()) shape.push_back(dim);
      entry["shape"] = std::move(shape);
      json::Value offsets = json::Value::array();
      offsets.push_back(offset_bytes);
      offset_bytes += static_cast<int64_t>(tensor.nbytes());
      offsets.push_back(offset_bytes);
      entry["data_offsets"] = std::move(offsets);
      header[name] = std::move(entry);
    }
    std::string text = header.dump();
    text.append((8 - text.size() % 8) % 8, ' ');
    return text;
  };
  std::vector<uint32_t> checksums(tensors.size(), 0);
  const std::string placeholder_header = header_text(checksums);

  write_file_atomic(path, [&](std::FILE* file) {
    unsigned char length_bytes[8];
    uint64_t header_bytes = placeholder_header.size();
    for (int i = 0; i < 8; ++i) length_bytes[i] = static_cast<unsigned char>(header_bytes >> (8 * i));
    write_bytes(file, length_bytes, 8, path);
    write_bytes(file, placeholder_header.data(), placeholder_header.size(), path);
    for (size_t i = 0; i < tensors.size(); ++i) {
      const Tensor& tensor = tensors[i].second;
      const Tensor host = tensor.device() == Device::cpu ? tensor : tensor.to(Device::cpu);  // freed before the next copy
      checksums[i] = crc32c(host.data(), host.nbytes());
      write_bytes(file, host.data(), host.nbytes(), path);
    }
    const std::string final_header = header_text(checksums);
    if (final_header.size() != placeholder_header.size())
      throw std::logic_error(where + "the header changed length when its checksums were filled in");
    if (std::fseek(file, 8, SEEK_SET) != 0) throw std::runtime_error(path + ": seek failed: " + std::strerror(errno));
    write_bytes(file, final_header.data(), final_header.size(), path);
  });
}

SafetensorsFile load_safetensors(const std::string& path, Device device) { return Loader(path, device).load(); }

}  // namespace gc
