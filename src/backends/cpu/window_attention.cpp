// Sliding-window self-attention, flash-style (see kernels.hpp). Work is split over (batch
// element, block of queries, group of heads); each task walks, head by head, the key blocks its
// window touches, computing one query-block x key-block tile of scores on the register tile
// (small_gemm; OpenBLAS for head sizes that are not a multiple of 16) and folding it into
// running row maxima, sums and outputs.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "bf16_tile.hpp"
#include "blas_threads.hpp"
#include "boreas/core/error.hpp"
#include "boreas/kernels/kernels.hpp"
#include "dense_bf16_rounding.hpp"
#include "simd.hpp"
#include "small_gemm.hpp"

namespace boreas::kernels::cpu::BOREAS_ISA_NS {
namespace {

constexpr std::int64_t kQueryBlock = 48;  // a multiple of small_gemm's 6-row blocks
// Up to 512 keys per tile of scores: the small shape's whole reach (2 x 128 + 48) is one tile,
// so its softmax needs no rescaling pass (1.03-1.04x on all three shapes against 256).
constexpr std::int64_t kKeyBlock = 512;
// The packed keys and values one group of heads reaches from a query block (see the tasks).
constexpr std::int64_t kGroupBytes = std::int64_t{1} << 20;

/// K^T and V of one (batch element, head), packed for small_gemm over the whole sequence once
/// per call: every key block is then read by all the query blocks whose window covers it,
/// without packing it again. `seq_padded` is seq rounded up to whole panels (zeros past seq).
struct PackedHead {
    std::vector<float> keys_t;  // [seq_padded / 16][d][16]: panel t = keys 16t ... 16t+15
    std::vector<float> values;  // [d / 16][seq_padded][16]: panel t = channels 16t ... 16t+15
    // The bf16 forward on AVX512-BF16 (bf16_tile.hpp's panels; seq padded to 32 keys):
    std::vector<std::uint16_t> keys_bf16;    // [seq/32 panels][d/2 pairs][32 keys][2]
    std::vector<std::uint16_t> values_bf16;  // [d/32 panels][seq/2 pairs][32 channels][2]
};

#ifdef BOREAS_ISA_AVX512
/// Keys [key0, key0 + 32) of every head of one batch element into the bf16 panels.
void pack_key_panel_bf16(const float* k, const float* v, std::int64_t stride, std::int64_t seq,
                         std::int64_t seq_padded, std::int64_t heads, std::int64_t d,
                         std::int64_t key0, PackedHead* packed) {
    const std::int64_t seq_pairs = seq_padded / 2;
    for (std::int64_t key = key0; key < key0 + bf16::kPanelCols; ++key) {
        const bool padding = key >= seq;
        const std::int64_t c = key - key0;
        for (std::int64_t h = 0; h < heads; ++h) {
            std::uint16_t* keys = packed[h].keys_bf16.data() + key0 * d;
            const float* k_row = k + key * stride + h * d;
            for (std::int64_t x = 0; x < d; ++x)
                keys[(x / 2) * 64 + 2 * c + x % 2] = padding ? 0 : bf16_bits(k_row[x]);
            const float* v_row = v + key * stride + h * d;
            for (std::int64_t t = 0; t < d / bf16::kPanelCols; ++t) {
                std::uint16_t* values =
                    packed[h].values_bf16.data() + (t * seq_pairs + key / 2) * 64 + key % 2;
                for (std::int64_t ch = 0; ch < bf16::kPanelCols; ++ch)
                    values[2 * ch] = padding ? 0 : bf16_bits(v_row[t * bf16::kPanelCols + ch]);
            }
        }
    }
}
#endif

/// Keys [key0, key0 + 16) of every head of one batch element (k and v pointing at its first
/// row). A key's heads are side by side in its row, so going row by row and then head by head
/// reads k and v in order: a pass per head read 128-256 bytes of each row, 2-12 KiB apart, and
/// waited on memory for most of its stores.
void pack_key_panel(const float* k, const float* v, std::int64_t stride, std::int64_t seq,
                    std::int64_t seq_padded, std::int64_t heads, std::int64_t d, std::int64_t key0,
                    PackedHead* packed) {
    for (std::int64_t key = key0; key < key0 + kPanel; ++key) {
        const bool padding = key >= seq;
        for (std::int64_t h = 0; h < heads; ++h) {
            float* panel = packed[h].keys_t.data() + key0 * d + key % kPanel;
            const float* k_row = k + key * stride + h * d;
            for (std::int64_t x = 0; x < d; ++x) panel[x * kPanel] = padding ? 0.0f : k_row[x];
            for (std::int64_t t = 0; t < d / kPanel; ++t) {
                float* to = packed[h].values.data() + t * seq_padded * kPanel + key * kPanel;
                if (padding)
                    simd::zero(to, kPanel);
                else
                    simd::copy(to, v + key * stride + h * d + t * kPanel, kPanel);
            }
        }
    }
}

}  // namespace

void window_attention(const WindowAttentionParams& p) {
    single_threaded_blas();
    const auto heads = p.heads, d = p.head_dim, seq = p.seq, w = p.window;
    BOREAS_CHECK(p.q && p.k && p.v && p.out && d > 0 && seq >= 0 && w >= 0,
                 "window_attention: invalid parameters");
    const auto stride = p.stride ? p.stride : heads * d;
    const auto out_stride = p.out_stride ? p.out_stride : stride;
    const float scale = 1.0f / std::sqrt(static_cast<float>(d));
    const std::int64_t query_blocks = (seq + kQueryBlock - 1) / kQueryBlock;
    // A task is a query block of a group of heads. All heads in one group where their packed
    // keys and values within one block's reach stay within kGroupBytes: the block's rows of q and
    // out are then read and written whole (heads * d contiguous floats), not 128-256 bytes at a
    // time (small shape: 1.11x). With wider windows one head per task keeps consecutive tasks
    // on the same head's keys and values, which stay in cache (aifs-n320 shape: 0.94x grouped).
    const std::int64_t reach_bytes =
        (2 * w + kQueryBlock + kPanel) * d * 2 * static_cast<std::int64_t>(sizeof(float));
    const std::int64_t group = heads * reach_bytes <= kGroupBytes ? heads : 1;
    const std::int64_t groups = heads / group;
    const std::int64_t tasks = p.batch * groups * query_blocks;
    constexpr float kNegInf = -std::numeric_limits<float>::infinity();
    // The register-blocked tile GEMM where P V's output is whole 16-wide panels, OpenBLAS
    // otherwise (odd head sizes).
    const bool tiled = d % kPanel == 0;
    // bf16: on vdpbf16ps tiles where the CPU has them and whole 32-channel panels fit the head;
    // elsewhere the fp32 kernel on bf16-rounded operands (q, k, v are the bf16 forward's
    // projections, already bf16 values; P is rounded below).
    bool native_bf16 = false;
#ifdef BOREAS_ISA_AVX512
    native_bf16 = p.bf16 && d % bf16::kPanelCols == 0 && bf16::cpu_has_dot();
#endif
    const std::int64_t key_align = native_bf16 ? 32 : kPanel;
    const std::int64_t seq_padded = native_bf16 ? (seq + 31) / 32 * 32 : panel_padded(seq);
    // The calling thread's packed heads, kept between calls (no allocation and zeroing per call).
    // Named through a reference: inside the parallel regions below the thread_local itself would
    // be each thread's own.
    static thread_local std::vector<PackedHead> callers_packed;
    std::vector<PackedHead>& packed = callers_packed;
    if (native_bf16) {
#ifdef BOREAS_ISA_AVX512
        if (packed.size() < static_cast<std::size_t>(p.batch * heads))
            packed.resize(static_cast<std::size_t>(p.batch * heads));
        for (std::int64_t bh = 0; bh < p.batch * heads; ++bh) {
            packed[bh].keys_bf16.resize(static_cast<std::size_t>(seq_padded * d));
            packed[bh].values_bf16.resize(static_cast<std::size_t>(seq_padded * d));
        }
        const std::int64_t panels = seq_padded / bf16::kPanelCols;
#pragma omp parallel for schedule(static)
        for (std::int64_t bp = 0; bp < p.batch * panels; ++bp) {
            const std::int64_t b = bp / panels;
            pack_key_panel_bf16(p.k + b * seq * stride, p.v + b * seq * stride, stride, seq,
                                seq_padded, heads, d, (bp % panels) * bf16::kPanelCols,
                                packed.data() + b * heads);
        }
#endif
    } else if (tiled) {
        if (packed.size() < static_cast<std::size_t>(p.batch * heads))
            packed.resize(static_cast<std::size_t>(p.batch * heads));
        for (std::int64_t bh = 0; bh < p.batch * heads; ++bh) {
            packed[bh].keys_t.resize(static_cast<std::size_t>(seq_padded * d));
            packed[bh].values.resize(static_cast<std::size_t>(seq_padded * d));
        }
        const std::int64_t panels = seq_padded / kPanel;
#pragma omp parallel for schedule(static)
        for (std::int64_t bp = 0; bp < p.batch * panels; ++bp) {
            const std::int64_t b = bp / panels;
            pack_key_panel(p.k + b * seq * stride, p.v + b * seq * stride, stride, seq, seq_padded,
                           heads, d, (bp % panels) * kPanel, packed.data() + b * heads);
        }
    }
#pragma omp parallel
    {
        std::vector<float> scores(static_cast<std::size_t>(kQueryBlock * kKeyBlock));
        // Per head of the group: the unnormalised outputs, running maxima and sums of the
        // block's rows.
        std::vector<float> acc(static_cast<std::size_t>(group * kQueryBlock * d));
        std::vector<float> row_max(static_cast<std::size_t>(group * kQueryBlock)),
            row_sum(static_cast<std::size_t>(group * kQueryBlock));
        // The block's queries, head by head as dense [m, d] tiles: q rows are 4-12 KiB apart in
        // the fused QKV buffer, and 6 such rows read together fall into one L1 set.
        std::vector<float> queries(tiled ? static_cast<std::size_t>(group * kQueryBlock * d) : 0);
        std::vector<std::uint32_t> bf16_scratch;  // A operands converted to bf16 pairs
#pragma omp for schedule(dynamic, 1)
        for (std::int64_t task = 0; task < tasks; ++task) {
            const std::int64_t block = task % query_blocks;
            const std::int64_t h0 = (task / query_blocks) % groups * group;
            const std::int64_t b = task / (query_blocks * groups);
            const std::int64_t i0 = block * kQueryBlock, i1 = std::min(seq, i0 + kQueryBlock);
            const std::int64_t m = i1 - i0;
            const std::int64_t base = b * seq;
            if (tiled)
                for (std::int64_t r = 0; r < m; ++r) {
                    const float* row = p.q + (base + i0 + r) * stride + h0 * d;
                    for (std::int64_t g = 0; g < group; ++g)
                        simd::copy(queries.data() + (g * kQueryBlock + r) * d, row + g * d, d);
                }
            // Tiled: key blocks start on a panel boundary (the extra keys are masked below).
            std::int64_t key_begin = std::max<std::int64_t>(0, i0 - w);
            if (tiled) key_begin -= key_begin % key_align;
            const std::int64_t key_end = std::min(seq, i1 + w);
            for (std::int64_t g = 0; g < group; ++g) {
                const std::int64_t h = h0 + g;
                const float* q = p.q + (base + i0) * stride + h * d;
                std::int64_t q_ld = stride;
                if (tiled) {
                    q = queries.data() + g * kQueryBlock * d;
                    q_ld = d;
                }
                float* const head_acc = acc.data() + g * kQueryBlock * d;
                float* const head_max = row_max.data() + g * kQueryBlock;
                float* const head_sum = row_sum.data() + g * kQueryBlock;
                std::fill(head_max, head_max + m, kNegInf);
                std::fill(head_sum, head_sum + m, 0.0f);
                for (std::int64_t j0 = key_begin; j0 < key_end; j0 += kKeyBlock) {
                    const std::int64_t n = std::min(kKeyBlock, key_end - j0);
                    const bool first = j0 == key_begin;
                    // scores[m, n] = scale * Q K^T
                    if (native_bf16) {
#ifdef BOREAS_ISA_AVX512
                        const auto& head = packed[b * heads + h];
                        bf16::small_gemm(m, n, d, scale, q, q_ld, head.keys_bf16.data() + j0 * d,
                                         bf16::kPanelCols * d, false, scores.data(), kKeyBlock,
                                         bf16_scratch);
#endif
                    } else if (tiled) {
                        const auto& head = packed[b * heads + h];
                        small_gemm(m, n, d, scale, q, q_ld, head.keys_t.data() + j0 * d, kPanel * d,
                                   false, scores.data(), kKeyBlock);
                    } else {
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m),
                                    static_cast<int>(n), static_cast<int>(d), scale, q,
                                    static_cast<int>(stride), p.k + (base + j0) * stride + h * d,
                                    static_cast<int>(stride), 0.0f, scores.data(),
                                    static_cast<int>(kKeyBlock));
                    }
                    for (std::int64_t r = 0; r < m; ++r) {
                        const std::int64_t i = i0 + r;
                        // Keys of this block inside query i's window: [lo, hi).
                        const std::int64_t lo = std::max<std::int64_t>(0, i - w - j0);
                        const std::int64_t hi = std::min<std::int64_t>(n, i + w + 1 - j0);
                        float* row = scores.data() + r * kKeyBlock;
                        if (lo >= hi) {
                            simd::zero(row, n);
                            continue;
                        }
                        const float new_max = std::max(head_max[r], simd::max(row + lo, hi - lo));
                        simd::zero(row, lo);
                        const float sum = simd::exp_shifted_sum(row + lo, new_max, hi - lo);
                        // bf16: P V multiplies bf16 numerators (the sum stays the fp32 one).
                        if (p.bf16 && !native_bf16) round_to_bf16(row + lo, hi - lo);
                        simd::zero(row + hi, n - hi);
                        // The first key block sets acc (P V without accumulate), so it has
                        // nothing to rescale.
                        const float correction = first ? 0.0f : std::exp(head_max[r] - new_max);
                        head_sum[r] = head_sum[r] * correction + sum;
                        head_max[r] = new_max;
                        if (!first && correction != 1.0f)
                            simd::scale(head_acc + r * d, correction, d);
                    }
                    // acc[m, d] (+)= P V
                    if (native_bf16) {
#ifdef BOREAS_ISA_AVX512
                        const auto& head = packed[b * heads + h];
                        bf16::small_gemm(m, d, n, 1.0f, scores.data(), kKeyBlock,
                                         head.values_bf16.data() + j0 * bf16::kPanelCols,
                                         seq_padded * bf16::kPanelCols, !first, head_acc, d,
                                         bf16_scratch);
#endif
                    } else if (tiled) {
                        const auto& head = packed[b * heads + h];
                        small_gemm(m, d, n, 1.0f, scores.data(), kKeyBlock,
                                   head.values.data() + j0 * kPanel, seq_padded * kPanel, !first,
                                   head_acc, d);
                    } else {
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(m),
                                    static_cast<int>(d), static_cast<int>(n), 1.0f, scores.data(),
                                    static_cast<int>(kKeyBlock), p.v + (base + j0) * stride + h * d,
                                    static_cast<int>(stride), first ? 0.0f : 1.0f, head_acc,
                                    static_cast<int>(d));
                    }
                }
            }
            for (std::int64_t r = 0; r < m; ++r) {
                float* out = p.out + (base + i0 + r) * out_stride + h0 * d;
                for (std::int64_t g = 0; g < group; ++g) {
                    const std::int64_t gr = g * kQueryBlock + r;
                    simd::scaled_copy(out + g * d, acc.data() + gr * d, 1.0f / row_sum[gr], d);
                    if (p.lse)
                        p.lse[(base + i0 + r) * heads + h0 + g] =
                            row_max[gr] + std::log(row_sum[gr]);
                }
            }
        }
    }
}

}  // namespace boreas::kernels::cpu::BOREAS_ISA_NS

namespace boreas::kernels::cpu::BOREAS_ISA_NS {
namespace {

/// Fills `prob` [rows x cols] (leading dimension ld) with the softmax weights of queries
/// [i0, i0+rows) against keys [j0, j0+cols): exp(scale q.k - lse) inside the window, else 0.
/// `scores` must already hold q.k * scale.
void window_probabilities(float* prob, std::int64_t rows, std::int64_t cols, std::int64_t ld,
                          std::int64_t i0, std::int64_t j0, std::int64_t window, const float* lse,
                          std::int64_t lse_stride) {
    for (std::int64_t r = 0; r < rows; ++r) {
        const std::int64_t i = i0 + r;
        float* row = prob + r * ld;
        // Keys inside query i's window: columns [lo, hi).
        const std::int64_t lo = std::clamp<std::int64_t>(i - window - j0, 0, cols);
        const std::int64_t hi = std::clamp<std::int64_t>(i + window + 1 - j0, lo, cols);
        simd::zero(row, lo);
        simd::exp_shifted_sum(row + lo, lse[i * lse_stride], hi - lo);
        simd::zero(row + hi, cols - hi);
    }
}

}  // namespace

void window_attention_backward(const WindowAttentionBackwardParams& bp) {
    single_threaded_blas();
    const auto& p = bp.forward;
    const auto heads = p.heads, d = p.head_dim, seq = p.seq, w = p.window;
    BOREAS_CHECK(
        p.lse && p.out && bp.d_out && bp.dq && bp.dk && bp.dv,
        "window_attention_backward: the forward's out and lse and all gradients are needed");
    const auto stride = p.stride ? p.stride : heads * d;
    const auto out_stride = p.out_stride ? p.out_stride : stride;  // out and d_out
    const float scale = 1.0f / std::sqrt(static_cast<float>(d));
    const std::int64_t rows_total = p.batch * seq;
    // D_i = dO_i . O_i per head.
    std::vector<float> delta(static_cast<std::size_t>(rows_total * heads));
#pragma omp parallel for schedule(static)
    for (std::int64_t row = 0; row < rows_total; ++row)
        for (std::int64_t h = 0; h < heads; ++h)
            delta[row * heads + h] =
                simd::dot(bp.d_out + row * out_stride + h * d, p.out + row * out_stride + h * d, d);

    // One pass over key blocks (FlashAttention-2's order): per tile of queries x keys the scores
    // and dP are formed once and give dV, dK (complete within the task, written directly) and a
    // dQ contribution. Tasks are (batch element, head, segment of keys); a segment's dQ
    // contributions reach the queries within the window of its keys, so each task adds them into
    // its own partial, and the partials are summed in segment order afterwards: deterministic,
    // no atomics, 5 products per tile instead of 7 for separate query and key passes.
    const int threads = omp_get_max_threads();
    const std::int64_t head_tasks = p.batch * heads;
    const std::int64_t max_segments =
        std::max<std::int64_t>(1, seq / std::max<std::int64_t>(1, 2 * w));
    const std::int64_t segments =
        std::clamp<std::int64_t>((4 * threads + head_tasks - 1) / head_tasks, 1, max_segments);
    const std::int64_t segment_keys = (seq + segments - 1) / segments;
    const std::int64_t tasks = head_tasks * segments;
    // Task t's partial covers queries [query_first(t), query_first(t) + partial_rows) of its head.
    const std::int64_t partial_rows = std::min(seq, segment_keys + 2 * w);
    auto segment_range = [&](std::int64_t s) {
        const std::int64_t k0 = s * segment_keys;
        return std::pair{k0, std::min(seq, k0 + segment_keys)};
    };
    auto query_first = [&](std::int64_t s) {
        return std::clamp<std::int64_t>(segment_range(s).first - w, 0, seq - partial_rows);
    };
    std::vector<float> dq_partial(static_cast<std::size_t>(tasks * partial_rows * d));
    const auto sgemm = [](CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, std::int64_t m, std::int64_t n,
                          std::int64_t k, float alpha, const float* a, std::int64_t lda,
                          const float* b, std::int64_t ldb, float beta, float* c,
                          std::int64_t ldc) {
        cblas_sgemm(CblasRowMajor, ta, tb, static_cast<int>(m), static_cast<int>(n),
                    static_cast<int>(k), alpha, a, static_cast<int>(lda), b, static_cast<int>(ldb),
                    beta, c, static_cast<int>(ldc));
    };
    constexpr std::int64_t kKeys = 128, kQueries = 256;
#pragma omp parallel
    {
        std::vector<float> prob(static_cast<std::size_t>(kQueries * kKeys));
        std::vector<float> dprob(static_cast<std::size_t>(kQueries * kKeys));
        std::vector<float> acc_k(static_cast<std::size_t>(kKeys * d)),
            acc_v(static_cast<std::size_t>(kKeys * d));
#pragma omp for schedule(dynamic, 1)
        for (std::int64_t task = 0; task < tasks; ++task) {
            const std::int64_t segment = task % segments, h = (task / segments) % heads,
                               b = task / (segments * heads);
            const std::int64_t base = b * seq;
            const auto [seg_begin, seg_end] = segment_range(segment);
            const std::int64_t q_first = query_first(segment);
            float* dq_acc = dq_partial.data() + task * partial_rows * d;
            std::fill(dq_acc, dq_acc + partial_rows * d, 0.0f);
            for (std::int64_t j0 = seg_begin; j0 < seg_end; j0 += kKeys) {
                const std::int64_t n = std::min(kKeys, seg_end - j0);
                const float* k = p.k + (base + j0) * stride + h * d;
                const float* v = p.v + (base + j0) * stride + h * d;
                std::fill(acc_k.begin(), acc_k.begin() + n * d, 0.0f);
                std::fill(acc_v.begin(), acc_v.begin() + n * d, 0.0f);
                const std::int64_t query_begin = std::max<std::int64_t>(0, j0 - w);
                const std::int64_t query_end = std::min(seq, j0 + n + w);
                for (std::int64_t i0 = query_begin; i0 < query_end; i0 += kQueries) {
                    const std::int64_t m = std::min(kQueries, query_end - i0);
                    const float* q = p.q + (base + i0) * stride + h * d;
                    const float* g = bp.d_out + (base + i0) * out_stride + h * d;
                    // P [m x n]: queries [i0, i0+m) against keys [j0, j0+n); dS likewise.
                    sgemm(CblasNoTrans, CblasTrans, m, n, d, scale, q, stride, k, stride, 0.0f,
                          prob.data(), kKeys);
                    window_probabilities(prob.data(), m, n, kKeys, i0, j0, w,
                                         p.lse + base * heads + h, heads);
                    sgemm(CblasNoTrans, CblasTrans, m, n, d, 1.0f, g, out_stride, v, stride, 0.0f,
                          dprob.data(), kKeys);
                    for (std::int64_t r = 0; r < m; ++r) {
                        const float D = delta[(base + i0 + r) * heads + h];
                        float* ds = dprob.data() + r * kKeys;
                        const float* pr = prob.data() + r * kKeys;
                        for (std::int64_t c = 0; c < n; ++c) ds[c] = pr[c] * (ds[c] - D);
                    }
                    // dV [n x d] += P^T dO; dK [n x d] += scale dS^T Q; dQ [m x d] += scale dS K.
                    sgemm(CblasTrans, CblasNoTrans, n, d, m, 1.0f, prob.data(), kKeys, g,
                          out_stride, 1.0f, acc_v.data(), d);
                    sgemm(CblasTrans, CblasNoTrans, n, d, m, scale, dprob.data(), kKeys, q, stride,
                          1.0f, acc_k.data(), d);
                    sgemm(CblasNoTrans, CblasNoTrans, m, d, n, scale, dprob.data(), kKeys, k,
                          stride, 1.0f, dq_acc + (i0 - q_first) * d, d);
                }
                for (std::int64_t r = 0; r < n; ++r) {
                    simd::copy(bp.dk + (base + j0 + r) * stride + h * d, acc_k.data() + r * d, d);
                    simd::copy(bp.dv + (base + j0 + r) * stride + h * d, acc_v.data() + r * d, d);
                }
            }
        }
    }
    // dQ: each query row sums the partials of the segments whose windows reach it, in order.
#pragma omp parallel for schedule(static)
    for (std::int64_t row = 0; row < rows_total; ++row) {
        const std::int64_t b = row / seq, i = row % seq;
        for (std::int64_t h = 0; h < heads; ++h) {
            float* dq = bp.dq + row * stride + h * d;
            simd::zero(dq, d);
            for (std::int64_t s = 0; s < segments; ++s) {
                const std::int64_t first = query_first(s);
                if (i < first || i >= first + partial_rows) continue;
                const float* part =
                    dq_partial.data() + ((b * heads + h) * segments + s) * partial_rows * d;
                simd::add(dq, part + (i - first) * d, d);
            }
        }
    }
}

}  // namespace boreas::kernels::cpu::BOREAS_ISA_NS
