// test_npz.cpp: the .npz reader (tools/io/npz.h) on archives written by NumPy
// (tests/data/npz/make_npz.py): every dtype and the 0-d values of np.savez
// (Python int, float, bool, str), exact values; zip64 end records; and every
// refusal with a message starting with the path: compressed, object, Fortran and
// big-endian arrays, truncation at every length, flipped bytes, foreign files.
#include <gtest/gtest.h>

#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/test_util.h"
#include "tools/io/npz.h"

namespace gc {
namespace {

const std::string kDir = "tests/data/npz/";

std::vector<uint8_t> file_bytes(const std::string& path) {
  const std::string s = test::read_file(path);
  return std::vector<uint8_t>(s.begin(), s.end());
}

// The message of the runtime_error that parsing throws ("" when it loads).
std::string parse_error(const std::vector<uint8_t>& bytes, const std::string& name = "x.npz") {
  try {
    parse_npz(bytes, name);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

TEST(Npz, Crc32KnownAnswer) {
  EXPECT_EQ(crc32_ieee("123456789", 9), 0xCBF43926u);
  EXPECT_EQ(crc32_ieee("", 0), 0u);
  EXPECT_EQ(crc32_ieee("56789", 5, crc32_ieee("1234", 4)), 0xCBF43926u);
}

TEST(Npz, ReadsEveryDtypeOfNumpy) {
  const NpzFile f = load_npz(kDir + "basic.npz");
  ASSERT_EQ(f.arrays.size(), 13u);
  EXPECT_EQ(f.arrays[0].name, "f32");
  const NpyArray& f32 = f.at("f32");
  EXPECT_EQ(f32.kind, NpyKind::f32);
  EXPECT_EQ(f32.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(f32.to_doubles(), (std::vector<double>{-1, -0.5, 0, 0.5, 1, 1.5}));
  EXPECT_EQ(f.at("f64").to_doubles(), (std::vector<double>{1.5, -2.25, 1e300}));
  EXPECT_EQ(f.at("i32").shape, (std::vector<int64_t>{3, 1}));
  EXPECT_EQ(f.at("i32").to_doubles(), (std::vector<double>{-1, 2, 2147483647}));
  EXPECT_EQ(f.at("i64").to_doubles(), (std::vector<double>{-1099511627776.0, 7}));
  EXPECT_EQ(f.at("b1").to_doubles(), (std::vector<double>{1, 0, 1}));
  EXPECT_EQ(f.at("scalar_int").kind, NpyKind::i64);
  EXPECT_TRUE(f.at("scalar_int").shape.empty());
  EXPECT_EQ(f.at("scalar_int").to_scalar(), 12);
  EXPECT_EQ(f.at("scalar_float").to_scalar(), 0.6180339887498949);
  EXPECT_EQ(f.at("scalar_bool").kind, NpyKind::boolean);
  EXPECT_EQ(f.at("scalar_bool").to_scalar(), 1);
  EXPECT_EQ(f.at("text").to_text(), "12h");
  EXPECT_EQ(f.at("text_unicode").to_text(), "gc \xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80");
  EXPECT_EQ(f.at("empty").numel(), 0);
  EXPECT_EQ(f.at("four_d").describe(), "'<f4' [2, 3, 1, 5]");
  EXPECT_NE(f.find("a:b/~/c:w"), nullptr);
  EXPECT_EQ(f.find("absent"), nullptr);
  EXPECT_THROW(f.at("absent"), std::runtime_error);
  EXPECT_THROW(f.at("text").to_doubles(), std::runtime_error);
  EXPECT_THROW(f.at("f32").to_scalar(), std::runtime_error);
  EXPECT_THROW(f.at("f32").to_text(), std::runtime_error);

  const Tensor t = f.at("four_d").to_tensor(DType::f32, Device::cpu);
  EXPECT_EQ(t.shape(), (Shape{2, 3, 1, 5}));
  EXPECT_EQ(t.data_as<float>()[29], 29.0f);
  const Tensor meta = f.at("f64").to_tensor(DType::f32, Device::meta);
  EXPECT_EQ(meta.shape(), (Shape{3}));
}

TEST(Npz, RefusesWhatNpSavezDoesNotWrite) {
  auto error = [](const std::string& name) {
    try {
      load_npz(kDir + name);
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  const std::string compressed = error("compressed.npz");
  EXPECT_EQ(compressed.rfind(kDir + "compressed.npz: ", 0), 0u) << compressed;
  EXPECT_NE(compressed.find("np.savez_compressed"), std::string::npos) << compressed;
  EXPECT_NE(error("object.npz").find("gc never unpickles"), std::string::npos);
  EXPECT_NE(error("fortran.npz").find("Fortran"), std::string::npos);
  EXPECT_NE(error("big_endian.npz").find("'>f4' is not supported"), std::string::npos);
  EXPECT_NE(error("absent.npz").find("cannot open"), std::string::npos);
  EXPECT_NE(error("").find("not a regular file"), std::string::npos);  // the folder itself
}

TEST(Npz, RefusesForeignFiles) {
  EXPECT_NE(parse_error({}).find("empty file"), std::string::npos);
  const std::string text = "not a zip at all, just text";
  EXPECT_NE(parse_error(std::vector<uint8_t>(text.begin(), text.end())).find("not an .npz archive"), std::string::npos);
  std::vector<uint8_t> npy = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
  EXPECT_NE(parse_error(npy).find("np.save, not np.savez"), std::string::npos);
  // A zip whose entry is not an array.
  const std::vector<uint8_t> basic = file_bytes(kDir + "basic.npz");
  std::vector<uint8_t> renamed = basic;
  for (size_t i = 0; i + 7 < renamed.size(); ++i)
    if (std::memcmp(renamed.data() + i, "f32.npy", 7) == 0) std::memcpy(renamed.data() + i, "f32.txt", 7);
  EXPECT_NE(parse_error(renamed).find("entry 'f32.txt' is not a .npy array"), std::string::npos) << parse_error(renamed);
}

TEST(Npz, EveryTruncationIsAClearError) {
  const std::vector<uint8_t> basic = file_bytes(kDir + "basic.npz");
  for (size_t length = 0; length < basic.size(); ++length) {
    const std::vector<uint8_t> cut(basic.begin(), basic.begin() + static_cast<long>(length));
    const std::string e = parse_error(cut, "cut.npz");
    ASSERT_EQ(e.rfind("cut.npz: ", 0), 0u) << "length " << length << ": '" << e << "'";
  }
}

TEST(Npz, FlippedBytesLoadOrFailClearly) {
  const std::vector<uint8_t> basic = file_bytes(kDir + "basic.npz");
  int refused = 0;
  for (size_t i = 0; i < basic.size(); ++i) {
    std::vector<uint8_t> flipped = basic;
    flipped[i] ^= 0x10;
    const std::string e = parse_error(flipped, "flip.npz");
    if (!e.empty()) {
      ASSERT_EQ(e.rfind("flip.npz: ", 0), 0u) << "byte " << i << ": " << e;
      ++refused;
    }
  }
  // Every byte of an entry's .npy payload is covered by its CRC-32.
  EXPECT_GT(refused, static_cast<int>(basic.size()) / 2);
}

// np.savez writes zip64 end records only past 65535 entries or 4 GiB; this
// rewrites a small archive's end the way such an archive's end looks.
TEST(Npz, ReadsZip64EndRecords) {
  std::vector<uint8_t> bytes = file_bytes(kDir + "basic.npz");
  const size_t end = bytes.size() - 22;
  ASSERT_EQ(bytes[end], 0x50);
  auto le = [](std::vector<uint8_t>& out, uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
  };
  auto get = [&](size_t at, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | bytes[at + static_cast<size_t>(i)];
    return v;
  };
  const uint64_t entries = get(end + 10, 2), directory_bytes = get(end + 12, 4), directory_offset = get(end + 16, 4);
  std::vector<uint8_t> out(bytes.begin(), bytes.begin() + static_cast<long>(end));
  const uint64_t record = out.size();
  le(out, 0x06064b50, 4);
  le(out, 44, 8);
  le(out, 45, 2);
  le(out, 45, 2);
  le(out, 0, 4);
  le(out, 0, 4);
  le(out, entries, 8);
  le(out, entries, 8);
  le(out, directory_bytes, 8);
  le(out, directory_offset, 8);
  le(out, 0x07064b50, 4);
  le(out, 0, 4);
  le(out, record, 8);
  le(out, 1, 4);
  le(out, 0x06054b50, 4);
  le(out, 0, 4);
  le(out, 0xFFFF, 2);
  le(out, 0xFFFF, 2);
  le(out, 0xFFFFFFFF, 4);
  le(out, 0xFFFFFFFF, 4);
  le(out, 0, 2);
  const NpzFile f = parse_npz(out, "zip64.npz");
  EXPECT_EQ(f.arrays.size(), 13u);
  EXPECT_EQ(f.at("text").to_text(), "12h");
  // A locator pointing past the file.
  out[record + 56 + 8] = 0xFF;
  EXPECT_NE(parse_error(out, "zip64.npz").find("zip64.npz: "), std::string::npos);
}

}  // namespace
}  // namespace gc
