#include "boreas/data/sampler.hpp"

#include <algorithm>
#include <unordered_set>

#include "boreas/core/error.hpp"

namespace boreas::data {
namespace {

// numpy/random/bit_generator.pyx: SeedSequence's hash constants.
constexpr std::uint32_t kInitA = 0x43b0d7e5, kMultA = 0x931e8875, kInitB = 0x8b51f9dd,
                        kMultB = 0x58f38ded, kMixL = 0xca01f9dd, kMixR = 0x4973f715;
constexpr std::size_t kPoolSize = 4;

void append_words(std::vector<std::uint32_t>& out, std::uint64_t value) {
    if (value == 0) out.push_back(0);
    while (value > 0) {
        out.push_back(static_cast<std::uint32_t>(value));
        value >>= 32;
    }
}

/// SeedSequence's entropy pool from entropy and spawn key.
std::vector<std::uint32_t> seed_pool(std::uint64_t entropy,
                                     std::span<const std::uint64_t> spawn_key) {
    std::vector<std::uint32_t> words;
    append_words(words, entropy);
    if (!spawn_key.empty() && words.size() < kPoolSize) words.resize(kPoolSize, 0);
    for (const auto k : spawn_key) append_words(words, k);
    std::uint32_t hash_constant = kInitA;
    auto hashmix = [&](std::uint32_t v) {
        v ^= hash_constant;
        hash_constant *= kMultA;
        v *= hash_constant;
        return v ^ (v >> 16);
    };
    auto mix = [](std::uint32_t x, std::uint32_t y) {
        const std::uint32_t r = kMixL * x - kMixR * y;
        return r ^ (r >> 16);
    };
    std::vector<std::uint32_t> pool(kPoolSize);
    for (std::size_t i = 0; i < kPoolSize; ++i) pool[i] = hashmix(i < words.size() ? words[i] : 0);
    for (std::size_t src = 0; src < kPoolSize; ++src)
        for (std::size_t dst = 0; dst < kPoolSize; ++dst)
            if (src != dst) pool[dst] = mix(pool[dst], hashmix(pool[src]));
    for (std::size_t src = kPoolSize; src < words.size(); ++src)
        for (std::size_t dst = 0; dst < kPoolSize; ++dst)
            pool[dst] = mix(pool[dst], hashmix(words[src]));
    return pool;
}

std::vector<std::uint32_t> generate_state(const std::vector<std::uint32_t>& pool,
                                          std::size_t words) {
    std::uint32_t hash_constant = kInitB;
    std::vector<std::uint32_t> out(words);
    for (std::size_t i = 0; i < words; ++i) {
        std::uint32_t v = pool[i % pool.size()] ^ hash_constant;
        hash_constant *= kMultB;
        v *= hash_constant;
        out[i] = v ^ (v >> 16);
    }
    return out;
}

constexpr Uint128 kPcgMultiplier =
    (static_cast<Uint128>(2549297995355413924ull) << 64) | 4865540595714422341ull;

}  // namespace

std::uint32_t derive_seed(std::uint64_t entropy, std::span<const std::uint64_t> spawn_key) {
    return generate_state(seed_pool(entropy, spawn_key), 1)[0];
}

NumpyGenerator::NumpyGenerator(std::uint64_t seed) {
    const auto w = generate_state(seed_pool(seed, {}), 8);
    auto word64 = [&](int k) {
        return static_cast<std::uint64_t>(w[2 * k]) | static_cast<std::uint64_t>(w[2 * k + 1])
                                                          << 32;
    };
    const auto initial_state = static_cast<Uint128>(word64(0)) << 64 | word64(1);
    const auto sequence = static_cast<Uint128>(word64(2)) << 64 | word64(3);
    state_ = 0;
    increment_ = sequence << 1 | 1;
    step();
    state_ += initial_state;
    step();
}

void NumpyGenerator::step() {
    state_ = state_ * kPcgMultiplier + increment_;
}

std::uint64_t NumpyGenerator::next64() {
    step();
    const auto x = static_cast<std::uint64_t>(state_ >> 64) ^ static_cast<std::uint64_t>(state_);
    const auto rotation = static_cast<unsigned>(state_ >> 122);
    return (x >> rotation) | (x << ((64 - rotation) & 63));
}

std::uint32_t NumpyGenerator::next32() {
    if (has_half_) {
        has_half_ = false;
        return half_;
    }
    const auto v = next64();
    has_half_ = true;
    half_ = static_cast<std::uint32_t>(v >> 32);
    return static_cast<std::uint32_t>(v);
}

double NumpyGenerator::random() {
    return static_cast<double>(next64() >> 11) * (1.0 / 9007199254740992.0);
}

std::uint64_t NumpyGenerator::bounded(std::uint64_t max) {
    if (max == 0) return 0;
    if (max <= 0xffffffffull) {
        if (max == 0xffffffffull) return next32();
        const std::uint64_t range = max + 1;
        std::uint64_t m = static_cast<std::uint64_t>(next32()) * range;
        if ((m & 0xffffffffull) < range) {
            const std::uint64_t threshold = (0xffffffffull - max) % range;
            while ((m & 0xffffffffull) < threshold)
                m = static_cast<std::uint64_t>(next32()) * range;
        }
        return m >> 32;
    }
    const Uint128 range = static_cast<Uint128>(max) + 1;
    Uint128 m = next64() * range;
    if (static_cast<std::uint64_t>(m) < range) {
        const std::uint64_t threshold = static_cast<std::uint64_t>((~0ull - max) % range);
        while (static_cast<std::uint64_t>(m) < threshold) m = next64() * range;
    }
    return static_cast<std::uint64_t>(m >> 64);
}

std::vector<std::int64_t> NumpyGenerator::permutation(std::int64_t n) {
    BOREAS_CHECK(n >= 0, "a permutation of {} elements", n);
    std::vector<std::int64_t> index(static_cast<std::size_t>(n));
    auto shuffle_from = [&](std::int64_t first) {  // numpy's _shuffle_int: Fisher-Yates down
        for (std::int64_t i = n - 1; i >= first; --i)
            std::swap(index[static_cast<std::size_t>(i)],
                      index[bounded(static_cast<std::uint64_t>(i))]);
    };
    if (n > 10000) {  // tail shuffle of all n elements
        for (std::int64_t i = 0; i < n; ++i) index[static_cast<std::size_t>(i)] = i;
        shuffle_from(1);
        return index;
    }
    std::unordered_set<std::int64_t> seen;  // Floyd's algorithm, then a shuffle
    for (std::int64_t j = 0; j < n; ++j) {
        auto value = static_cast<std::int64_t>(bounded(static_cast<std::uint64_t>(j)));
        if (seen.contains(value)) value = j;
        seen.insert(value);
        index[static_cast<std::size_t>(j)] = value;
    }
    shuffle_from(1);
    return index;
}

std::vector<std::int64_t> window_offsets(const SamplerOptions& options) {
    BOREAS_CHECK(
        options.multistep_input >= 1 && options.rollout >= 1 && options.time_increment >= 1,
        "sampling needs multistep_input, rollout and time increment >= 1 (got {}, {}, {})",
        options.multistep_input, options.rollout, options.time_increment);
    std::vector<std::int64_t> offsets;
    for (int k = -(options.multistep_input - 1); k <= options.rollout; ++k)
        offsets.push_back(static_cast<std::int64_t>(k) * options.time_increment);
    return offsets;
}

std::vector<std::int64_t> usable_anchors(std::int64_t dates, std::span<const std::int64_t> missing,
                                         const SamplerOptions& options) {
    const auto offsets = window_offsets(options);
    const std::unordered_set<std::int64_t> gone(missing.begin(), missing.end());
    std::vector<std::int64_t> anchors;
    for (std::int64_t p = -offsets.front(); p + offsets.back() < dates; ++p) {
        bool whole = true;
        for (const auto o : offsets) whole = whole && !gone.contains(p + o);
        if (whole) anchors.push_back(p);
    }
    return anchors;
}

WorkerSampler::WorkerSampler(std::vector<std::int64_t> anchors, const SamplerOptions& options,
                             int first_epoch)
    : anchors_(std::move(anchors)),
      seed_(derive_seed(options.base_seed,
                        std::vector<std::uint64_t>{2, static_cast<std::uint64_t>(first_epoch)})),
      generator_(seed_) {
    BOREAS_CHECK(options.replicas >= 1 && options.replica >= 0 &&
                     options.replica < options.replicas && options.workers >= 1 &&
                     options.worker >= 0 && options.worker < options.workers && first_epoch >= 0,
                 "replica {} of {}, worker {} of {}, epoch {}: out of range", options.replica,
                 options.replicas, options.worker, options.workers, first_epoch);
    const auto n = static_cast<std::int64_t>(anchors_.size());
    const std::int64_t share = n / options.replicas;  // the remainder is dropped, as anemoi does
    std::int64_t start = options.replica * share;
    const std::int64_t base = share / options.workers, extra = share % options.workers;
    for (int w = 0; w < options.worker; ++w) start += base + (w < extra ? 1 : 0);
    begin_ = start;
    end_ = start + base + (options.worker < extra ? 1 : 0);
    (void)generator_.random();  // anemoi's "sanity" draw
}

std::vector<std::int64_t> WorkerSampler::next_epoch() {
    const auto order = generator_.permutation(static_cast<std::int64_t>(anchors_.size()));
    std::vector<std::int64_t> out;
    for (std::int64_t i = begin_; i < end_; ++i)
        out.push_back(anchors_[static_cast<std::size_t>(order[static_cast<std::size_t>(i)])]);
    return out;
}

std::vector<std::vector<std::int64_t>> round_robin_batches(
    const std::vector<std::vector<std::int64_t>>& streams, int batch) {
    BOREAS_CHECK(batch >= 1, "batch size {}", batch);
    std::vector<std::vector<std::int64_t>> batches;
    std::vector<std::size_t> at(streams.size(), 0);
    bool any = true;
    while (any) {
        any = false;
        for (std::size_t w = 0; w < streams.size(); ++w) {
            if (at[w] >= streams[w].size()) continue;
            const auto end = std::min(streams[w].size(), at[w] + static_cast<std::size_t>(batch));
            batches.emplace_back(streams[w].begin() + static_cast<std::ptrdiff_t>(at[w]),
                                 streams[w].begin() + static_cast<std::ptrdiff_t>(end));
            at[w] = end;
            any = true;
        }
    }
    return batches;
}

}  // namespace boreas::data
