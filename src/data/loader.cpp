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
    BOREAS_CHECK(options_.share_count == 0 ||
                     (options_.share_first >= 0 && options_.share_count > 0 &&
                      options_.share_first + options_.share_count <= options_.batch),
                 "loader of '{}': share [{}, {}) is not inside a batch of {}", where,
                 options_.share_first, options_.share_first + options_.share_count, options_.batch);
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
    for (int k = 0; k < options_.threads; ++k) workers_.emplace_back([this] { work(); });
}

BatchLoader::~BatchLoader() {
    {
        const std::lock_guard lock(mutex_);
        stop_ = true;
    }
    wanted_.notify_all();
    for (auto& worker : workers_) worker.join();
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
    auto first = stream_.begin() + static_cast<std::ptrdiff_t>(step * batch);
    auto last = first + static_cast<std::ptrdiff_t>(batch);
    if (options_.share_count > 0) {
        first += options_.share_first;
        last = first + options_.share_count;
    }
    return {first, last};
}

void BatchLoader::read_sample(std::int64_t anchor, float* out, Scratch& scratch) const {
    const auto dates = static_cast<std::int64_t>(offsets_.size());
    const auto points = dataset_.points();
    const auto width = static_cast<std::int64_t>(columns_.size());
    const auto members = dataset_.ensembles();
    // One date's chunk decodes into the worker's own buffer (kept: no page faults per sample),
    // then goes straight to its place in the batch: member 0's columns gathered, transposed
    // from (variables, points) to (points, variables) and normalised in one pass.
    scratch.chunk.resize(static_cast<std::size_t>(
        static_cast<std::int64_t>(dataset_.variables().size()) * members * points));
    for (std::int64_t t = 0; t < dates; ++t) {
        dataset_.read_date(anchor + offsets_[static_cast<std::size_t>(t)], scratch.chunk,
                           &scratch.stored);
        kernels::FieldsToRowsParams params;
        params.in = scratch.chunk.data();
        params.in_stride = members * points;
        params.columns = columns_.data();
        params.mul = options_.mul.data();
        params.add = options_.add.data();
        params.out = out + t * points * width;
        params.points = points;
        params.width = width;
        kernels::cpu::fields_to_rows(params);
    }
}

void BatchLoader::open_batch() {
    const std::int64_t step = next_++;
    auto pending = std::make_shared<Pending>();
    pending->step = step;
    pending->anchors = anchors_of(step);
    const std::vector<std::int64_t> shape = {static_cast<std::int64_t>(pending->anchors.size()),
                                             static_cast<std::int64_t>(offsets_.size()), 1,
                                             dataset_.points(),
                                             static_cast<std::int64_t>(columns_.size())};
    for (auto it = spare_.begin(); it != spare_.end(); ++it)
        if (it->shape() == shape) {
            pending->tensor = std::move(*it);
            spare_.erase(it);
            break;
        }
    if (pending->tensor.numel() == 0) pending->tensor = Tensor::uninitialised(shape);
    pending->unfinished = static_cast<int>(pending->anchors.size());
    pending_.push_back(std::move(pending));
}

void BatchLoader::work() {
    Scratch scratch;
    std::unique_lock lock(mutex_);
    while (true) {
        // The oldest batch with a sample nobody has started, else a new batch while fewer
        // than `queue` are prepared or under way.
        std::shared_ptr<Pending> job;
        wanted_.wait(lock, [&] {
            if (stop_) return true;
            if (failure_) return false;
            for (const auto& p : pending_)
                if (p->started < static_cast<int>(p->anchors.size())) return true;
            return static_cast<int>(prepared_.size() + pending_.size()) < options_.queue;
        });
        if (stop_) return;
        for (const auto& p : pending_)
            if (p->started < static_cast<int>(p->anchors.size())) {
                job = p;
                break;
            }
        if (!job) {
            try {
                open_batch();
            } catch (...) {
                failure_ = std::current_exception();
                ready_.notify_all();
                continue;
            }
            job = pending_.back();
        }
        const int b = job->started++;
        const auto per_sample =
            job->tensor.numel() / static_cast<std::int64_t>(job->anchors.size());
        float* out = job->tensor.data() + b * per_sample;
        const auto anchor = job->anchors[static_cast<std::size_t>(b)];
        lock.unlock();
        Stopwatch clock;
        std::exception_ptr error;
        try {
            read_sample(anchor, out, scratch);
        } catch (...) {
            error = std::current_exception();
        }
        lock.lock();
        stats_.read_seconds += clock.seconds();
        if (error && !failure_ && !job->abandoned) failure_ = error;
        if (--job->unfinished == 0 && !job->abandoned && !error) {
            stats_.batches += 1;
            stats_.samples += static_cast<std::int64_t>(job->anchors.size());
            stats_.chunks += static_cast<std::int64_t>(job->anchors.size() * offsets_.size());
            prepared_.emplace(job->step, std::move(job->tensor));
            pending_.erase(std::find(pending_.begin(), pending_.end(), job));
        } else if (job->unfinished == 0) {
            pending_.erase(std::remove(pending_.begin(), pending_.end(), job), pending_.end());
        }
        ready_.notify_all();
        wanted_.notify_all();
    }
}

void BatchLoader::give_back(Tensor batch) {
    const std::lock_guard lock(mutex_);
    // As many as can be in use at once: the queue and the caller's.
    if (static_cast<int>(spare_.size()) < options_.queue + 1) spare_.push_back(std::move(batch));
    wanted_.notify_all();
}

Tensor BatchLoader::batch(std::int64_t step) {
    Stopwatch clock;
    std::unique_lock lock(mutex_);
    // Batches of earlier steps are no longer wanted; a step that is neither prepared nor under
    // way restarts the read-ahead there (a resumed run): batches under way are abandoned.
    prepared_.erase(prepared_.begin(), prepared_.lower_bound(step));
    // An abandoned batch of this step (a jump away and back while its samples were still being
    // read) is not under way: it will never be prepared, and waiting on it hung the caller.
    const bool under_way = std::any_of(pending_.begin(), pending_.end(), [&](const auto& p) {
        return p->step == step && !p->abandoned;
    });
    if (!prepared_.contains(step) && !under_way) {
        prepared_.clear();
        for (auto& p : pending_) {  // nobody starts their other samples
            p->abandoned = true;
            p->unfinished -= static_cast<int>(p->anchors.size()) - p->started;
            p->started = static_cast<int>(p->anchors.size());
        }
        // Abandoned batches leave once their samples in progress end (the workers hold them).
        pending_.erase(std::remove_if(pending_.begin(), pending_.end(),
                                      [](const auto& p) { return p->unfinished == 0; }),
                       pending_.end());
        next_ = step;
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
