#pragma once
/// An anemoi-datasets store in its "gridded" layout: `data` as (dates, variables, ensembles,
/// points), `dates`, `latitudes`, `longitudes`, the statistics, and the root attributes
/// (variables, frequency, missing_dates). spec/data.md section 1 describes the format.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "boreas/core/datetime.hpp"
#include "boreas/core/tensor.hpp"
#include "boreas/data/zarr.hpp"

namespace boreas::data {

/// An input naming a dataset: "STORE@DATE" (a store directory or zip that exists, then an ISO
/// date) or a store directory alone.
struct DatasetInput {
    std::filesystem::path store;
    std::optional<DateTime> date;
};
/// The dataset an input string names, or nothing when it names something else (a file).
std::optional<DatasetInput> parse_dataset_input(const std::string& text);

/// Per-variable statistics in dataset order, as anemoi-datasets computed them.
struct DatasetStatistics {
    std::vector<double> mean, stdev, minimum, maximum;
};

class AnemoiDataset {
  public:
    /// Opens and checks the store; throws naming the store and what is wrong.
    explicit AnemoiDataset(const std::filesystem::path& path);
    explicit AnemoiDataset(ZarrGroup group);

    const std::string& location() const { return group_.location(); }
    const ZarrGroup& group() const { return group_; }
    const ZarrArray& data() const { return data_; }

    /// Dataset order (the `variables` attribute, or `name_to_index` of old stores).
    const std::vector<std::string>& variables() const { return variables_; }
    /// Throws naming the variable and the store when it is not in the store.
    std::size_t variable_index(const std::string& name) const;
    const std::vector<DateTime>& dates() const { return dates_; }
    /// The `frequency` attribute, else the step between the first two dates.
    std::int64_t frequency_seconds() const { return frequency_; }
    /// Index of `date`; throws naming the date and the store's range when it is not a date of
    /// the store.
    std::int64_t date_index(const DateTime& date) const;
    /// Whether date `index` is listed in `missing_dates`.
    bool is_missing(std::int64_t index) const { return missing_[static_cast<std::size_t>(index)]; }
    const std::vector<std::int64_t>& missing_indices() const { return missing_indices_; }
    std::int64_t ensembles() const { return data_.metadata().shape[2]; }
    std::int64_t points() const { return data_.metadata().shape[3]; }

    std::vector<double> latitudes() const;
    std::vector<double> longitudes() const;
    DatasetStatistics statistics() const;

    /// Date `index` as float32 [variables, ensembles, points] (anemoi's `ds[index]`); throws
    /// naming the date when it is a missing date.
    /// `stored`, when given, is a buffer for the stored chunk that the caller keeps across reads.
    void read_date(std::int64_t index, std::span<float> out, StoredBytes* stored = nullptr) const;

    /// Dates `indices` as anemoi-training's dataset yields a sample: float32 [dates, ensembles,
    /// points, variables], the variables in the order of `variables` (dataset indices; all of
    /// them in dataset order when empty), transposed from the store's (variables, ensembles,
    /// points) chunks. Missing dates are refused by name.
    Tensor read_sample(std::span<const std::int64_t> indices,
                       std::span<const std::size_t> variables = {}) const;

  private:
    ZarrGroup group_;
    ZarrArray data_;
    std::vector<std::string> variables_;
    std::vector<DateTime> dates_;
    std::int64_t frequency_ = 0;
    std::vector<bool> missing_;
    std::vector<std::int64_t> missing_indices_;
};

}  // namespace boreas::data
