#include "boreas/io/pickle.hpp"

#include <charconv>
#include <cstring>
#include <limits>
#include <unordered_map>

#include "boreas/core/error.hpp"

namespace boreas::io::pickle {

const char* kind_name(Kind kind) {
    switch (kind) {
        case Kind::none:
            return "None";
        case Kind::boolean:
            return "bool";
        case Kind::integer:
            return "int";
        case Kind::floating:
            return "float";
        case Kind::string:
            return "str";
        case Kind::bytes:
            return "bytes";
        case Kind::tuple:
            return "tuple";
        case Kind::list:
            return "list";
        case Kind::dict:
            return "dict";
        case Kind::global:
            return "global";
        case Kind::object:
            return "object";
        case Kind::storage:
            return "storage";
        case Kind::tensor:
            return "tensor";
    }
    return "?";
}

const Value* Value::get(std::string_view key) const {
    const Value* found = nullptr;
    for (const auto& [k, v] : entries)
        if (k->kind == Kind::string && k->text == key)
            found = v;  // the last one wins, as in Python
    return found;
}

std::string_view Value::class_name() const {
    if (kind == Kind::object && callable && callable->kind == Kind::global) return callable->text;
    return {};
}

std::optional<std::string_view> Value::as_string() const {
    if (kind == Kind::string) return std::string_view(text);
    return std::nullopt;
}

std::optional<DType> storage_dtype(std::string_view type_name) {
    static constexpr std::pair<std::string_view, DType> kTypes[] = {
        {"torch.FloatStorage", DType::F32}, {"torch.DoubleStorage", DType::F64},
        {"torch.HalfStorage", DType::F16},  {"torch.BFloat16Storage", DType::BF16},
        {"torch.LongStorage", DType::I64},  {"torch.IntStorage", DType::I32},
        {"torch.ShortStorage", DType::I16}, {"torch.CharStorage", DType::I8},
        {"torch.ByteStorage", DType::U8},   {"torch.BoolStorage", DType::BOOL},
    };
    for (const auto& [name, dtype] : kTypes)
        if (name == type_name) return dtype;
    return std::nullopt;
}

namespace {

bool multiply_overflows(std::int64_t a, std::int64_t b, std::int64_t& out) {
    return __builtin_mul_overflow(a, b, &out);
}

}  // namespace

std::int64_t storage_extent(const Value& tensor, const std::string& what) {
    BOREAS_CHECK(tensor.kind == Kind::tensor, "{}: expected a tensor, found {}", what,
                 kind_name(tensor.kind));
    BOREAS_CHECK(tensor.shape.size() == tensor.stride.size(),
                 "{}: tensor has {} sizes but {} strides", what, tensor.shape.size(),
                 tensor.stride.size());
    BOREAS_CHECK(tensor.storage_offset >= 0, "{}: negative storage offset {}", what,
                 tensor.storage_offset);
    std::int64_t last = tensor.storage_offset;
    for (std::size_t d = 0; d < tensor.shape.size(); ++d) {
        BOREAS_CHECK(tensor.shape[d] >= 0 && tensor.stride[d] >= 0,
                     "{}: negative size or stride in dimension {}", what, d);
        if (tensor.shape[d] == 0) return 0;
        std::int64_t reach = 0;
        BOREAS_CHECK(!multiply_overflows(tensor.shape[d] - 1, tensor.stride[d], reach) &&
                         !__builtin_add_overflow(last, reach, &last),
                     "{}: tensor extent overflows", what);
    }
    BOREAS_CHECK(last < std::numeric_limits<std::int64_t>::max(), "{}: tensor extent overflows",
                 what);
    return last + 1;
}

// The parser is a class (a friend of Document) so that it can fill the arena.
class Parser {
  public:
    Parser(std::span<const std::byte> data, const std::string& origin, const Limits& limits)
        : data_(data), origin_(origin), limits_(limits) {}

    Document run() {
        while (true) {
            BOREAS_CHECK(pos_ < data_.size(), "{}: pickle ends at byte {} without STOP", origin_,
                         pos_);
            op_pos_ = pos_;
            op_ = static_cast<unsigned char>(data_[pos_++]);
            if (op_ == '.') break;
            step();
        }
        BOREAS_CHECK(marks_.empty(), "{}: pickle stops with an open MARK", origin_);
        BOREAS_CHECK(stack_.size() == 1, "{}: pickle stops with {} values on the stack, expected 1",
                     origin_, stack_.size());
        document_.root_ = stack_.back();
        return std::move(document_);
    }

  private:
    template <typename... Args>
    [[noreturn]] void bad(fmt::format_string<Args...> format, Args&&... args) {
        BOREAS_FAIL("{}: corrupt pickle at byte {} (opcode 0x{:02x}): {}", origin_, op_pos_, op_,
                    fmt::format(format, std::forward<Args>(args)...));
    }

    // ---- input
    std::span<const std::byte> take(std::uint64_t count) {
        if (count > data_.size() - pos_) bad("needs {} bytes, {} left", count, data_.size() - pos_);
        auto out = data_.subspan(pos_, count);
        pos_ += count;
        return out;
    }
    std::uint64_t unsigned_le(int bytes) {
        const auto raw = take(bytes);
        std::uint64_t value = 0;
        for (int i = bytes - 1; i >= 0; --i)
            value = (value << 8) | static_cast<unsigned char>(raw[i]);
        return value;
    }
    std::string_view line() {
        const auto start = pos_;
        while (pos_ < data_.size() && data_[pos_] != std::byte{'\n'}) ++pos_;
        if (pos_ >= data_.size()) bad("line without newline");
        std::string_view text(reinterpret_cast<const char*>(data_.data()) + start, pos_ - start);
        ++pos_;
        return text;
    }
    std::string text_of(std::span<const std::byte> raw) {
        return std::string(reinterpret_cast<const char*>(raw.data()), raw.size());
    }
    std::int64_t integer_text(std::string_view text) {
        if (!text.empty() && text.back() == 'L') text.remove_suffix(1);  // protocol 0 LONG
        std::int64_t value = 0;
        auto begin = text.data();
        if (!text.empty() && text.front() == '+') ++begin;
        auto [end, error] = std::from_chars(begin, text.data() + text.size(), value);
        if (error != std::errc() || end != text.data() + text.size() || text.empty())
            bad("'{}' is not an integer that fits 64 bits", text);
        return value;
    }

    // ---- values
    Value* make(Kind kind) {
        if (document_.arena_.size() >= limits_.max_values)
            bad("more than {} values", limits_.max_values);
        auto& value = document_.arena_.emplace_back();
        value.kind = kind;
        return &value;
    }
    Value* make_integer(std::int64_t v) {
        auto* value = make(Kind::integer);
        value->integer = v;
        return value;
    }
    Value* make_text(Kind kind, std::string text) {
        auto* value = make(kind);
        value->text = std::move(text);
        return value;
    }

    // ---- stack
    void push(Value* value) { stack_.push_back(value); }
    Value* pop() {
        const std::size_t floor = marks_.empty() ? 0 : marks_.back();
        if (stack_.size() <= floor) bad("stack underflow");
        auto* value = stack_.back();
        stack_.pop_back();
        return value;
    }
    Value* top() {
        const std::size_t floor = marks_.empty() ? 0 : marks_.back();
        if (stack_.size() <= floor) bad("stack underflow");
        return stack_.back();
    }
    std::vector<Value*> pop_to_mark() {
        if (marks_.empty()) bad("no MARK");
        const std::size_t mark = marks_.back();
        marks_.pop_back();
        std::vector<Value*> items(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
        stack_.resize(mark);
        return items;
    }

    Value* tuple(std::vector<Value*> items) {
        auto* value = make(Kind::tuple);
        value->items = std::move(items);
        return value;
    }

    void memo_put(std::uint64_t index) {
        if (index > std::numeric_limits<std::uint32_t>::max())
            bad("memo index {} too large", index);
        memo_[static_cast<std::uint32_t>(index)] = top();
    }
    void memo_get(std::uint64_t index) {
        auto it = index <= std::numeric_limits<std::uint32_t>::max()
                      ? memo_.find(static_cast<std::uint32_t>(index))
                      : memo_.end();
        if (it == memo_.end()) bad("memo index {} was never stored", index);
        push(it->second);
    }

    Value* global(std::string module, std::string name) {
        auto full = module + "." + name;
        if (!seen_globals_.count(full)) {
            seen_globals_[full] = true;
            document_.globals_.push_back(full);
        }
        return make_text(Kind::global, std::move(full));
    }

    // ---- containers
    void set_item(Value* target, Value* key, Value* value) {
        if (target->kind == Kind::dict) {
            if (key->kind == Kind::string)
                for (auto& entry : target->entries)
                    if (entry.first->kind == Kind::string && entry.first->text == key->text) {
                        entry.second = value;
                        return;
                    }
            target->entries.emplace_back(key, value);
        } else if (target->kind == Kind::object) {
            target->entries.emplace_back(key, value);
        } else {
            bad("SETITEM on a {}", kind_name(target->kind));
        }
    }
    void append(Value* target, Value* item) {
        if (target->kind == Kind::list)
            target->items.push_back(item);
        else if (target->kind == Kind::object)
            target->appended.push_back(item);
        else
            bad("APPEND on a {}", kind_name(target->kind));
    }

    // ---- the allow-list: pure data constructors; everything else stays inert
    Value* call(Value* callable, Value* args) {
        if (callable->kind == Kind::global) {
            const std::string& name = callable->text;
            if (name == "collections.OrderedDict") return ordered_dict(args);
            if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor")
                return rebuild_tensor(args);
            if (name == "torch._utils._rebuild_parameter" ||
                name == "torch._utils._rebuild_parameter_with_state")
                return rebuild_parameter(args);
            if (name == "torch._tensor._rebuild_from_type_v2") return rebuild_from_type(args);
        }
        auto* object = make(Kind::object);
        object->callable = callable;
        if (args->kind == Kind::tuple)
            object->items = args->items;
        else
            object->items = {args};
        return object;
    }

    const std::vector<Value*>& arguments(Value* args, std::size_t min, std::size_t max,
                                         const char* what) {
        if (args->kind != Kind::tuple || args->items.size() < min || args->items.size() > max)
            bad("{} takes {} to {} arguments in a tuple", what, min, max);
        return args->items;
    }

    Value* ordered_dict(Value* args) {
        const auto& items = arguments(args, 0, 1, "collections.OrderedDict");
        auto* dict = make(Kind::dict);
        if (!items.empty()) {  // protocol 0/1: OrderedDict([[key, value], ...])
            const Value* pairs = items[0];
            if (pairs->kind != Kind::list && pairs->kind != Kind::tuple)
                bad("collections.OrderedDict expects a list of pairs");
            for (auto* pair : pairs->items) {
                if ((pair->kind != Kind::list && pair->kind != Kind::tuple) ||
                    pair->items.size() != 2)
                    bad("collections.OrderedDict expects pairs");
                set_item(dict, pair->items[0], pair->items[1]);
            }
        }
        return dict;
    }

    std::vector<std::int64_t> integers(const Value* value, const char* what) {
        if (value->kind != Kind::tuple && value->kind != Kind::list)
            bad("{} must be a tuple", what);
        if (value->items.size() > 64) bad("{} has {} entries", what, value->items.size());
        std::vector<std::int64_t> out;
        for (const auto* item : value->items) {
            if (item->kind != Kind::integer) bad("{} must hold integers", what);
            out.push_back(item->integer);
        }
        return out;
    }

    Value* rebuild_tensor(Value* args) {
        // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks,
        // metadata=None); _rebuild_tensor(storage, storage_offset, size, stride).
        const auto& a = arguments(args, 4, 7, "torch._utils._rebuild_tensor_v2");
        if (a[0]->kind != Kind::storage) bad("tensor storage is a {}", kind_name(a[0]->kind));
        if (a[1]->kind != Kind::integer) bad("tensor storage offset is not an integer");
        auto* tensor = make(Kind::tensor);
        tensor->storage_ref = a[0];
        tensor->storage_offset = a[1]->integer;
        tensor->shape = integers(a[2], "tensor size");
        tensor->stride = integers(a[3], "tensor stride");
        if (tensor->shape.size() != tensor->stride.size())
            bad("tensor has {} sizes and {} strides", tensor->shape.size(), tensor->stride.size());
        return tensor;
    }

    Value* rebuild_parameter(Value* args) {
        const auto& a = arguments(args, 3, 4, "torch._utils._rebuild_parameter");
        if (a[0]->kind != Kind::tensor) bad("parameter data is a {}", kind_name(a[0]->kind));
        auto* parameter = make(Kind::tensor);
        *parameter = *a[0];
        parameter->parameter = true;
        return parameter;
    }

    Value* rebuild_from_type(Value* args) {
        // _rebuild_from_type_v2(func, new_type, args, state): a tensor subclass or a tensor with
        // a __dict__; the data is func(*args), the type and state are dropped.
        const auto& a = arguments(args, 4, 4, "torch._tensor._rebuild_from_type_v2");
        if (a[0]->kind != Kind::global || a[2]->kind != Kind::tuple)
            bad("torch._tensor._rebuild_from_type_v2 expects a function and an argument tuple");
        auto* rebuilt = call(a[0], a[2]);
        if (rebuilt->kind != Kind::tensor)
            bad("torch._tensor._rebuild_from_type_v2 of {}", a[0]->text);
        return rebuilt;
    }

    Value* persistent_load(Value* pid) {
        // torch.save: ('storage', storage_type, key, location, numel)
        if (pid->kind != Kind::tuple || pid->items.size() != 5 ||
            pid->items[0]->as_string() != std::optional<std::string_view>("storage"))
            bad("persistent id is not a torch storage record ('storage', type, key, location, "
                "numel)");
        const auto& a = pid->items;
        if (a[1]->kind != Kind::global || a[2]->kind != Kind::string ||
            a[3]->kind != Kind::string || a[4]->kind != Kind::integer || a[4]->integer < 0)
            bad("torch storage record has the wrong types");
        auto* storage = make(Kind::storage);
        storage->type_name = a[1]->text;
        storage->dtype = storage_dtype(a[1]->text);
        storage->text = a[2]->text;
        storage->location = a[3]->text;
        storage->numel = a[4]->integer;
        return storage;
    }

    // ---- the machine
    void step() {
        switch (op_) {
            case 0x80: {  // PROTO
                const auto version = unsigned_le(1);
                if (version > 5) bad("protocol {} is newer than 5", version);
                break;
            }
            case 0x95:
                take(8);
                break;  // FRAME: a hint only
            case '(':
                if (marks_.size() >= limits_.max_depth)
                    bad("MARKs nested deeper than {}", limits_.max_depth);
                marks_.push_back(stack_.size());
                break;
            case '0':
                pop();
                break;  // POP
            case '1':
                pop_to_mark();
                break;  // POP_MARK
            case '2':
                push(top());
                break;  // DUP
            // integers and booleans
            case 'I': {
                const auto text = line();
                if (text == "00" || text == "01") {
                    auto* value = make(Kind::boolean);
                    value->boolean = text == "01";
                    push(value);
                } else {
                    push(make_integer(integer_text(text)));
                }
                break;
            }
            case 'L':
                push(make_integer(integer_text(line())));
                break;
            case 'J':
                push(make_integer(static_cast<std::int32_t>(unsigned_le(4))));
                break;
            case 'K':
                push(make_integer(static_cast<std::int64_t>(unsigned_le(1))));
                break;
            case 'M':
                push(make_integer(static_cast<std::int64_t>(unsigned_le(2))));
                break;
            case 0x8a:
            case 0x8b: {  // LONG1, LONG4: little-endian two's complement
                const auto count = unsigned_le(op_ == 0x8a ? 1 : 4);
                if (count > 8) bad("integer of {} bytes does not fit 64 bits", count);
                const auto raw = take(count);
                std::uint64_t bits = 0;
                for (std::size_t i = count; i-- > 0;)
                    bits = (bits << 8) | static_cast<unsigned char>(raw[i]);
                if (count > 0 && count < 8 && (static_cast<unsigned char>(raw[count - 1]) & 0x80))
                    bits |= ~std::uint64_t{0} << (8 * count);  // sign-extend
                push(make_integer(static_cast<std::int64_t>(bits)));
                break;
            }
            case 0x88:
            case 0x89: {
                auto* value = make(Kind::boolean);
                value->boolean = op_ == 0x88;
                push(value);
                break;
            }
            case 'N':
                push(make(Kind::none));
                break;
            case 'F': {
                const auto text = std::string(line());
                char* end = nullptr;
                const double parsed = std::strtod(text.c_str(), &end);
                if (text.empty() || end != text.c_str() + text.size())
                    bad("'{}' is not a float", text);
                auto* value = make(Kind::floating);
                value->floating = parsed;
                push(value);
                break;
            }
            case 'G': {  // BINFLOAT: big-endian double
                const auto raw = take(8);
                std::uint64_t bits = 0;
                for (auto b : raw) bits = (bits << 8) | static_cast<unsigned char>(b);
                auto* value = make(Kind::floating);
                std::memcpy(&value->floating, &bits, sizeof bits);
                push(value);
                break;
            }
            // strings and bytes
            case 'S': {  // STRING: a quoted repr; the quotes are dropped, escapes kept as written
                auto text = line();
                if (text.size() >= 2 && (text.front() == '\'' || text.front() == '"') &&
                    text.back() == text.front())
                    text = text.substr(1, text.size() - 2);
                else
                    bad("STRING argument is not quoted");
                push(make_text(Kind::string, std::string(text)));
                break;
            }
            case 'V':
                push(make_text(Kind::string, std::string(line())));
                break;  // UNICODE
            case 'T':
                push(make_text(Kind::string, text_of(take(unsigned_le(4)))));
                break;
            case 'U':
                push(make_text(Kind::string, text_of(take(unsigned_le(1)))));
                break;
            case 'X':
                push(make_text(Kind::string, text_of(take(unsigned_le(4)))));
                break;
            case 0x8c:
                push(make_text(Kind::string, text_of(take(unsigned_le(1)))));
                break;
            case 0x8d:
                push(make_text(Kind::string, text_of(take(unsigned_le(8)))));
                break;
            case 'B':
                push(make_text(Kind::bytes, text_of(take(unsigned_le(4)))));
                break;
            case 'C':
                push(make_text(Kind::bytes, text_of(take(unsigned_le(1)))));
                break;
            case 0x8e:
            case 0x96:
                push(make_text(Kind::bytes, text_of(take(unsigned_le(8)))));
                break;
            // tuples
            case ')':
                push(tuple({}));
                break;
            case 't':
                push(tuple(pop_to_mark()));
                break;
            case 0x85:
            case 0x86:
            case 0x87: {
                const std::size_t count = op_ - 0x84;
                std::vector<Value*> items(count);
                for (std::size_t i = count; i-- > 0;) items[i] = pop();
                push(tuple(std::move(items)));
                break;
            }
            // lists
            case ']':
                push(make(Kind::list));
                break;
            case 'l': {
                auto* list = make(Kind::list);
                list->items = pop_to_mark();
                push(list);
                break;
            }
            case 'a': {
                auto* item = pop();
                append(top(), item);
                break;
            }
            case 'e': {
                auto items = pop_to_mark();
                auto* target = top();
                for (auto* item : items) append(target, item);
                break;
            }
            // dicts
            case '}':
                push(make(Kind::dict));
                break;
            case 'd': {
                auto items = pop_to_mark();
                if (items.size() % 2) bad("DICT with an odd number of items");
                auto* dict = make(Kind::dict);
                for (std::size_t i = 0; i < items.size(); i += 2)
                    set_item(dict, items[i], items[i + 1]);
                push(dict);
                break;
            }
            case 's': {
                auto* value = pop();
                auto* key = pop();
                set_item(top(), key, value);
                break;
            }
            case 'u': {
                auto items = pop_to_mark();
                if (items.size() % 2) bad("SETITEMS with an odd number of items");
                auto* target = top();
                for (std::size_t i = 0; i < items.size(); i += 2)
                    set_item(target, items[i], items[i + 1]);
                break;
            }
            // sets: kept as lists (order of insertion); nothing in a checkpoint needs set semantics
            case 0x8f:
                push(make(Kind::list));
                break;    // EMPTY_SET
            case 0x90: {  // ADDITEMS
                auto items = pop_to_mark();
                auto* target = top();
                if (target->kind != Kind::list) bad("ADDITEMS on a {}", kind_name(target->kind));
                for (auto* item : items) target->items.push_back(item);
                break;
            }
            case 0x91: {  // FROZENSET
                auto* list = make(Kind::list);
                list->items = pop_to_mark();
                push(list);
                break;
            }
            // memo
            case 'p':
                memo_put(static_cast<std::uint64_t>(integer_text(line())));
                break;
            case 'q':
                memo_put(unsigned_le(1));
                break;
            case 'r':
                memo_put(unsigned_le(4));
                break;
            case 0x94:
                memo_put(memo_.size());
                break;  // MEMOIZE
            case 'g':
                memo_get(static_cast<std::uint64_t>(integer_text(line())));
                break;
            case 'h':
                memo_get(unsigned_le(1));
                break;
            case 'j':
                memo_get(unsigned_le(4));
                break;
            // names and calls: inert
            case 'c': {  // GLOBAL
                auto module = std::string(line());
                auto name = std::string(line());
                push(global(std::move(module), std::move(name)));
                break;
            }
            case 0x93: {  // STACK_GLOBAL
                auto* name = pop();
                auto* module = pop();
                if (module->kind != Kind::string || name->kind != Kind::string)
                    bad("STACK_GLOBAL needs two strings");
                push(global(module->text, name->text));
                break;
            }
            case 'R': {  // REDUCE
                auto* args = pop();
                auto* callable = pop();
                if (args->kind != Kind::tuple)
                    bad("REDUCE arguments are a {}", kind_name(args->kind));
                push(call(callable, args));
                break;
            }
            case 0x81: {  // NEWOBJ: cls.__new__(cls, *args)
                auto* args = pop();
                auto* cls = pop();
                if (args->kind != Kind::tuple)
                    bad("NEWOBJ arguments are a {}", kind_name(args->kind));
                auto* object = make(Kind::object);
                object->callable = cls;
                object->items = args->items;
                push(object);
                break;
            }
            case 0x92: {  // NEWOBJ_EX: cls, args, kwargs
                auto* kwargs = pop();
                auto* args = pop();
                auto* cls = pop();
                if (args->kind != Kind::tuple || kwargs->kind != Kind::dict)
                    bad("NEWOBJ_EX needs a tuple and a dict");
                auto* object = make(Kind::object);
                object->callable = cls;
                object->items = args->items;
                object->entries = kwargs->entries;
                push(object);
                break;
            }
            case 'i': {  // INST: module, name lines; arguments since MARK
                auto module = std::string(line());
                auto name = std::string(line());
                auto items = pop_to_mark();
                auto* object = make(Kind::object);
                object->callable = global(std::move(module), std::move(name));
                object->items = std::move(items);
                push(object);
                break;
            }
            case 'o': {  // OBJ: MARK cls args...
                auto items = pop_to_mark();
                if (items.empty()) bad("OBJ without a class");
                auto* object = make(Kind::object);
                object->callable = items[0];
                object->items.assign(items.begin() + 1, items.end());
                push(object);
                break;
            }
            case 'b': {  // BUILD: obj.__setstate__(state), here: remember the state
                auto* state = pop();
                auto* target = top();
                if (target->kind == Kind::object) target->state = state;
                // BUILD on a rebuilt tensor or dict carries Python-side attributes only: dropped.
                break;
            }
            case 'P': {  // PERSID
                auto* pid = make_text(Kind::string, std::string(line()));
                push(persistent_load(pid));
                break;
            }
            case 'Q':
                push(persistent_load(pop()));
                break;  // BINPERSID
            case 0x82:
            case 0x83:
            case 0x84:
                bad("extension registry codes (EXT1/2/4) are not supported");
            case 0x97:
            case 0x98:
                bad("out-of-band buffers (protocol 5) are not supported");
            default:
                bad("unknown opcode");
        }
    }

    std::span<const std::byte> data_;
    const std::string& origin_;
    Limits limits_;
    std::size_t pos_ = 0, op_pos_ = 0;
    unsigned op_ = 0;
    std::vector<Value*> stack_;
    std::vector<std::size_t> marks_;
    std::unordered_map<std::uint32_t, Value*> memo_;
    std::unordered_map<std::string, bool> seen_globals_;
    Document document_;
};

Document parse(std::span<const std::byte> data, const std::string& origin, const Limits& limits) {
    return Parser(data, origin, limits).run();
}

}  // namespace boreas::io::pickle
