#include "boreas/data/loader.hpp"

#include <algorithm>
#include <climits>
#include <string>

#include "boreas/core/error.hpp"
#include "boreas/core/timer.hpp"
#include "boreas/kernels/kernels.hpp"

namespace boreas::data {

BatchLoader::BatchLoader(const std::filesystem::path& store, LoaderOptions options)
    : dataset_(store), options_(std::move(options)) {
    const auto& where = dataset_.location();
    BOREAS_CHECK(options_.batch >= 1 && options_.threads >= 1 && options_.queue >= 1,
                 "loader of '{}': batch, threads and queue must be >= 1 (got {}, {}, {})", where,
                 options_.batch, options_.threads, options_.queue);
    BOREAS_CHECK(options_.mul.size() == options_.variables.size() &&
                     options_.add.size() == options_.variables.size(),
                 "loader of '{}': {} variables but {} / {} normalisation factors", where,
                 options_.variables.size(), options_.mul.size(), options_.add.size());
    for (const auto& name : options_.variables) columns_.push_back(dataset_.variable_index(name));
    const auto date_text = [&](std::int64_t index) {
        const auto count = static_cast<std::int64_t>(dataset_.dates().size());
        index = std::clamp<std::int64_t>(index, 0, count - 1);
        return count ? dataset_.dates()[static_cast<std::size_t>(index)].iso() : std::string("-");
    };
    offsets_ = window_offsets(options_.sampler);
    for (const auto p : usable_anchors(static_cast<std::int64_t>(dataset_.dates().size()),
                                       dataset_.missing_indices(), options_.sampler))
        if (p + offsets_.front() >= options_.first_date && p + offsets_.back() < options_.end_date)
            anchors_.push_back(p);
    BOREAS_CHECK(!anchors_.empty(),
                 "store '{}' has no window of {} dates ({} input, {} rollout, every {} dates) "
                 "without a missing date among its dates {} to {}",
                 where, offsets_.size(), options_.sampler.multistep_input, options_.sampler.rollout,
                 options_.sampler.time_increment, date_text(options_.first_date),
                 date_text(options_.end_date == INT64_MAX ? INT64_MAX : options_.end_date - 1));
    sampler_ = std::make_unique<WorkerSampler>(anchors_, options_.sampler, 0);
    thread_ = std::thread([this] { run_ahead(); });
}

BatchLoader::~BatchLoader() {
    {
        const std::lock_guard lock(mutex_);
        stop_ = true;
    }
    wanted_.notify_all();
    if (thread_.joinable()) thread_.join();
}

std::vector<std::int64_t> BatchLoader::anchors_of(std::int64_t step) {
    BOREAS_CHECK(step >= 0, "batch {} of a loader", step);
    const auto batch = static_cast<std::size_t>(options_.batch);
    const std::lock_guard lock(stream_mutex_);
    while (stream_.size() < (static_cast<std::size_t>(step) + 1) * batch) {
        const auto epoch = options_.shuffle ? sampler_->next_epoch() : anchors_;
        BOREAS_CHECK(!epoch.empty(), "store '{}': this worker's share of the {} anchors is empty",
                     dataset_.location(), anchors_.size());
        stream_.insert(stream_.end(), epoch.begin(), epoch.end());
    }
    const auto first = stream_.begin() + static_cast<std::ptrdiff_t>(step * batch);
    return {first, first + static_cast<std::ptrdiff_t>(batch)};
}

Tensor BatchLoader::prepare(std::int64_t step) {
    const auto anchors = anchors_of(step);
    const auto dates = static_cast<std::int64_t>(offsets_.size());
    const auto points = dataset_.points();
    const auto width = static_cast<std::int64_t>(columns_.size());
    const auto batch = static_cast<std::int64_t>(anchors.size());
    const std::vector<std::int64_t> shape = {batch, dates, 1, points, width};
    Tensor out;
    {
        const std::lock_guard lock(mutex_);
        for (auto it = spare_.begin(); it != spare_.end(); ++it)
            if (it->shape() == shape) {
                out = std::move(*it);
                spare_.erase(it);
                break;
            }
    }
    if (out.numel() == 0) out = Tensor::uninitialised(shape);
    const std::int64_t per_sample = dates * points * width;
    const auto members = dataset_.ensembles();
    const auto date_values = static_cast<std::size_t>(
        static_cast<std::int64_t>(dataset_.variables().size()) * members * points);
    const int threads = static_cast<int>(std::min<std::int64_t>(options_.threads, batch));
    if (scratch_.size() < static_cast<std::size_t>(threads)) scratch_.resize(threads);
    // One date's chunk decodes into the thread's own buffer (kept across batches: no page
    // faults per batch), then goes straight to its place in the batch: member 0's columns
    // gathered, transposed from (variables, points) to (points, variables) and normalised in
    // one pass (kernels::cpu::fields_to_rows).
    auto read_one = [&](std::int64_t b, int thread) {
        auto& scratch = scratch_[static_cast<std::size_t>(thread)];
        auto& chunk = scratch.chunk;
        chunk.resize(date_values);
        for (std::int64_t t = 0; t < dates; ++t) {
            dataset_.read_date(
                anchors[static_cast<std::size_t>(b)] + offsets_[static_cast<std::size_t>(t)],
                chunk);
            kernels::FieldsToRowsParams params;
            params.in = chunk.data();
            params.in_stride = members * points;
            params.columns = columns_.data();
            params.mul = options_.mul.data();
            params.add = options_.add.data();
            params.out = out.data() + b * per_sample + t * points * width;
            params.points = points;
            params.width = width;
            kernels::cpu::fields_to_rows(params);
        }
    };
    if (threads <= 1) {
        for (std::int64_t b = 0; b < batch; ++b) read_one(b, 0);
    } else {
        std::vector<std::thread> pool;
        std::vector<std::exception_ptr> errors(static_cast<std::size_t>(threads));
        for (int k = 0; k < threads; ++k)
            pool.emplace_back([&, k] {
                try {
                    for (std::int64_t b = k; b < batch; b += threads) read_one(b, k);
                } catch (...) {
                    errors[static_cast<std::size_t>(k)] = std::current_exception();
                }
            });
        for (auto& t : pool) t.join();
        for (const auto& e : errors)
            if (e) std::rethrow_exception(e);
    }
    return out;
}

void BatchLoader::give_back(Tensor batch) {
    const std::lock_guard lock(mutex_);
    // As many as can be in use at once: the queue, the one being prepared, the caller's.
    if (static_cast<int>(spare_.size()) < options_.queue + 2) spare_.push_back(std::move(batch));
}

void BatchLoader::run_ahead() {
    while (true) {
        std::int64_t step = 0;
        {
            std::unique_lock lock(mutex_);
            wanted_.wait(lock, [&] {
                return stop_ || (!failure_ && static_cast<int>(prepared_.size()) < options_.queue);
            });
            if (stop_) return;
            step = next_++;
            in_flight_ = step;
        }
        Stopwatch clock;
        try {
            Tensor t = prepare(step);
            const std::lock_guard lock(mutex_);
            stats_.read_seconds += clock.seconds();
            stats_.batches += 1;
            stats_.samples += t.dim(0);
            stats_.chunks += t.dim(0) * t.dim(1);
            prepared_.emplace(step, std::move(t));
            in_flight_ = -1;
        } catch (...) {
            const std::lock_guard lock(mutex_);
            failure_ = std::current_exception();
            in_flight_ = -1;
        }
        ready_.notify_all();
    }
}

Tensor BatchLoader::batch(std::int64_t step) {
    Stopwatch clock;
    std::unique_lock lock(mutex_);
    // Batches of earlier steps are no longer wanted; a step beyond those under way restarts
    // the read-ahead there (a resumed run).
    prepared_.erase(prepared_.begin(), prepared_.lower_bound(step));
    if (!prepared_.contains(step) && step != in_flight_) {
        next_ = step;
        prepared_.clear();
    }
    wanted_.notify_all();
    ready_.wait(lock, [&] { return failure_ || prepared_.contains(step); });
    if (failure_ && !prepared_.contains(step)) std::rethrow_exception(failure_);
    Tensor out = std::move(prepared_.at(step));
    prepared_.erase(step);
    stats_.wait_seconds += clock.seconds();
    lock.unlock();
    wanted_.notify_all();
    return out;
}

LoaderStats BatchLoader::stats() const {
    const std::lock_guard lock(mutex_);
    return stats_;
}

}  // namespace boreas::data
