// The inert pickle reader and the torch zip checkpoint reader on hand-made inputs: what Python
// would execute is kept as data, malformed input gives one error naming the member or tensor.
#include <gtest/gtest.h>
#include <zip.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "boreas/core/error.hpp"
#include "boreas/io/pickle.hpp"
#include "boreas/io/torch_checkpoint.hpp"
#include "support/test_support.hpp"

namespace fs = std::filesystem;
namespace pickle = boreas::io::pickle;
using boreas::io::TorchCheckpoint;
using boreas::testing_support::error_of;
using boreas::testing_support::temp_path;

namespace {

/// Protocol-2 pickle bytes, written opcode by opcode.
struct PickleWriter {
    std::string bytes = "\x80\x02";
    PickleWriter& op(char c) {
        bytes += c;
        return *this;
    }
    PickleWriter& global(const std::string& module, const std::string& name) {
        bytes += 'c' + module + '\n' + name + '\n';
        return *this;
    }
    PickleWriter& str(const std::string& s) {
        bytes += 'X';
        const auto n = static_cast<std::uint32_t>(s.size());
        bytes.append(reinterpret_cast<const char*>(&n), 4);
        bytes += s;
        return *this;
    }
    PickleWriter& integer(std::int32_t v) {
        bytes += 'J';
        bytes.append(reinterpret_cast<const char*>(&v), 4);
        return *this;
    }
    PickleWriter& ints(std::initializer_list<std::int32_t> values) {  // a tuple of ints
        op('(');
        for (auto v : values) integer(v);
        return op('t');
    }
    /// _rebuild_tensor_v2(('storage', FloatStorage, key, 'cpu', numel), offset, size, stride,
    /// False, OrderedDict())
    PickleWriter& tensor(const std::string& storage_type, const std::string& key, int numel,
                         int offset, std::initializer_list<std::int32_t> size,
                         std::initializer_list<std::int32_t> stride) {
        global("torch._utils", "_rebuild_tensor_v2");
        op('(');
        op('(')
            .str("storage")
            .global("torch", storage_type)
            .str(key)
            .str("cpu")
            .integer(numel)
            .op('t');
        op('Q');
        integer(offset).ints(size).ints(stride).op('\x89');
        global("collections", "OrderedDict").op(')').op('R');
        op('t').op('R');
        return *this;
    }
    std::span<const std::byte> span() const {
        return {reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()};
    }
};

/// A torch-style zip: archive/data.pkl, archive/data/<key> and any extra members.
fs::path write_zip(const std::string& name, const std::map<std::string, std::string>& members,
                   bool stored = true) {
    const auto path = temp_path(name);
    fs::remove(path);
    int error = 0;
    zip_t* archive = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &error);
    EXPECT_NE(archive, nullptr);
    for (const auto& [member, data] : members) {
        auto* copy = static_cast<char*>(std::malloc(data.size() + 1));
        std::memcpy(copy, data.data(), data.size());
        zip_source_t* source = zip_source_buffer(archive, copy, data.size(), 1);
        const auto index = zip_file_add(archive, member.c_str(), source, ZIP_FL_OVERWRITE);
        zip_set_file_compression(archive, static_cast<zip_uint64_t>(index),
                                 stored ? ZIP_CM_STORE : ZIP_CM_DEFLATE, 0);
    }
    EXPECT_EQ(zip_close(archive), 0);
    return path;
}

std::string floats(std::initializer_list<float> values) {
    std::string out(values.size() * 4, '\0');
    std::memcpy(out.data(), values.begin(), out.size());
    return out;
}

/// {'w': tensor [2, 2] from storage '0', 'bias': tensor [2] from the same storage at offset 4}
std::string state_dict_pickle(int numel = 6, const std::string& type = "FloatStorage") {
    PickleWriter w;
    w.global("collections", "OrderedDict").op(')').op('R');
    w.op('(');
    w.str("w").tensor(type, "0", numel, 0, {2, 2}, {2, 1});
    w.str("bias").tensor(type, "0", numel, 4, {2}, {1});
    w.op('u').op('.');
    return w.bytes;
}

}  // namespace

TEST(Pickle, ReadsGlobalsAndCallsAsInertValues) {
    const fs::path marker = temp_path("pickle-was-executed");
    fs::remove(marker);
    // os.system("touch <marker>") as Python would run it, inside a list.
    PickleWriter w;
    w.op(']').op('(');
    w.global("os", "system").op('(').str("touch " + marker.string()).op('t').op('R');
    w.global("builtins", "eval").op('(').str("__import__('os').system('true')").op('t').op('R');
    w.op('e').op('.');
    const auto document = pickle::parse(w.span(), "evil");
    const auto& root = document.root();
    ASSERT_EQ(root.kind, pickle::Kind::list);
    ASSERT_EQ(root.items.size(), 2u);
    EXPECT_EQ(root.items[0]->kind, pickle::Kind::object);
    EXPECT_EQ(root.items[0]->class_name(), "os.system");
    EXPECT_EQ(root.items[0]->items.at(0)->text, "touch " + marker.string());
    EXPECT_EQ(root.items[1]->class_name(), "builtins.eval");
    EXPECT_EQ(document.globals(), (std::vector<std::string>{"os.system", "builtins.eval"}));
    EXPECT_FALSE(fs::exists(marker)) << "the pickle's call ran";
}

TEST(Pickle, ObjectsKeepTheirStateAndItems) {
    // NEWOBJ + BUILD, as a torch.nn.Module is pickled: cls.__new__(cls) then its __dict__.
    PickleWriter w;
    w.global("some.module", "Block").op(')').op('\x81');
    w.op('}').op('(').str("_parameters").op('}').str("training").op('\x88').op('u');
    w.op('b').op('.');
    const auto document = pickle::parse(w.span(), "module");
    const auto& root = document.root();
    EXPECT_EQ(root.class_name(), "some.module.Block");
    ASSERT_NE(root.state, nullptr);
    ASSERT_NE(root.state->get("training"), nullptr);
    EXPECT_TRUE(root.state->get("training")->boolean);
}

TEST(Pickle, MemoCyclesAreHarmless) {
    // l = []; l.append(l)
    PickleWriter w;
    w.op(']').op('q').bytes += '\0';
    w.op('h').bytes += '\0';
    w.op('a').op('.');
    const auto document = pickle::parse(w.span(), "cycle");
    EXPECT_EQ(document.root().items.at(0), &document.root());
}

TEST(Pickle, IntegersOfEveryEncoding) {
    PickleWriter w;
    w.op('(').integer(-5);
    w.bytes += "K\xff";                             // BININT1 255
    w.bytes += std::string("M\x01\x02", 3);         // BININT2 513
    w.bytes += std::string("\x8a\x02\x00\x80", 4);  // LONG1 -32768
    w.bytes += "I42\nL-7L\n";
    w.op('t').op('.');
    const auto document = pickle::parse(w.span(), "ints");
    std::vector<std::int64_t> values;
    for (const auto* item : document.root().items) values.push_back(item->integer);
    EXPECT_EQ(values, (std::vector<std::int64_t>{-5, 255, 513, -32768, 42, -7}));
}

TEST(Pickle, MalformedInputNamesOriginAndOffset) {
    EXPECT_NE(error_of([] { pickle::parse({}, "empty.pkl"); }).find("empty.pkl"),
              std::string::npos);
    PickleWriter truncated;
    truncated.str("abc");
    truncated.bytes.resize(truncated.bytes.size() - 1);
    const auto message = error_of([&] { pickle::parse(truncated.span(), "t.pkl"); });
    EXPECT_NE(message.find("t.pkl: corrupt pickle at byte 2"), std::string::npos) << message;
    PickleWriter underflow;
    underflow.op('R').op('.');
    EXPECT_NE(error_of([&] { pickle::parse(underflow.span(), "u.pkl"); }).find("stack underflow"),
              std::string::npos);
    PickleWriter unknown_memo;
    unknown_memo.bytes += "h\x07.";
    EXPECT_NE(error_of([&] { pickle::parse(unknown_memo.span(), "m.pkl"); }).find("memo index 7"),
              std::string::npos);
    PickleWriter extension;
    extension.bytes += "\x82\x01.";
    EXPECT_NE(error_of([&] { pickle::parse(extension.span(), "e.pkl"); }).find("EXT1"),
              std::string::npos);
}

TEST(TorchCheckpoint, ReadsTensorsThroughTheirStorages) {
    const auto path = write_zip("sd.ckpt", {{"archive/data.pkl", state_dict_pickle()},
                                            {"archive/data/0", floats({1, 2, 3, 4, 5, 6})},
                                            {"archive/version", "3\n"}});
    TorchCheckpoint checkpoint(path);
    EXPECT_EQ(checkpoint.archive(), "archive");
    const auto& root = checkpoint.root();
    ASSERT_EQ(root.kind, pickle::Kind::dict);
    const auto* w = root.get("w");
    const auto* bias = root.get("bias");
    ASSERT_TRUE(w && bias);
    EXPECT_EQ(w->shape, (std::vector<std::int64_t>{2, 2}));
    EXPECT_EQ(checkpoint.read<float>(*w, "w"), (std::vector<float>{1, 2, 3, 4}));
    EXPECT_EQ(checkpoint.read<double>(*bias, "bias"), (std::vector<double>{5, 6}));
    EXPECT_FALSE(checkpoint.anemoi_metadata().has_value());
    // The same from deflated members (torch writes stored ones; other writers may not).
    const auto deflated = write_zip(
        "deflated.ckpt",
        {{"archive/data.pkl", state_dict_pickle()}, {"archive/data/0", floats({1, 2, 3, 4, 5, 6})}},
        false);
    TorchCheckpoint compressed(deflated);
    EXPECT_EQ(compressed.read<float>(*compressed.root().get("bias"), "bias"),
              (std::vector<float>{5, 6}));
}

TEST(TorchCheckpoint, StridedViewsReadInCOrder) {
    PickleWriter w;
    w.tensor("FloatStorage", "0", 6, 0, {3, 2}, {1, 3}).op('.');  // the transpose of [2, 3]
    const auto path = write_zip(
        "t.ckpt", {{"archive/data.pkl", w.bytes}, {"archive/data/0", floats({1, 2, 3, 4, 5, 6})}});
    TorchCheckpoint checkpoint(path);
    EXPECT_EQ(checkpoint.read<float>(checkpoint.root(), "t"),
              (std::vector<float>{1, 4, 2, 5, 3, 6}));
}

TEST(TorchCheckpoint, ErrorsNameTheMemberOrTensor) {
    // A storage shorter than its record says.
    const auto short_storage = write_zip(
        "short.ckpt", {{"a/data.pkl", state_dict_pickle()}, {"a/data/0", floats({1, 2, 3})}});
    TorchCheckpoint checkpoint(short_storage);
    auto message = error_of([&] { checkpoint.read<float>(*checkpoint.root().get("w"), "w"); });
    EXPECT_NE(message.find("tensor 'w'"), std::string::npos) << message;
    EXPECT_NE(message.find("a/data/0"), std::string::npos) << message;
    // A tensor that reaches past its storage.
    const auto overreach = write_zip(
        "over.ckpt", {{"a/data.pkl", state_dict_pickle(4)}, {"a/data/0", floats({1, 2, 3, 4})}});
    TorchCheckpoint over(overreach);
    message = error_of([&] { over.read<float>(*over.root().get("bias"), "bias"); });
    EXPECT_NE(message.find("tensor 'bias': needs 6 elements"), std::string::npos) << message;
    // An unknown storage dtype.
    const auto complex =
        write_zip("complex.ckpt", {{"a/data.pkl", state_dict_pickle(6, "ComplexFloatStorage")},
                                   {"a/data/0", floats({1, 2, 3, 4, 5, 6})}});
    TorchCheckpoint unknown(complex);
    message = error_of([&] { unknown.read<float>(*unknown.root().get("w"), "w"); });
    EXPECT_NE(message.find("torch.ComplexFloatStorage"), std::string::npos) << message;
    // A missing storage member.
    const auto missing = write_zip("missing.ckpt", {{"a/data.pkl", state_dict_pickle()}});
    TorchCheckpoint none(missing);
    message = error_of([&] { none.read<float>(*none.root().get("w"), "w"); });
    EXPECT_NE(message.find("storage member 'a/data/0' is missing"), std::string::npos) << message;
    // No data.pkl.
    const auto no_pickle = write_zip("nopickle.ckpt", {{"a/other", "x"}});
    message = error_of([&] { TorchCheckpoint bad(no_pickle); });
    EXPECT_NE(message.find("no member 'a/data.pkl'"), std::string::npos) << message;
}

TEST(TorchCheckpoint, TruncatedOrCorruptZipIsRefused) {
    const auto path = write_zip("whole.ckpt", {{"archive/data.pkl", state_dict_pickle()},
                                               {"archive/data/0", floats({1, 2, 3, 4, 5, 6})}});
    std::string bytes;
    {
        std::ifstream in(path, std::ios::binary);
        bytes.assign(std::istreambuf_iterator<char>(in), {});
    }
    for (const std::size_t keep : {bytes.size() / 2, bytes.size() - 10, std::size_t{0}}) {
        const auto cut = temp_path("cut.ckpt");
        std::ofstream(cut, std::ios::binary)
            .write(bytes.data(), static_cast<std::streamsize>(keep));
        const auto message = error_of([&] { TorchCheckpoint checkpoint(cut); });
        EXPECT_NE(message.find(cut.string()), std::string::npos) << keep << ": " << message;
    }
    // A flipped byte inside the pickle: the CRC check (or the pickle reader) refuses it.
    auto corrupt = bytes;
    const auto at = corrupt.find("storage");
    ASSERT_NE(at, std::string::npos);
    corrupt[at] = 'X';
    const auto message = error_of([&] {
        TorchCheckpoint checkpoint(
            std::span(reinterpret_cast<const std::byte*>(corrupt.data()), corrupt.size()),
            "corrupt.ckpt");
    });
    EXPECT_NE(message.find("corrupt.ckpt"), std::string::npos) << message;
}

TEST(TorchCheckpoint, LenientJson) {
    const auto json = boreas::io::parse_json_lenient(
        R"({"a": NaN, "b": [Infinity, -Infinity], "c": "NaN"})", "m");
    EXPECT_TRUE(json["a"].is_null());
    EXPECT_TRUE(json["b"][1].is_null());
    EXPECT_EQ(json["c"], "NaN");
    EXPECT_NE(error_of([] { boreas::io::parse_json_lenient("{", "meta.json"); }).find("meta.json"),
              std::string::npos);
}

// Files written by torch.save itself (tools/reference/make_fuzz_corpus.py; also the fuzz seeds).
namespace {
fs::path corpus(const std::string& name) {
    return fs::path(BOREAS_TEST_DATA) / ".." / "fuzz" / "corpus" / "fuzz_checkpoint" / name;
}
}  // namespace

TEST(TorchCheckpoint, ModuleTreeAsStateDictWithNonPersistentBuffers) {
    TorchCheckpoint checkpoint(corpus("module.pt"));
    const auto entries = checkpoint.state_dict(checkpoint.root());
    std::vector<std::string> names;
    for (const auto& e : entries)
        names.push_back(e.name + (e.persistent ? "" : " (non-persistent)"));
    EXPECT_EQ(names, (std::vector<std::string>{"persistent", "transient (non-persistent)",
                                               "lin.weight", "lin.bias", "norm.weight", "norm.bias",
                                               "inner.data.weight"}));
    EXPECT_EQ(checkpoint.read<std::int64_t>(*entries[0].tensor, "persistent"),
              (std::vector<std::int64_t>{0, 1, 2, 3}));
    EXPECT_EQ(checkpoint.read<float>(*entries[1].tensor, "transient"), std::vector<float>(4, 1.0f));
    EXPECT_TRUE(entries[2].parameter);
    EXPECT_EQ(entries[2].tensor->shape, (std::vector<std::int64_t>{2, 3}));
    // The same module's state_dict() saved on its own gives the persistent names.
    TorchCheckpoint saved(corpus("module_state_dict.pt"));
    std::vector<std::string> saved_names;
    for (const auto& e : saved.state_dict(saved.root())) saved_names.push_back(e.name);
    EXPECT_EQ(saved_names,
              (std::vector<std::string>{"persistent", "lin.weight", "lin.bias", "norm.weight",
                                        "norm.bias", "inner.data.weight"}));
}

TEST(TorchCheckpoint, ViewsAndDtypesAsTorchWritesThem) {
    TorchCheckpoint views(corpus("views.pt"));
    const auto& root = views.root();
    EXPECT_EQ(views.read<float>(*root.get("t"), "t"),
              (std::vector<float>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}));
    EXPECT_EQ(views.read<float>(*root.get("row"), "row"), (std::vector<float>{4, 5, 6, 7}));
    EXPECT_EQ(views.read<float>(*root.get("slice"), "slice"),
              (std::vector<float>{1, 2, 5, 6, 9, 10}));
    TorchCheckpoint dtypes(corpus("dtypes.pt"));
    const auto& d = dtypes.root();
    for (const char* name : {"i64", "i32", "i16", "i8", "u8"})
        EXPECT_EQ(dtypes.read<std::int64_t>(*d.get(name), name),
                  (std::vector<std::int64_t>{0, 1, 2}))
            << name;
    EXPECT_EQ(dtypes.read<float>(*d.get("bool"), "bool"), (std::vector<float>{1, 0}));
    EXPECT_EQ(dtypes.read<float>(*d.get("scalar"), "scalar"), (std::vector<float>{1.5f}));
    EXPECT_TRUE(dtypes.read<float>(*d.get("empty"), "empty").empty());
    for (const char* name : {"f64", "f16", "bf16"})
        EXPECT_EQ(dtypes.read<float>(*d.get(name), name).size(), 3u);
}

TEST(TorchCheckpoint, EvilPicklesStayInert) {
    const fs::path marker = "/tmp/boreas-pickle-was-executed";
    fs::remove(marker);
    for (const char* name : {"evil.pt", "evil_p0.pt", "evil_p4.pt"}) {
        TorchCheckpoint checkpoint(corpus(name));
        const auto& globals = checkpoint.pickle().globals();
        EXPECT_NE(std::find(globals.begin(), globals.end(), "posix.system"), globals.end()) << name;
        EXPECT_NE(error_of([&] {
                      checkpoint.state_dict(checkpoint.root());
                  }).find("neither an nn.Module"),
                  std::string::npos);
    }
    EXPECT_FALSE(fs::exists(marker)) << "a pickle's call ran";
}
