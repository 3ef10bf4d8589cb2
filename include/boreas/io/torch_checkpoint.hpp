#pragma once
/// PyTorch checkpoints (`torch.save`, the zip format) read without Python and without executing
/// anything: the zip through ZipArchive, `<archive>/data.pkl` through the inert pickle reader, and
/// each tensor's bytes from its storage record `<archive>/data/<key>` on demand. anemoi adds
/// `<archive>/anemoi-metadata/anemoi.json` (or the legacy `ai-models.json`) and its supporting
/// arrays (raw numpy bytes) to the same zip; they are read here too.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "boreas/io/pickle.hpp"
#include "boreas/io/zip_archive.hpp"

namespace boreas::io {

/// A tensor of a module tree or state dict under its dotted state-dict name.
struct NamedTensor {
    std::string name;
    const pickle::Value* tensor;
    bool parameter;   ///< in `_parameters` (else a buffer or a state-dict entry)
    bool persistent;  ///< false: a buffer registered with persistent=False (not in state_dict())
};

class TorchCheckpoint {
  public:
    /// Opens the zip, finds its archive folder and parses data.pkl; throws naming the file and
    /// member on anything malformed.
    explicit TorchCheckpoint(const std::filesystem::path& path);
    /// The same from bytes in memory (fuzzing, tests); `name` stands for the file in errors.
    TorchCheckpoint(std::span<const std::byte> bytes, std::string name);

    const std::string& name() const { return zip_->name(); }
    /// The single top-level folder all members live in ("inference-last", "archive", ...).
    const std::string& archive() const { return archive_; }
    const ZipArchive& zip() const { return *zip_; }
    const pickle::Document& pickle() const { return pickle_; }
    const pickle::Value& root() const { return pickle_.root(); }

    /// anemoi-metadata/anemoi.json (or ai-models.json), parsed leniently (NaN and Infinity as
    /// Python writes them become null); nullopt if the checkpoint has none.
    std::optional<nlohmann::json> anemoi_metadata() const;
    /// A supporting array written by anemoi-utils (raw little-endian numpy bytes), converted to
    /// double; `path` is the member path from the metadata's supporting_arrays_paths.
    std::vector<double> supporting_array(const std::string& path, const std::string& dtype,
                                         std::int64_t count) const;

    /// The tensor's elements in C order, converted to T (float, double or int64). `what` names
    /// the tensor in errors (its state-dict name). Checks the storage record exists, has the
    /// size its dtype and numel say, and covers the tensor's strided extent.
    template <typename T>
    std::vector<T> read(const pickle::Value& tensor, const std::string& what) const;

    /// Every tensor under `root` by its state-dict name: an nn.Module (inert object whose state
    /// holds `_parameters`, `_buffers`, `_modules`) is walked like Module.state_dict() but also
    /// yields its non-persistent buffers (flagged); a dict of tensors (a saved state_dict) gives
    /// its entries; a dict holding "state_dict" (Lightning) gives that. Throws naming the
    /// checkpoint if none of these is found. Shared tensors appear under each name.
    std::vector<NamedTensor> state_dict(const pickle::Value& root) const;

  private:
    void open();

    std::unique_ptr<ZipArchive> zip_;
    std::string archive_;
    pickle::Document pickle_;
};

/// Number of elements of a tensor value (product of its shape).
std::int64_t numel(const pickle::Value& tensor);

/// JSON as Python's json module writes it: bare NaN, Infinity and -Infinity (outside strings)
/// are read as null. Throws naming `origin` on malformed text.
nlohmann::json parse_json_lenient(std::string_view text, const std::string& origin);

}  // namespace boreas::io
