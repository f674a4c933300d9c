// test_safetensors.cpp: atomic file replacement and safetensors checkpoints:
// CRC32C known answers, bit-exact round trips of every dtype and odd shapes,
// the exact bytes of a tiny file, header alignment, and every kind of
// corruption (truncation at each length, flipped header bytes, flipped data
// bits caught by the checksums, lying length fields, inconsistent headers, a
// FIFO or device in place of the file) giving a clear std::runtime_error that
// starts with the path, never a crash or a hang.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <stdexcept>
#include <string>

#include "tests/test_util.h"
#include "tools/io/atomic_file.h"
#include "tools/io/json.h"
#include "tools/io/safetensors.h"

namespace gc {
namespace {

namespace fs = std::filesystem;

// A fresh directory per test, removed with everything in it.
class TempDirectory {
 public:
  TempDirectory() {
    std::string pattern = (fs::temp_directory_path() / "gc_test_XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDirectory() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }
  std::set<std::string> entries() const {
    std::set<std::string> names;
    for (const auto& entry : fs::directory_iterator(path_)) names.insert(entry.path().filename().string());
    return names;
  }

 private:
  std::string path_;
};

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void overwrite_byte(const std::string& path, size_t position, char value) {
  std::fstream file(path, std::ios::binary | std::ios::in | std::ios::out);
  file.seekp(static_cast<std::streamoff>(position));
  file.put(value);
}

std::string u64_le(uint64_t value) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[static_cast<size_t>(i)] = static_cast<char>(value >> (8 * i));
  return bytes;
}

// A safetensors file from a header text (padded with spaces to 8 bytes) and a data region.
std::string make_file(std::string header_text, const std::string& data) {
  header_text.append((8 - header_text.size() % 8) % 8, ' ');
  return u64_le(header_text.size()) + header_text + data;
}

std::string tensor_bytes(const Tensor& tensor) {
  const Tensor host = tensor.device() == Device::cpu ? tensor : tensor.to(Device::cpu);
  return std::string(static_cast<const char*>(host.data()), host.nbytes());
}

// The load must fail with std::runtime_error whose message starts with the path
// and contains `phrase`; any other outcome (success, another exception type) fails.
::testing::AssertionResult load_fails_with(const std::string& path, const std::string& phrase) {
  try {
    load_safetensors(path);
  } catch (const std::runtime_error& error) {
    const std::string message = error.what();
    if (message.rfind(path + ": ", 0) != 0)
      return ::testing::AssertionFailure() << "message does not start with the path: " << message;
    if (message.find(phrase) == std::string::npos)
      return ::testing::AssertionFailure() << "message lacks \"" << phrase << "\": " << message;
    return ::testing::AssertionSuccess();
  } catch (const std::exception& error) {
    return ::testing::AssertionFailure() << "wrong exception type: " << error.what();
  }
  return ::testing::AssertionFailure() << "loaded without error, expected \"" << phrase << "\"";
}

// ---- atomic files ---------------------------------------------------------------

TEST(AtomicFile, CreatesThenReplaces) {
  TempDirectory directory;
  const std::string path = directory.file("report.json");
  write_file_atomic(path, std::string("old contents"));
  EXPECT_EQ(read_bytes(path), "old contents");
  write_file_atomic(path, [](std::FILE* file) { std::fputs("new, longer contents\n", file); });
  EXPECT_EQ(read_bytes(path), "new, longer contents\n");
  write_file_atomic(path, std::string());
  EXPECT_EQ(read_bytes(path), "");
  EXPECT_EQ(directory.entries(), std::set<std::string>{"report.json"});
}

// Temporaries of writers that were killed go; a live writer's stay, and so do
// files that only look alike.
TEST(AtomicFile, StaleTemporariesOfDeadWritersAreRemoved) {
  TempDirectory directory;
  ASSERT_EQ(std::system(("sh -c 'echo $$' > " + directory.file("pid")).c_str()), 0);
  std::string dead = read_bytes(directory.file("pid"));
  while (!dead.empty() && dead.back() == '\n') dead.pop_back();
  const std::string live = std::to_string(::getpid());
  for (const std::string& name : {"a.json.tmp." + dead, "b.bin.tmp." + dead + ".7", "c.json.tmp." + live + ".1",
                                  std::string("d.tmp.notapid"), std::string("e.json")})
    write_file_atomic(directory.file(name), std::string("x"));
  ::unlink(directory.file("pid").c_str());
  EXPECT_EQ(remove_stale_temporaries(directory.path()), 2);
  EXPECT_EQ(directory.entries(),
            (std::set<std::string>{"c.json.tmp." + live + ".1", "d.tmp.notapid", "e.json"}));
}

TEST(AtomicFile, WriterThrowingMidwayLeavesOldFileAndNoTemporary) {
  TempDirectory directory;
  const std::string path = directory.file("checkpoint.bin");
  const std::string old_contents(10000, 'o');
  write_file_atomic(path, old_contents);
  try {
    write_file_atomic(path, [](std::FILE* file) {
      const std::string half(50000, 'n');
      std::fwrite(half.data(), 1, half.size(), file);
      std::fflush(file);  // the partial bytes really are on disk in the temporary
      throw std::length_error("writer failed midway");
    });
    ADD_FAILURE() << "the writer's exception was swallowed";
  } catch (const std::length_error& error) {
    EXPECT_STREQ(error.what(), "writer failed midway");
  }
  EXPECT_EQ(read_bytes(path), old_contents);
  EXPECT_EQ(directory.entries(), std::set<std::string>{"checkpoint.bin"});
}

TEST(AtomicFile, FailuresNamePathAndErrno) {
  TempDirectory directory;
  const std::string missing = directory.file("no/such/dir/file.json");
  try {
    write_file_atomic(missing, std::string("x"));
    ADD_FAILURE() << "wrote into a missing directory";
  } catch (const std::runtime_error& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find(missing), std::string::npos) << message;
    EXPECT_NE(message.find(std::strerror(ENOENT)), std::string::npos) << message;
  }
  // Renaming a file over a non-empty directory fails after the temporary was
  // fully written: the temporary must still be removed.
  const std::string occupied = directory.file("occupied");
  fs::create_directory(occupied);
  write_bytes(occupied + "/inside", "keep");
  EXPECT_THROW(write_file_atomic(occupied, std::string("x")), std::runtime_error);
  EXPECT_EQ(directory.entries(), std::set<std::string>{"occupied"});
  EXPECT_EQ(read_bytes(occupied + "/inside"), "keep");
}

// ---- CRC32C ------------------------------------------------------------------------

TEST(Crc32c, KnownAnswers) {
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);  // the check value of the CRC-32C catalogue entry
  EXPECT_EQ(crc32c("", 0), 0u);
  // RFC 3720 (iSCSI), appendix B.4: 32 bytes of zeros, of ones, ascending, descending.
  unsigned char bytes[32];
  std::memset(bytes, 0, sizeof bytes);
  EXPECT_EQ(crc32c(bytes, 32), 0x8A9136AAu);
  std::memset(bytes, 0xff, sizeof bytes);
  EXPECT_EQ(crc32c(bytes, 32), 0x62A8AB43u);
  for (int i = 0; i < 32; ++i) bytes[i] = static_cast<unsigned char>(i);
  EXPECT_EQ(crc32c(bytes, 32), 0x46DD794Eu);
  for (int i = 0; i < 32; ++i) bytes[i] = static_cast<unsigned char>(31 - i);
  EXPECT_EQ(crc32c(bytes, 32), 0x113FDB5Cu);
}

TEST(Crc32c, ContinuesAcrossPieces) {
  const std::string text = "The quick brown fox jumps over the lazy dog";
  for (size_t split = 0; split <= text.size(); ++split)
    EXPECT_EQ(crc32c(text.data() + split, text.size() - split, crc32c(text.data(), split)),
              crc32c(text.data(), text.size()))
        << split;
}

// ---- safetensors: round trips -------------------------------------------------------

const std::vector<Shape> kOddShapes = {{}, {1}, {31}, {33, 1}, {3, 5, 7}, {2, 1, 3, 5}, {0, 3}, {65}};

Tensor random_for(const Shape& shape, DType dtype, uint64_t seed) {
  // Integers need a scale that makes distinct non-zero values after truncation.
  return test::random_tensor(shape, dtype, seed, dtype_is_floating(dtype) ? 3.0 : 100000.0);
}

class SafetensorsDtype : public ::testing::TestWithParam<DType> {};

TEST_P(SafetensorsDtype, RoundTripOddShapesBitExact) {
  const DType dtype = GetParam();
  TempDirectory directory;
  const std::string path = directory.file("tensors.safetensors");
  std::vector<std::pair<std::string, Tensor>> tensors;
  uint64_t data_bytes = 0;
  for (size_t i = 0; i < kOddShapes.size(); ++i) {
    tensors.emplace_back("t" + std::to_string(i) + shape_string(kOddShapes[i]), random_for(kOddShapes[i], dtype, 100 + i));
    data_bytes += tensors.back().second.nbytes();
  }
  save_safetensors(path, tensors);
  const SafetensorsFile loaded = load_safetensors(path);
  ASSERT_EQ(loaded.tensors.size(), tensors.size());
  EXPECT_TRUE(loaded.metadata.empty());
  for (size_t i = 0; i < tensors.size(); ++i) {
    SCOPED_TRACE(tensors[i].first);
    const Tensor& got = loaded.tensors[i].second;
    EXPECT_EQ(loaded.tensors[i].first, tensors[i].first);
    EXPECT_EQ(got.dtype(), dtype);
    EXPECT_EQ(got.shape(), tensors[i].second.shape());
    EXPECT_EQ(got.device(), Device::cpu);
    EXPECT_EQ(tensor_bytes(got), tensor_bytes(tensors[i].second));
  }
  const std::string file = read_bytes(path);
  uint64_t header_bytes = 0;
  std::memcpy(&header_bytes, file.data(), 8);
  EXPECT_EQ(file.size(), 8 + header_bytes + data_bytes);
}

INSTANTIATE_TEST_SUITE_P(Safetensors, SafetensorsDtype,
                         ::testing::Values(DType::f32, DType::f64, DType::bf16, DType::f16, DType::i32, DType::i64),
                         [](const ::testing::TestParamInfo<DType>& info) { return std::string(dtype_name(info.param)); });

TEST(Safetensors, MixedDtypesKeepOrderAndTileTheData) {
  TempDirectory directory;
  const std::string path = directory.file("mixed.safetensors");
  const DType dtypes[] = {DType::bf16, DType::f64, DType::i32, DType::f16, DType::i64, DType::f32};
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (size_t i = 0; i < 6; ++i)
    tensors.emplace_back(std::string(i + 1, static_cast<char>('z' - i)), random_for({static_cast<int64_t>(2 * i + 1)}, dtypes[i], i));
  save_safetensors(path, tensors);
  const SafetensorsFile loaded = load_safetensors(path);
  ASSERT_EQ(loaded.tensors.size(), 6u);
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(loaded.tensors[i].first, tensors[i].first);
    EXPECT_EQ(tensor_bytes(loaded.tensors[i].second), tensor_bytes(tensors[i].second));
  }
  // Offsets in the header follow the given order, back to back from zero.
  const std::string file = read_bytes(path);
  uint64_t header_bytes = 0;
  std::memcpy(&header_bytes, file.data(), 8);
  const json::Value header = json::Value::parse(file.substr(8, header_bytes));
  int64_t expected_begin = 0;
  for (const auto& [name, tensor] : tensors) {
    const auto& offsets = header.at(name).at("data_offsets").as_array();
    EXPECT_EQ(offsets[0].as_int(), expected_begin) << name;
    expected_begin += static_cast<int64_t>(tensor.nbytes());
    EXPECT_EQ(offsets[1].as_int(), expected_begin) << name;
  }
}

TEST(Safetensors, MetadataRoundTrip) {
  TempDirectory directory;
  const std::string path = directory.file("meta.safetensors");
  const std::vector<std::pair<std::string, std::string>> metadata = {
      {"format", "pt"}, {"config", R"({"latent": 512, "layers": 16})"}, {"note", "line\nbreak, tab\t, \xc3\xa9"},
      {"empty", ""}};
  save_safetensors(path, {{"w", random_for({3, 2}, DType::f32, 7)}}, metadata);
  const SafetensorsFile loaded = load_safetensors(path);
  EXPECT_EQ(loaded.metadata, metadata);
  ASSERT_EQ(loaded.tensors.size(), 1u);
  // Metadata alone, no tensors, is a valid file too.
  save_safetensors(path, {}, {{"only", "metadata"}});
  const SafetensorsFile only_metadata = load_safetensors(path);
  EXPECT_TRUE(only_metadata.tensors.empty());
  EXPECT_EQ(only_metadata.metadata, (std::vector<std::pair<std::string, std::string>>{{"only", "metadata"}}));
}

TEST(Safetensors, HeaderIsPaddedToEightBytes) {
  TempDirectory directory;
  const std::string path = directory.file("aligned.safetensors");
  for (size_t name_length = 1; name_length <= 12; ++name_length) {
    save_safetensors(path, {{std::string(name_length, 'n'), random_for({3}, DType::f32, name_length)}});
    const std::string file = read_bytes(path);
    uint64_t header_bytes = 0;
    std::memcpy(&header_bytes, file.data(), 8);
    EXPECT_EQ((8 + header_bytes) % 8, 0u) << name_length;
    const std::string header = file.substr(8, header_bytes);
    const size_t json_end = header.rfind('}') + 1;
    EXPECT_LT(header_bytes - json_end, 8u);
    EXPECT_EQ(header.substr(json_end), std::string(header_bytes - json_end, ' '));
    EXPECT_EQ(file.size(), 8 + header_bytes + 12);
  }
}

// Every byte of a tiny file, worked out by hand from the format.
TEST(Safetensors, TinyFileByteExact) {
  TempDirectory directory;
  const std::string path = directory.file("tiny.safetensors");
  const Tensor a = Tensor::from_doubles({1.0, -2.0}, {2}, DType::f32);
  const Tensor b = Tensor::from_doubles({7.0}, {}, DType::i32);  // 0-d
  save_safetensors(path, {{"a", a}, {"b", b}}, {{"k", "v"}});
  // 182 bytes of JSON, padded with 2 spaces to 184 = 0xb8. The checksums are the
  // CRC32C of a's 8 and b's 4 bytes below (computed by an independent bitwise CRC).
  const std::string header_json =
      R"({"__metadata__":{"k":"v","gc.crc32c.a":"aa36f2c9","gc.crc32c.b":"5167f30d"},)"
      R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("b":{"dtype":"I32","shape":[],"data_offsets":[8,12]}}  )";
  const std::string expected = std::string("\xb8\0\0\0\0\0\0\0", 8) + header_json +
                               std::string("\x00\x00\x80\x3f"   // 1.0f
                                           "\x00\x00\x00\xc0"   // -2.0f
                                           "\x07\x00\x00\x00",  // int32 7
                                           12);
  EXPECT_EQ(read_bytes(path), expected);
  const SafetensorsFile loaded = load_safetensors(path);
  EXPECT_EQ(loaded.metadata, (std::vector<std::pair<std::string, std::string>>{{"k", "v"}})) << "checksums are not metadata";
  EXPECT_EQ(loaded.tensors[1].second.shape(), Shape{});
  EXPECT_EQ(loaded.tensors[1].second.item(), 7.0);
}

// What other writers produce: no checksums. Such a file loads, unverified.
TEST(Safetensors, FileWithoutChecksumsLoads) {
  TempDirectory directory;
  const std::string path = directory.file("foreign.safetensors");
  write_bytes(path, make_file(R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                              std::string("\x00\x00\x80\x3f\x00\x00\x00\xc0", 8)));
  const SafetensorsFile loaded = load_safetensors(path);
  EXPECT_EQ(loaded.metadata, (std::vector<std::pair<std::string, std::string>>{{"format", "pt"}}));
  ASSERT_EQ(loaded.tensors.size(), 1u);
  EXPECT_EQ(loaded.tensors[0].second.to_doubles(), (std::vector<double>{1.0, -2.0}));
}

TEST(Safetensors, HeaderOrderMayDifferFromDataOrder) {
  TempDirectory directory;
  const std::string path = directory.file("reordered.safetensors");
  // As other writers do: keys in one order, data in another.
  write_bytes(path, make_file(R"({"b":{"dtype":"I32","shape":[1],"data_offsets":[8,12]},)"
                              R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                              std::string("\x00\x00\x80\x3f\x00\x00\x00\xc0\x07\x00\x00\x00", 12)));
  const SafetensorsFile loaded = load_safetensors(path);
  ASSERT_EQ(loaded.tensors.size(), 2u);
  EXPECT_EQ(loaded.tensors[0].first, "b");
  EXPECT_EQ(loaded.tensors[0].second.to_doubles(), std::vector<double>{7.0});
  EXPECT_EQ(loaded.tensors[1].first, "a");
  EXPECT_EQ(loaded.tensors[1].second.to_doubles(), (std::vector<double>{1.0, -2.0}));
}

TEST(Safetensors, ViewsSaveOnlyTheirElements) {
  TempDirectory directory;
  const std::string path = directory.file("view.safetensors");
  const Tensor whole = random_for({9, 5}, DType::f64, 3);
  const Tensor rows = whole.slice_rows(4, 3);  // [3, 5] at a non-zero offset
  save_safetensors(path, {{"rows", rows}});
  const SafetensorsFile loaded = load_safetensors(path);
  EXPECT_EQ(loaded.tensors[0].second.shape(), (Shape{3, 5}));
  EXPECT_EQ(loaded.tensors[0].second.to_doubles(), rows.to_doubles());
}

TEST(Safetensors, LoadOntoMetaKeepsShapesOnly) {
  TempDirectory directory;
  const std::string path = directory.file("meta_device.safetensors");
  save_safetensors(path, {{"x", random_for({4, 3}, DType::bf16, 1)}, {"y", random_for({5}, DType::i64, 2)}});
  const SafetensorsFile loaded = load_safetensors(path, Device::meta);
  ASSERT_EQ(loaded.tensors.size(), 2u);
  EXPECT_TRUE(loaded.tensors[0].second.is_meta());
  EXPECT_EQ(loaded.tensors[0].second.shape(), (Shape{4, 3}));
  EXPECT_EQ(loaded.tensors[1].second.dtype(), DType::i64);
}

TEST(Safetensors, SaveRejectsBadInputWithoutWriting) {
  TempDirectory directory;
  const std::string path = directory.file("rejected.safetensors");
  const Tensor good = random_for({2}, DType::f32, 1);
  EXPECT_THROW(save_safetensors(path, {{"m", Tensor::empty({2}, DType::f32, Device::meta)}}), std::invalid_argument);
  EXPECT_THROW(save_safetensors(path, {{"u", Tensor()}}), std::invalid_argument);
  EXPECT_THROW(save_safetensors(path, {{"d", good}, {"d", good}}), std::invalid_argument);
  EXPECT_THROW(save_safetensors(path, {{"__metadata__", good}}), std::invalid_argument);
  EXPECT_THROW(save_safetensors(path, {{"", good}}), std::invalid_argument);
  EXPECT_THROW(save_safetensors(path, {{"bad\xff", good}}), std::invalid_argument);
  EXPECT_THROW(save_safetensors(path, {{"g", good}}, {{"k", "1"}, {"k", "2"}}), std::invalid_argument);
  EXPECT_THROW(save_safetensors(path, {{"g", good}}, {{"gc.crc32c.g", "00000000"}}), std::invalid_argument);
  EXPECT_TRUE(directory.entries().empty());
}

TEST(Safetensors, CudaRoundTrip) {
  std::string why;
  if (!cuda_available(&why)) GTEST_SKIP() << "no cuda device: " << why;
  TempDirectory directory;
  const std::string path = directory.file("cuda.safetensors");
  const Tensor host_a = random_for({33, 5}, DType::bf16, 11);
  const Tensor host_b = random_for({31}, DType::f32, 12);
  save_safetensors(path, {{"a", host_a.to(Device::cuda)}, {"b", host_b.to(Device::cuda)}});
  const SafetensorsFile on_cpu = load_safetensors(path);
  EXPECT_EQ(tensor_bytes(on_cpu.tensors[0].second), tensor_bytes(host_a));
  EXPECT_EQ(tensor_bytes(on_cpu.tensors[1].second), tensor_bytes(host_b));
  const SafetensorsFile on_cuda = load_safetensors(path, Device::cuda);
  EXPECT_EQ(on_cuda.tensors[0].second.device(), Device::cuda);
  EXPECT_EQ(tensor_bytes(on_cuda.tensors[0].second), tensor_bytes(host_a));
  EXPECT_EQ(tensor_bytes(on_cuda.tensors[1].second), tensor_bytes(host_b));
}

// ---- safetensors: corrupted files ----------------------------------------------

std::string write_sample(const TempDirectory& directory) {
  const std::string path = directory.file("sample.safetensors");
  save_safetensors(path,
                   {{"encoder.weight", random_for({3, 5}, DType::f32, 1)},
                    {"encoder.bias", random_for({5}, DType::bf16, 2)},
                    {"steps", random_for({}, DType::i64, 3)}},
                   {{"format", "gc"}});
  return path;
}

TEST(SafetensorsCorrupt, TruncatedAtEveryLength) {
  TempDirectory directory;
  const std::string sample = read_bytes(write_sample(directory));
  const std::string path = directory.file("truncated.safetensors");
  write_bytes(path, sample);
  for (size_t length = sample.size(); length-- > 0;) {
    fs::resize_file(path, length);  // shortest last: one file, cut shorter each time
    EXPECT_TRUE(load_fails_with(path, "truncated")) << "cut at " << length << " of " << sample.size();
  }
}

TEST(SafetensorsCorrupt, FlippedHeaderBytesNeverCrash) {
  TempDirectory directory;
  const std::string sample = read_bytes(write_sample(directory));
  uint64_t header_bytes = 0;
  std::memcpy(&header_bytes, sample.data(), 8);
  const std::string path = directory.file("flipped.safetensors");
  write_bytes(path, sample);
  size_t rejected = 0, attempts = 0;
  for (size_t position = 0; position < 8 + header_bytes; ++position) {
    for (unsigned mask : {0x01u, 0x04u, 0x20u, 0x80u, 0xffu}) {
      overwrite_byte(path, position, static_cast<char>(static_cast<unsigned char>(sample[position]) ^ mask));
      ++attempts;
      try {
        const SafetensorsFile loaded = load_safetensors(path);
        // Some flips leave a valid file (a changed letter in a name): then the
        // tensors still tile the data exactly.
        EXPECT_GE(position, 8u) << "a changed length field was accepted";
        uint64_t total_bytes = 0;
        for (const auto& entry : loaded.tensors) total_bytes += entry.second.nbytes();
        EXPECT_EQ(8 + header_bytes + total_bytes, sample.size());
      } catch (const std::runtime_error& error) {
        ++rejected;
        EXPECT_EQ(std::string(error.what()).rfind(path + ": ", 0), 0u) << error.what();
      } catch (const std::exception& error) {
        ADD_FAILURE() << "byte " << position << " mask " << mask << ": wrong exception type: " << error.what();
      }
      overwrite_byte(path, position, sample[position]);
    }
  }
  // Structure, digits and dtype names are dense in the header: most flips are caught.
  EXPECT_GT(rejected, attempts / 2);
}

// The tensor whose data holds byte `position` of the file.
std::string tensor_at(const SafetensorsFile& file, uint64_t data_start_bytes, uint64_t position) {
  uint64_t begin = data_start_bytes;
  for (const auto& [name, tensor] : file.tensors) {
    if (position < begin + tensor.nbytes()) return name;
    begin += tensor.nbytes();
  }
  return "";
}

TEST(SafetensorsCorrupt, EveryFlippedDataBitNamesItsTensor) {
  TempDirectory directory;
  const std::string sample_path = write_sample(directory);
  const std::string sample = read_bytes(sample_path);
  const SafetensorsFile original = load_safetensors(sample_path);
  uint64_t header_bytes = 0;
  std::memcpy(&header_bytes, sample.data(), 8);
  const std::string path = directory.file("bit.safetensors");
  write_bytes(path, sample);
  for (size_t position = 8 + header_bytes; position < sample.size(); ++position) {
    const char flipped = static_cast<char>(sample[position] ^ (1 << (position % 8)));
    overwrite_byte(path, position, flipped);
    const std::string name = tensor_at(original, 8 + header_bytes, position);
    EXPECT_TRUE(load_fails_with(path, "checksum mismatch in tensor '" + name + "'")) << "byte " << position;
    // On meta no data is read, so nothing is checked.
    EXPECT_EQ(load_safetensors(path, Device::meta).tensors.size(), 3u);
    overwrite_byte(path, position, sample[position]);
  }
  EXPECT_EQ(load_safetensors(path).tensors.size(), 3u);
}

TEST(SafetensorsCorrupt, LyingLengthField) {
  TempDirectory directory;
  const std::string sample = read_bytes(write_sample(directory));
  uint64_t header_bytes = 0;
  std::memcpy(&header_bytes, sample.data(), 8);
  const std::string path = directory.file("length.safetensors");
  const std::vector<std::pair<uint64_t, std::string>> cases = {
      {UINT64_MAX, "absurd"},
      {uint64_t{1} << 63, "absurd"},
      {100'000'001, "absurd"},
      {100'000'000, "truncated"},
      {sample.size(), "truncated"},
      {header_bytes + 8, "corrupted header"},  // swallows data bytes into the JSON
      {header_bytes - 8, "corrupted header"},  // cuts the JSON short
      {0, "corrupted header"},
  };
  for (const auto& [length, phrase] : cases) {
    write_bytes(path, u64_le(length) + sample.substr(8));
    EXPECT_TRUE(load_fails_with(path, phrase)) << "length " << length;
  }
}

TEST(SafetensorsCorrupt, InconsistentHeaders) {
  TempDirectory directory;
  const std::string path = directory.file("inconsistent.safetensors");
  const std::string data8(8, '\x01'), data12(12, '\x02');
  struct Case {
    std::string header;
    std::string data;
    std::string phrase;
  };
  const std::vector<Case> cases = {
      {"this is not json", "", "corrupted header"},
      {"[]", "", "corrupted header: expected a JSON object"},
      {R"({"a":5})", "", "expected an object"},
      {R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}})", data8, "unknown dtype \"U8\""},
      {R"({"a":{"dtype":3,"shape":[2],"data_offsets":[0,8]}})", data8, "dtype is not a string"},
      {R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", data8, "needs 12"},
      {R"({"a":{"dtype":"F64","shape":[2],"data_offsets":[0,8]}})", data8, "needs 16"},
      {R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})", data8, "truncated"},
      {R"({"a":{"dtype":"F32","shape":[1000000000000],"data_offsets":[0,4000000000000]}})", data8, "truncated"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
       data12, "overlap"},
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
       data12, "gap"},
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", data8, "gap"},
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", data8, "data region size mismatch"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", data8, "data_offsets"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", data8, "data_offsets"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":["0","8"]}})", data8, "data_offsets"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}})", data8, "data_offsets"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,99999999999999999999]}})", data8, "data_offsets"},
      {R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", data8, "non-negative integers"},
      {R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", data8, "non-negative integers"},
      {R"({"a":{"dtype":"F32","shape":{},"data_offsets":[0,8]}})", data8, "shape is not an array"},
      {R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}})", data8,
       "overflows"},
      {R"({"a":{"dtype":"F32","shape":[1,1,1,1,2],"data_offsets":[0,8]}})", data8, "at most 4"},
      {R"({"a":{"dtype":"F32","shape":[2]}})", data8, "missing"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}})", data8, "unexpected key"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
       data8, "duplicate key"},
      {R"({"__metadata__":[1]})", "", "\"__metadata__\" is not an object"},
      {R"({"__metadata__":{"k":1}})", "", "is not a string"},
      // Checksums: all or none, 8 hex digits, each of a tensor of the file, matching its bytes.
      {R"({"__metadata__":{"gc.crc32c.b":"00000000"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", data8,
       "checksum of tensor 'b', which the file does not hold"},
      {R"({"__metadata__":{"gc.crc32c.a":"0000000"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", data8,
       "the checksum of tensor 'a' is \"0000000\", not 8 hex digits"},
      {R"({"__metadata__":{"gc.crc32c.a":"0000000g"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", data8,
       "not 8 hex digits"},
      {R"({"__metadata__":{"gc.crc32c.a":" 0000000"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", data8,
       "not 8 hex digits"},
      {R"({"__metadata__":{"gc.crc32c.a":"00000000"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
       R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
       data8, "tensor 'b' has no checksum"},
      {R"({"__metadata__":{"gc.crc32c.a":"00000000"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", data8,
       "checksum mismatch in tensor 'a'"},
  };
  for (const Case& c : cases) {
    write_bytes(path, make_file(c.header, c.data));
    EXPECT_TRUE(load_fails_with(path, c.phrase)) << c.header;
  }
  // The empty header "" of length 0 and padding-only headers are not JSON.
  write_bytes(path, u64_le(0));
  EXPECT_TRUE(load_fails_with(path, "corrupted header"));
  write_bytes(path, u64_le(8) + std::string(8, ' '));
  EXPECT_TRUE(load_fails_with(path, "corrupted header"));
}

TEST(SafetensorsCorrupt, MissingFileOrDirectory) {
  TempDirectory directory;
  EXPECT_TRUE(load_fails_with(directory.file("absent.safetensors"), "cannot open"));
  EXPECT_TRUE(load_fails_with(directory.path(), "not a regular file but a directory"));
  EXPECT_TRUE(load_fails_with("/dev/null", "not a regular file but a character device"));
}

// A FIFO without a writer: a blocking open would wait forever. The alarm turns
// such a hang into a failed (killed) test run instead of a stuck one.
TEST(SafetensorsCorrupt, FifoIsRefusedAtOnce) {
  TempDirectory directory;
  const std::string path = directory.file("weights.safetensors");
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0) << std::strerror(errno);
  ::alarm(20);
  EXPECT_TRUE(load_fails_with(path, "not a regular file but a FIFO"));
  ::alarm(0);
}

}  // namespace
}  // namespace gc
