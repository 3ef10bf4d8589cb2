#pragma once
/// A pickle reader that executes nothing. Python's pickle is a small stack machine whose GLOBAL,
/// REDUCE, NEWOBJ, INST, OBJ and BUILD opcodes import and call arbitrary code; here they build
/// inert values instead:
///   - GLOBAL / STACK_GLOBAL give a `global` value: a module and a name, nothing imported;
///   - REDUCE, NEWOBJ, NEWOBJ_EX, INST and OBJ give an `object` value that holds its callable and
///     arguments; BUILD stores the state in it; SETITEMS / APPENDS onto it are kept as its items;
///   - only an allow-list of pure data constructors is resolved: collections.OrderedDict (a
///     dict), torch's tensor and parameter rebuild functions (a `tensor` value viewing a storage)
///     and the storage persistent ids of torch.save (a `storage` value: dtype, key, numel).
/// Every other callable, os.system included, is never looked up, let alone called: it stays a
/// name. A torch.nn.Module comes out as an object whose state is its __dict__ (`_parameters`,
/// `_buffers`, `_modules`, ...), which is all a reader of weights needs.
///
/// Values live in an arena owned by the Document; references between them are plain pointers, so
/// the cycles a pickle can build (an object that contains itself through the memo) are harmless.
/// Every read is bounds-checked; malformed input throws boreas::Error naming the origin, the
/// opcode and its byte offset.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "boreas/io/safetensors.hpp"  // DType

namespace boreas::io::pickle {

enum class Kind : std::uint8_t {
    none,
    boolean,
    integer,
    floating,
    string,
    bytes,
    tuple,
    list,
    dict,
    global,   ///< module + name of a class or function, never imported
    object,   ///< an inert call or instance: callable, arguments, state, items
    storage,  ///< a torch storage persistent id: ('storage', type, key, location, numel)
    tensor,   ///< a torch tensor (or parameter): a strided view of a storage
};

const char* kind_name(Kind kind);

struct Value {
    Kind kind = Kind::none;
    bool boolean = false;
    std::int64_t integer = 0;
    double floating = 0;
    /// string and bytes: the content. global: "module.name". storage: the record key.
    std::string text;
    /// tuple, list: the elements. object: the arguments of its call. Items APPENDed to an
    /// object land in `appended`.
    std::vector<Value*> items;
    std::vector<Value*> appended;
    /// dict: key/value pairs in insertion order (later SETITEMs of an equal string key replace).
    /// object: what SETITEMS added to it.
    std::vector<std::pair<Value*, Value*>> entries;
    Value* callable = nullptr;  ///< object: the global (or other value) that was called
    Value* state = nullptr;     ///< object: the BUILD state, if any

    // storage
    std::optional<DType>
        dtype;               ///< unset: a storage type Boreas does not read (named in type_name)
    std::string type_name;   ///< storage: e.g. "torch.FloatStorage"
    std::string location;    ///< storage: e.g. "cpu", "cuda:0"
    std::int64_t numel = 0;  ///< storage: elements

    // tensor
    const Value* storage_ref = nullptr;
    std::int64_t storage_offset = 0;  ///< elements
    std::vector<std::int64_t> shape, stride;
    bool parameter = false;  ///< rebuilt through _rebuild_parameter (an nn.Parameter)

    bool is(Kind k) const { return kind == k; }
    /// dict (or object entries): the value of string key `key`, or nullptr.
    const Value* get(std::string_view key) const;
    /// object: "module.name" of its callable when that is a global, else "".
    std::string_view class_name() const;
    /// string value or nullopt.
    std::optional<std::string_view> as_string() const;
};

struct Limits {
    std::size_t max_values = 50'000'000;  ///< arena size; a bound on memory for hostile input
    std::size_t max_depth = 10'000;       ///< nesting of MARKs
};

class Document {
  public:
    Document() = default;
    Document(Document&&) = default;
    Document& operator=(Document&&) = default;
    Document(const Document&) = delete;
    Document& operator=(const Document&) = delete;

    const Value& root() const { return *root_; }
    std::size_t value_count() const { return arena_.size(); }
    /// Every distinct global the pickle named, "module.name", in order of first appearance.
    const std::vector<std::string>& globals() const { return globals_; }

  private:
    friend class Parser;
    std::deque<Value> arena_;
    Value* root_ = nullptr;
    std::vector<std::string> globals_;
};

/// Parses a whole pickle (protocols 0 to 5 without out-of-band buffers and extension codes).
/// `origin` names the data in errors ("model.ckpt: archive/data.pkl").
Document parse(std::span<const std::byte> data, const std::string& origin,
               const Limits& limits = {});

/// Element size and dtype of a torch storage type name ("torch.FloatStorage" ...), or nullopt.
std::optional<DType> storage_dtype(std::string_view type_name);

/// Number of storage elements a tensor spans (offset + 1 + sum (shape-1)*stride; 0 if empty).
/// Throws on negative extents or strides and on overflow.
std::int64_t storage_extent(const Value& tensor, const std::string& what);

}  // namespace boreas::io::pickle
