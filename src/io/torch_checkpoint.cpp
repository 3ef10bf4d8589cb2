#include "boreas/io/torch_checkpoint.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>

#include "boreas/core/error.hpp"

namespace boreas::io {
namespace {

float half_to_float(std::uint16_t h) {
    const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000) << 16;
    std::uint32_t exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
    std::uint32_t bits;
    if (exponent == 0x1f) {
        bits = sign | 0x7f800000u | (mantissa << 13);
    } else if (exponent == 0) {
        if (mantissa == 0) {
            bits = sign;
        } else {  // subnormal: renormalise
            int shift = 0;
            while (!(mantissa & 0x400)) {
                mantissa <<= 1;
                ++shift;
            }
            mantissa &= 0x3ff;
            bits =
                sign | (static_cast<std::uint32_t>(127 - 15 - shift + 1) << 23) | (mantissa << 13);
        }
    } else {
        bits = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
    }
    return std::bit_cast<float>(bits);
}

template <typename T>
T convert(const std::byte* p, DType dtype) {
    auto load = [p]<typename S>(S) {
        S value;
        std::memcpy(&value, p, sizeof value);
        return value;
    };
    switch (dtype) {
        case DType::F32:
            return static_cast<T>(load(float{}));
        case DType::F64:
            return static_cast<T>(load(double{}));
        case DType::F16:
            return static_cast<T>(half_to_float(load(std::uint16_t{})));
        case DType::BF16:
            return static_cast<T>(
                std::bit_cast<float>(static_cast<std::uint32_t>(load(std::uint16_t{})) << 16));
        case DType::I64:
            return static_cast<T>(load(std::int64_t{}));
        case DType::I32:
            return static_cast<T>(load(std::int32_t{}));
        case DType::I16:
            return static_cast<T>(load(std::int16_t{}));
        case DType::I8:
            return static_cast<T>(load(std::int8_t{}));
        case DType::U8:
            return static_cast<T>(load(std::uint8_t{}));
        case DType::BOOL:
            return static_cast<T>(load(std::uint8_t{}) != 0);
        default:
            break;
    }
    BOREAS_FAIL("dtype {} cannot be converted", dtype_name(dtype));
}

}  // namespace

std::int64_t numel(const pickle::Value& tensor) {
    std::int64_t count = 1;
    for (auto extent : tensor.shape) {
        BOREAS_CHECK(extent >= 0 && !__builtin_mul_overflow(count, extent, &count),
                     "tensor size overflows");
    }
    return count;
}

TorchCheckpoint::TorchCheckpoint(const std::filesystem::path& path)
    : zip_(std::make_unique<ZipArchive>(path)) {
    open();
}

TorchCheckpoint::TorchCheckpoint(std::span<const std::byte> bytes, std::string name)
    : zip_(std::make_unique<ZipArchive>(bytes, std::move(name))) {
    open();
}

void TorchCheckpoint::open() {
    const auto& members = zip_->members();
    BOREAS_CHECK(!members.empty(), "{}: the zip is empty, not a torch checkpoint", name());
    // torch's reader takes the first member's folder as the archive name (inline_container.cc).
    const auto slash = members.front().find('/');
    BOREAS_CHECK(slash != std::string::npos && slash > 0,
                 "{}: member '{}' is not inside a folder; a torch checkpoint keeps everything "
                 "under <archive>/",
                 name(), members.front());
    archive_ = members.front().substr(0, slash);
    const std::string pickle_member = archive_ + "/data.pkl";
    BOREAS_CHECK(zip_->contains(pickle_member),
                 "{}: no member '{}': not a torch.save zip checkpoint (members: {}{})", name(),
                 pickle_member, members.front(), members.size() > 1 ? ", ..." : "");
    const auto bytes = zip_->read(pickle_member);
    pickle_ = pickle::parse(bytes, name() + ": " + pickle_member);
}

std::optional<nlohmann::json> TorchCheckpoint::anemoi_metadata() const {
    for (const char* file : {"anemoi.json", "ai-models.json"}) {
        const std::string member = archive_ + "/anemoi-metadata/" + file;
        if (!zip_->contains(member)) continue;
        const auto bytes = zip_->read(member, std::uint64_t{1} << 30);
        return parse_json_lenient(
            std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
            name() + ": " + member);
    }
    return std::nullopt;
}

std::vector<double> TorchCheckpoint::supporting_array(const std::string& path,
                                                      const std::string& dtype,
                                                      std::int64_t count) const {
    DType type;
    if (dtype == "float64")
        type = DType::F64;
    else if (dtype == "float32")
        type = DType::F32;
    else if (dtype == "int64")
        type = DType::I64;
    else if (dtype == "int32")
        type = DType::I32;
    else if (dtype == "bool")
        type = DType::BOOL;
    else
        BOREAS_FAIL(
            "{}: supporting array '{}' has dtype '{}'; Boreas reads float64, float32, int64, "
            "int32 and bool",
            name(), path, dtype);
    const auto element = dtype_size(type);
    BOREAS_CHECK(count >= 0 && static_cast<std::uint64_t>(count) <=
                                   std::numeric_limits<std::uint64_t>::max() / element,
                 "{}: supporting array '{}' has an impossible size {}", name(), path, count);
    const auto bytes = zip_->read(path, static_cast<std::uint64_t>(count) * element);
    BOREAS_CHECK(bytes.size() == static_cast<std::size_t>(count) * element,
                 "{}: supporting array '{}' has {} bytes, expected {} ({} x {})", name(), path,
                 bytes.size(), count * static_cast<std::int64_t>(element), count, dtype);
    std::vector<double> out(static_cast<std::size_t>(count));
    for (std::size_t i = 0; i < out.size(); ++i)
        out[i] = convert<double>(bytes.data() + i * element, type);
    return out;
}

template <typename T>
std::vector<T> TorchCheckpoint::read(const pickle::Value& tensor, const std::string& what) const {
    const std::string where = name() + ": tensor '" + what + "'";
    BOREAS_CHECK(tensor.kind == pickle::Kind::tensor, "{}: expected a tensor, found a {}", where,
                 pickle::kind_name(tensor.kind));
    const auto& storage = *tensor.storage_ref;
    const std::string member = archive_ + "/data/" + storage.text;
    BOREAS_CHECK(storage.dtype.has_value(),
                 "{}: storage '{}' has type {}, which Boreas does not read", where, member,
                 storage.type_name);
    const DType dtype = *storage.dtype;
    const auto element = static_cast<std::int64_t>(dtype_size(dtype));
    const std::int64_t count = numel(tensor);
    const std::int64_t extent = pickle::storage_extent(tensor, where);
    BOREAS_CHECK(extent <= storage.numel, "{}: needs {} elements of storage '{}', which holds {}",
                 where, extent, member, storage.numel);
    BOREAS_CHECK(zip_->contains(member), "{}: storage member '{}' is missing", where, member);
    const auto bytes = zip_->size(member);
    BOREAS_CHECK(storage.numel <= std::numeric_limits<std::int64_t>::max() / element &&
                     bytes == static_cast<std::uint64_t>(storage.numel * element),
                 "{}: storage member '{}' has {} bytes, expected {} ({} x {})", where, member,
                 bytes, storage.numel * element, storage.numel, dtype_name(dtype));
    // Zero strides (expanded views) repeat elements; a claim of vastly more elements than the
    // storage holds is a corrupt size, not something to allocate.
    BOREAS_CHECK(count <= std::max<std::int64_t>(extent, 1) * 1024 || count <= (std::int64_t{1} << 20),
                 "{}: {} elements from {} stored ones: corrupt sizes or strides", where, count, extent);
    std::vector<T> out(static_cast<std::size_t>(count));
    if (count == 0) return out;
    const std::int64_t first = tensor.storage_offset;
    std::vector<std::byte> raw(static_cast<std::size_t>((extent - first) * element));
    zip_->read_range(member, static_cast<std::uint64_t>(first * element), raw);
    // Walk the tensor in C order; offsets relative to `first`.
    const auto rank = tensor.shape.size();
    std::vector<std::int64_t> index(rank, 0);
    std::int64_t offset = 0;
    for (std::int64_t i = 0; i < count; ++i) {
        out[static_cast<std::size_t>(i)] = convert<T>(raw.data() + offset * element, dtype);
        for (std::size_t d = rank; d-- > 0;) {
            if (++index[d] < tensor.shape[d]) {
                offset += tensor.stride[d];
                break;
            }
            offset -= (tensor.shape[d] - 1) * tensor.stride[d];
            index[d] = 0;
        }
    }
    return out;
}

template std::vector<float> TorchCheckpoint::read<float>(const pickle::Value&,
                                                         const std::string&) const;
template std::vector<double> TorchCheckpoint::read<double>(const pickle::Value&,
                                                           const std::string&) const;
template std::vector<std::int64_t> TorchCheckpoint::read<std::int64_t>(const pickle::Value&,
                                                                       const std::string&) const;

namespace {

/// The nn.Module walk of Module.state_dict(): parameters, then buffers, then children in the
/// order they were registered.
class ModuleWalker {
  public:
    ModuleWalker(const std::string& origin, std::vector<NamedTensor>& out)
        : origin_(origin), out_(out) {}

    static const pickle::Value* module_state(const pickle::Value& value) {
        if (value.kind != pickle::Kind::object || !value.state ||
            value.state->kind != pickle::Kind::dict)
            return nullptr;
        const auto* modules = value.state->get("_modules");
        return modules && modules->kind == pickle::Kind::dict ? value.state : nullptr;
    }

    void walk(const pickle::Value& module, const std::string& prefix, int depth) {
        BOREAS_CHECK(depth < 256, "{}: module tree deeper than 256 levels at '{}'", origin_,
                     prefix);
        const auto* state = module_state(module);
        if (!state) return;
        if (!on_path_.insert(&module).second) return;  // a module that contains itself
        std::vector<std::string> non_persistent;
        if (const auto* set = state->get("_non_persistent_buffers_set")) {
            // a set pickles as builtins.set([...]) (protocol 2) or EMPTY_SET/ADDITEMS
            const pickle::Value* items = set;
            if (set->kind == pickle::Kind::object && !set->items.empty()) items = set->items[0];
            if (items->kind == pickle::Kind::list || items->kind == pickle::Kind::tuple)
                for (const auto* item : items->items)
                    if (item->kind == pickle::Kind::string) non_persistent.push_back(item->text);
        }
        for (const char* field : {"_parameters", "_buffers"}) {
            const auto* tensors = state->get(field);
            if (!tensors || tensors->kind != pickle::Kind::dict) continue;
            for (const auto& [key, value] : tensors->entries) {
                if (key->kind != pickle::Kind::string || value->kind != pickle::Kind::tensor)
                    continue;
                const bool parameter = field[1] == 'p';
                const bool persistent =
                    parameter || std::find(non_persistent.begin(), non_persistent.end(),
                                           key->text) == non_persistent.end();
                out_.push_back({prefix + key->text, value, parameter, persistent});
            }
        }
        for (const auto& [key, child] : state->get("_modules")->entries)
            if (key->kind == pickle::Kind::string && child->kind == pickle::Kind::object)
                walk(*child, prefix + key->text + ".", depth + 1);
        on_path_.erase(&module);
    }

  private:
    const std::string& origin_;
    std::vector<NamedTensor>& out_;
    std::set<const pickle::Value*> on_path_;
};

}  // namespace

std::vector<NamedTensor> TorchCheckpoint::state_dict(const pickle::Value& root) const {
    std::vector<NamedTensor> out;
    if (ModuleWalker::module_state(root)) {
        ModuleWalker(name(), out).walk(root, "", 0);
        return out;
    }
    if (root.kind == pickle::Kind::dict) {
        if (const auto* nested = root.get("state_dict");
            nested && nested->kind == pickle::Kind::dict)
            return state_dict(*nested);
        for (const auto& [key, value] : root.entries)
            if (key->kind == pickle::Kind::string && value->kind == pickle::Kind::tensor)
                out.push_back({key->text, value, value->parameter, true});
        if (!out.empty()) return out;
    }
    BOREAS_FAIL("{}: the pickle holds a {}{}{}, neither an nn.Module nor a dict of tensors", name(),
                pickle::kind_name(root.kind), root.class_name().empty() ? "" : " ",
                root.class_name());
}

nlohmann::json parse_json_lenient(std::string_view text, const std::string& origin) {
    // Python's json.dumps writes float('nan') as NaN and infinities as Infinity / -Infinity.
    std::string cleaned;
    cleaned.reserve(text.size());
    bool in_string = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (in_string) {
            cleaned += c;
            if (c == '\\' && i + 1 < text.size())
                cleaned += text[++i];
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"') in_string = true;
        bool replaced = false;
        for (std::string_view token : {"-Infinity", "Infinity", "NaN"}) {
            if (text.substr(i, token.size()) == token) {
                cleaned += "null";
                i += token.size() - 1;
                replaced = true;
                break;
            }
        }
        if (!replaced) cleaned += c;
    }
    try {
        return nlohmann::json::parse(cleaned);
    } catch (const nlohmann::json::exception& error) {
        BOREAS_FAIL("{}: not valid JSON: {}", origin, error.what());
    }
}

}  // namespace boreas::io
