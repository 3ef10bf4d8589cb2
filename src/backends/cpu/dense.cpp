// Dense CPU kernels: Linear (register-tile GEMM over packed weights, or BLAS sgemm, with a fused
// bias + GELU epilogue), the fused inference MLP, LayerNorm, GELU. The element-wise passes are
// vectorised by hand (simd.hpp): with -ffp-contract=off and libm's scalar erff they cost as much as
// a third of the GEMM time at 256 channels.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <vector>

#include "blas_threads.hpp"
#include "boreas/core/error.hpp"
#include "boreas/core/tensor.hpp"
#include "boreas/kernels/kernels.hpp"
#include "register_tile.hpp"
#include "simd.hpp"

namespace boreas::kernels::cpu::BOREAS_ISA_NS {
namespace {

constexpr float kInvSqrt2 = 0.70710678118654752440f;

// GELU(x) = 0.5 x (1 + erf(x / sqrt 2)), written as PyTorch writes it: erfc(-x / sqrt 2) would
// be more accurate in the negative tail, but the goal is anemoi's numbers.
inline float gelu_scalar(float x) {
    return 0.5f * x * (1.0f + std::erf(x * kInvSqrt2));
}

}  // namespace

/// x[i] = GELU(x[i]) for n values (declared in kernel_table.hpp: the bf16 Linear shares it).
void gelu_row(float* x, std::int64_t n) {
    std::int64_t i = 0;
#ifdef BOREAS_VECTOR_ERF
    const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
    const __m256 inv_sqrt2 = _mm256_set1_ps(kInvSqrt2);
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        const __m256 cdf2 = _mm256_add_ps(one, _ZGVdN8v_erff(_mm256_mul_ps(v, inv_sqrt2)));
        _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_mul_ps(half, v), cdf2));
    }
#endif
    for (; i < n; ++i) x[i] = gelu_scalar(x[i]);
}

namespace {

/// y[0, c) = LayerNorm(x[0, c)) (gamma and beta [c] or null): layer_norm's row, shared with the
/// MLP that normalises its input chunk by chunk, so that both give the same bits.
void layer_norm_row(const float* x, float* y, std::int64_t c, const float* gamma, const float* beta,
                    float eps) {
    const auto [mean, inv] = simd::row_moments(x, c, eps);
    std::int64_t i = 0;
#ifdef BOREAS_SIMD_AVX2
    const __m256 m = _mm256_set1_ps(mean);
    const __m256 scale = _mm256_set1_ps(inv);
    if (gamma && beta) {
        for (; i + 8 <= c; i += 8) {
            const __m256 normalised =
                _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), m), scale);
            _mm256_storeu_ps(y + i, _mm256_fmadd_ps(normalised, _mm256_loadu_ps(gamma + i),
                                                    _mm256_loadu_ps(beta + i)));
        }
    }
#endif
    for (; i < c; ++i) {
        const float normalised = (x[i] - mean) * inv;
        y[i] = normalised * (gamma ? gamma[i] : 1.0f) + (beta ? beta[i] : 0.0f);
    }
}

/// layer_norm_row over `rows` rows of c values, on all threads where there is enough work.
void layer_norm_rows(const float* x, float* y, std::int64_t rows, std::int64_t c,
                     const float* gamma, const float* beta, float eps) {
#pragma omp parallel for schedule(static) if (rows * c > 16384)
    for (std::int64_t r = 0; r < rows; ++r)
        layer_norm_row(x + r * c, y + r * c, c, gamma, beta, eps);
}

/// Threads for `rows` rows of `macs_per_row` multiply-adds each: at least about a million per
/// thread, and one inside a parallel region (OpenBLAS then also runs single-threaded).
int threads_for(std::int64_t rows, std::int64_t macs_per_row) {
    const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    const std::int64_t min_rows_per_thread = std::max<std::int64_t>(16, (1 << 20) / macs_per_row);
    return static_cast<int>(std::clamp<std::int64_t>(rows / min_rows_per_thread, 1, threads));
}

/// The epilogue of rows [r0, r1) x columns [c0, c1) of y: keep the pre-activation, then GELU.
void gelu_epilogue(const LinearParams& p, std::int64_t ldy, std::int64_t r0, std::int64_t r1,
                   std::int64_t c0, std::int64_t c1) {
    for (std::int64_t r = r0; r < r1; ++r) {
        float* row = p.y + r * ldy;
        if (p.pre_activation) std::copy(row + c0, row + c1, p.pre_activation + r * p.out + c0);
        gelu_row(row + c0, c1 - c0);
    }
}

/// Rows [r0, r1) through OpenBLAS, single-threaded: bias first, then sgemm adds onto it (beta =
/// 1), which also spares OpenBLAS its separate pass that zeroes C for beta = 0.
void linear_rows_blas(const LinearParams& p, std::int64_t ldx, std::int64_t ldy, std::int64_t r0,
                      std::int64_t r1) {
    if (p.bias) {
        for (std::int64_t r = r0; r < r1; ++r) {
            float* row = p.y + r * ldy;
            if (p.accumulate)
                simd::add(row, p.bias, p.out);
            else
                std::copy(p.bias, p.bias + p.out, row);
        }
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, p.weight_transposed ? CblasNoTrans : CblasTrans,
                static_cast<int>(r1 - r0), static_cast<int>(p.out), static_cast<int>(p.in), 1.0f,
                p.x + r0 * ldx, static_cast<int>(ldx), p.weight,
                static_cast<int>(p.weight_transposed ? p.out : p.in),
                (p.accumulate || p.bias) ? 1.0f : 0.0f, p.y + r0 * ldy, static_cast<int>(ldy));
    if (p.gelu) gelu_epilogue(p, ldy, r0, r1, 0, p.out);
}

#ifdef BOREAS_SIMD_AVX2

// The packed Linear (any out; in <= 2048). OpenBLAS packs both operands on every call and leaves
// bias and GELU to separate passes over y; at the model's widths (in <= 2048) this path measured
// 7-15 % faster in the GEMM alone (docs/performance.md). The weight is packed once per call into
// 16-column panels, shared by the threads; each thread packs 48 rows of x at a time k-major (6
// values per k, contiguous: no L1 set conflicts from row strides of 4 KiB and more), runs every
// panel over them on the register tile, adds the bias in registers, and applies GELU to those
// rows while they are still in L2.
constexpr std::int64_t kChunkTiles = 8;
// Beyond this input width a k x 16 panel outgrows L2 and OpenBLAS was faster (0.87-0.93x).
constexpr std::int64_t kMaxTiledIn = 2048;
// Weight panels per column block: 4 MiB, read from L3 for every chunk.
constexpr std::int64_t kBlockFloats = std::int64_t{1} << 20;

/// Panel of weight rows [16t, 16t + valid) (valid <= 16; zeros after):
/// packed[p * 16 + j] = w[(16t + j) * in + p], w pointing at row 16t.
void pack_weight_panel(const float* w, std::int64_t in, std::int64_t valid, float* packed) {
    std::int64_t p = 0;
    for (; p + 8 <= in; p += 8)
        for (std::int64_t half = 0; half < kPanel; half += 8) {
            __m256 block[8];
            for (int j = 0; j < 8; ++j)
                block[j] = half + j < valid ? _mm256_loadu_ps(w + (half + j) * in + p)
                                            : _mm256_setzero_ps();
            simd::transpose8x8(block);
            for (int q = 0; q < 8; ++q)
                _mm256_storeu_ps(packed + (p + q) * kPanel + half, block[q]);
        }
    for (; p < in; ++p)
        for (std::int64_t j = 0; j < kPanel; ++j)
            packed[p * kPanel + j] = j < valid ? w[j * in + p] : 0.0f;
}

/// The same panel from a transposed weight wt [in, out] (wt pointing at column 16t): row p of
/// the panel is wt's row p, columns [16t, 16t + valid), a plain copy.
void pack_weight_panel_transposed(const float* wt, std::int64_t out, std::int64_t in,
                                  std::int64_t valid, float* packed) {
    for (std::int64_t p = 0; p < in; ++p) {
        float* row = packed + p * kPanel;
        if (valid == kPanel) {
            simd::copy(row, wt + p * out, kPanel);
        } else {
            simd::copy(row, wt + p * out, valid);
            simd::zero(row + valid, kPanel - valid);
        }
    }
}

/// `rows` (<= 6) rows of x, k-major: packed[p * 6 + r] = x[r * ldx + p], zero for r >= rows.
/// Writes 2 floats past 6 * in (the caller's buffer has room).
void pack_row_tile(const float* x, std::int64_t ldx, std::int64_t rows, std::int64_t in,
                   float* packed) {
    std::int64_t p = 0;
    for (; p + 8 <= in; p += 8) {
        __m256 block[8];
        block[6] = block[7] = _mm256_setzero_ps();
        if (rows == kTileRows) {  // the common case without a compare per row
            for (std::int64_t r = 0; r < kTileRows; ++r)
                block[r] = _mm256_loadu_ps(x + r * ldx + p);
        } else {
            for (std::int64_t r = 0; r < kTileRows; ++r)
                block[r] = r < rows ? _mm256_loadu_ps(x + r * ldx + p) : _mm256_setzero_ps();
        }
        simd::transpose8x8(block);
        // Each 8-wide store's last two lanes are overwritten by the next one.
        for (int q = 0; q < 8; ++q) _mm256_storeu_ps(packed + (p + q) * kTileRows, block[q]);
    }
    for (; p < in; ++p)
        for (std::int64_t r = 0; r < kTileRows; ++r)
            packed[p * kTileRows + r] = r < rows ? x[r * ldx + p] : 0.0f;
}

/// Rows [6i, 6i + rows) x columns [16j, 16j + cols) of y from a packed row tile and weight
/// panel (rows <= 6, cols <= 16). A partial tile goes through a scratch tile, so that nothing
/// past the last row or column of y is touched.
[[gnu::always_inline]] inline void linear_tile(std::int64_t k, bool accumulate,
                                               const float* row_tile, const float* panel,
                                               std::int64_t rows, std::int64_t cols, float* y,
                                               std::int64_t ldy, const float* bias) {
    alignas(32) float scratch[kTileRows * kPanel];
    alignas(32) float padded_bias[kPanel];
    const bool partial = rows < kTileRows || cols < kPanel;
    float* target = y;
    std::int64_t ld = ldy;
    if (partial) {
        target = scratch;
        ld = kPanel;
        if (accumulate)
            for (std::int64_t r = 0; r < rows; ++r)
                std::copy_n(y + r * ldy, cols, scratch + r * kPanel);
        if (bias && cols < kPanel) {
            std::fill(std::copy_n(bias, cols, padded_bias), padded_bias + kPanel, 0.0f);
            bias = padded_bias;
        }
    } else {
        prefetch_tile_rows(y, ldy, kTileRows);
    }
    Tile6x16 tile;
    tile_fill(tile, _mm256_setzero_ps(), _mm256_setzero_ps());
    tile_fma<kTileRows>(tile, k, row_tile, 1, panel);
    tile_finish(tile, bias, accumulate, target, ld);
    if (partial)
        for (std::int64_t r = 0; r < rows; ++r)
            std::copy_n(scratch + r * kPanel, cols, y + r * ldy);
}

/// The tile the fp32 Linear and MLP run on (choose_fp32_tile): 256 or, on the avx512 path, 512.
std::atomic<int> fp32_tile_bits{256};

#ifdef BOREAS_ISA_AVX512
/// Rows [12i, 12i + 12) x columns [16j, 16j + 16) of y from two consecutive packed row tiles
/// (`rows` starting at `top`, 6 * k floats each) and a weight panel, on the 512-bit tile: full
/// tiles only (partial ones go through linear_tile). Bias, then y, added after the sum, in
/// linear_tile's order, so that both tiles give the same bits.
[[gnu::always_inline]] inline void linear_tile_pair(std::int64_t k, bool accumulate,
                                                    const float* top, const float* panel, float* y,
                                                    std::int64_t ldy, const float* bias) {
    prefetch_tile_rows(y, ldy, 2 * kTileRows);
    Tile12x16 tile;
    tile_fill(tile, _mm512_setzero_ps());
    tile_fma(tile, k, top, top + kTileRows * k, panel);
    tile_finish(tile, bias, accumulate, y, ldy);
}
#endif

/// Packs weight w ([out, in], or [in, out] when `transposed`) into its ceil(out / 16) panels,
/// the last one zero-padded; the panels are shared out over the threads of the enclosing
/// parallel region (an orphaned `omp for`, with its closing barrier).
void pack_weight_panels(const float* w, std::int64_t in, std::int64_t out, bool transposed,
                        float* packed) {
    const std::int64_t panels = (out + kPanel - 1) / kPanel;
#pragma omp for schedule(static)
    for (std::int64_t t = 0; t < panels; ++t) {
        const std::int64_t valid = std::min(kPanel, out - t * kPanel);
        if (transposed)
            pack_weight_panel_transposed(w + t * kPanel, out, in, valid, packed + t * kPanel * in);
        else
            pack_weight_panel(w + t * kPanel * in, in, valid, packed + t * kPanel * in);
    }
}

/// Packs the row tiles [i0, i1) of x (rows past `rows` zero) one after another, k-major.
void pack_chunk(const float* x, std::int64_t ldx, std::int64_t rows, std::int64_t in,
                std::int64_t i0, std::int64_t i1, float* packed) {
    for (std::int64_t i = i0; i < i1; ++i)
        pack_row_tile(x + i * kTileRows * ldx, ldx, std::min(kTileRows, rows - i * kTileRows), in,
                      packed + (i - i0) * kTileRows * in);
}

/// Rows [0, rows) of y (+)= the packed chunk (k-major row tiles) times weight panels [j0, j1)
/// (+ bias): panel by panel, so that each panel is read from L3 once per chunk and stays in L1
/// across the chunk's tiles. Columns past `out` are not stored.
void multiply_chunk(std::int64_t k, bool accumulate, const float* packed_rows, std::int64_t rows,
                    const float* panels, std::int64_t j0, std::int64_t j1, std::int64_t out,
                    const float* bias, float* y, std::int64_t ldy) {
    const std::int64_t tiles = (rows + kTileRows - 1) / kTileRows;
#ifdef BOREAS_ISA_AVX512
    // Pairs of full row tiles on the 512-bit tile; the rest (a last odd or partial tile, a
    // partial last panel) on the 256-bit one.
    const std::int64_t pairs =
        fp32_tile_bits.load(std::memory_order_relaxed) == 512 ? rows / (2 * kTileRows) : 0;
#endif
    for (std::int64_t j = j0; j < j1; ++j) {
        const std::int64_t cols = std::min(kPanel, out - j * kPanel);
        std::int64_t t = 0;
#ifdef BOREAS_ISA_AVX512
        if (cols == kPanel)
            for (; t < 2 * pairs; t += 2)
                linear_tile_pair(k, accumulate, packed_rows + t * kTileRows * k,
                                 panels + j * kPanel * k, y + t * kTileRows * ldy + j * kPanel, ldy,
                                 bias ? bias + j * kPanel : nullptr);
#endif
        for (; t < tiles; ++t)
            linear_tile(k, accumulate, packed_rows + t * kTileRows * k, panels + j * kPanel * k,
                        std::min(kTileRows, rows - t * kTileRows), cols,
                        y + t * kTileRows * ldy + j * kPanel, ldy,
                        bias ? bias + j * kPanel : nullptr);
    }
}

void linear_tiled(const LinearParams& p, std::int64_t ldx, std::int64_t ldy, int threads) {
    // The last panel may be partial (out not a multiple of 16): zero-padded weights, and its
    // tiles store only the valid columns.
    const std::int64_t panels = (p.out + kPanel - 1) / kPanel;
    const std::int64_t tiles = (p.rows + kTileRows - 1) / kTileRows;
    static thread_local std::vector<float> weight_panels;  // the calling thread's, shared below
    weight_panels.resize(static_cast<std::size_t>(panels * kPanel * p.in));
    float* const packed_weight = weight_panels.data();
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        pack_weight_panels(p.weight, p.in, p.out, p.weight_transposed, packed_weight);
        static thread_local std::vector<float> row_tiles;
        row_tiles.resize(static_cast<std::size_t>(kChunkTiles * kTileRows * p.in + 8));
        // Work items are (column block, 48-row chunk), handed out as threads come free: a vCPU
        // that loses time to its neighbours would otherwise hold the other at the closing
        // barrier (5 % of a small forward step). A column block's panels stay within 4 MiB, so
        // that they are read from L3 for every chunk: at in 1024 and out 4096 the whole 16 MiB
        // weight measured 14 % slower than OpenBLAS.
        const std::int64_t block_panels = std::max<std::int64_t>(1, kBlockFloats / (kPanel * p.in));
        const std::int64_t column_blocks = (panels + block_panels - 1) / block_panels;
        const std::int64_t chunks = (tiles + kChunkTiles - 1) / kChunkTiles;
#pragma omp for schedule(dynamic, 1)
        for (std::int64_t item = 0; item < column_blocks * chunks; ++item) {
            const std::int64_t chunk = item % chunks, block = item / chunks;
            const std::int64_t i0 = chunk * kChunkTiles, i1 = std::min(tiles, i0 + kChunkTiles);
            const std::int64_t j0 = block * block_panels, j1 = std::min(panels, j0 + block_panels);
            const std::int64_t r0 = i0 * kTileRows, r1 = std::min(p.rows, i1 * kTileRows);
            pack_chunk(p.x, ldx, p.rows, p.in, i0, i1, row_tiles.data());
            multiply_chunk(p.in, p.accumulate, row_tiles.data(), r1 - r0, packed_weight, j0, j1,
                           p.out, p.bias, p.y + r0 * ldy, ldy);
            if (p.gelu) gelu_epilogue(p, ldy, r0, r1, j0 * kPanel, std::min(p.out, j1 * kPanel));
        }
    }
}

/// Both weights of the fused MLP fit this budget, read from L3 for every 48-row chunk.
constexpr std::int64_t kMlpWeightFloats = 2 * kBlockFloats;

bool mlp_tiles_apply(const MlpParams& p) {
    return p.hidden % kPanel == 0 && p.out % kPanel == 0 && p.in <= kMaxTiledIn &&
           p.hidden <= kMaxTiledIn && p.hidden * (p.in + p.out) <= kMlpWeightFloats;
}

/// A 6 x 16 tile written k-major: dst[c * 6 + r] = row r, column c (96 consecutive floats), the
/// layout pack_row_tile gives, straight from the registers. Each 8-wide store's last two lanes
/// are overwritten by the next; the last store is masked to its six.
[[gnu::always_inline]] inline void tile_store_k_major(const Tile6x16& t, float* dst) {
    const __m256 zero = _mm256_setzero_ps();
    __m256 low[8] = {t.c00, t.c10, t.c20, t.c30, t.c40, t.c50, zero, zero};
    __m256 high[8] = {t.c01, t.c11, t.c21, t.c31, t.c41, t.c51, zero, zero};
    simd::transpose8x8(low);
    simd::transpose8x8(high);
    for (int c = 0; c < 8; ++c) _mm256_storeu_ps(dst + c * kTileRows, low[c]);
    for (int c = 0; c < 7; ++c) _mm256_storeu_ps(dst + (8 + c) * kTileRows, high[c]);
    _mm256_maskstore_ps(dst + 15 * kTileRows, _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, 0, 0),
                        high[7]);
}

/// The fused MLP's first GEMM over a packed chunk of `tiles` row tiles: every tile (rows past
/// the last come from zero rows of x) plus the bias, stored k-major as the second GEMM's row
/// tiles (hidden_tiles: tile t at t * 6 * hidden).
void multiply_chunk_k_major(std::int64_t k, const float* packed_rows, std::int64_t tiles,
                            const float* panels, std::int64_t hidden, const float* bias,
                            float* hidden_tiles) {
#ifdef BOREAS_ISA_AVX512
    const std::int64_t pairs =
        fp32_tile_bits.load(std::memory_order_relaxed) == 512 ? tiles / 2 : 0;
#endif
    for (std::int64_t j = 0; j < hidden / kPanel; ++j) {
        std::int64_t t = 0;
#ifdef BOREAS_ISA_AVX512
        for (; t < 2 * pairs; t += 2) {  // every tile is full here (zero rows past the last)
            Tile12x16 tile;
            tile_fill(tile, _mm512_setzero_ps());
            tile_fma(tile, k, packed_rows + t * kTileRows * k,
                     packed_rows + (t + 1) * kTileRows * k, panels + j * kPanel * k);
            if (bias) {
                Tile12x16 b;
                tile_fill(b, _mm512_loadu_ps(bias + j * kPanel));
                tile_add(tile, b);
            }
            for (std::int64_t half = 0; half < 2; ++half)
                tile_store_k_major(
                    tile_half(tile, half == 0),
                    hidden_tiles + (t + half) * kTileRows * hidden + j * kPanel * kTileRows);
        }
#endif
        for (; t < tiles; ++t) {
            Tile6x16 tile;
            tile_fill(tile, _mm256_setzero_ps(), _mm256_setzero_ps());
            tile_fma<kTileRows>(tile, k, packed_rows + t * kTileRows * k, 1,
                                panels + j * kPanel * k);
            if (bias) {  // after the sum, as linear_tile (PyTorch's order)
                Tile6x16 b;
                tile_fill(b, _mm256_loadu_ps(bias + j * kPanel),
                          _mm256_loadu_ps(bias + j * kPanel + 8));
                tile_add(tile, b);
            }
            tile_store_k_major(tile,
                               hidden_tiles + t * kTileRows * hidden + j * kPanel * kTileRows);
        }
    }
}

// The fused MLP: per 48-row chunk, the hidden rows GELU(x W_in^T + b_in) are written by the
// first GEMM's tiles straight into the k-major row tiles the second GEMM reads (216 KiB at
// hidden 1024, in L2), GELU applied there. Against two Linears this saves writing the
// [rows, hidden] activation to memory (with its read-for-ownership) and reading it back; against
// a row-major hidden buffer, its packing pass.
void mlp_tiled(const MlpParams& p, int threads) {
    const std::int64_t tiles = (p.rows + kTileRows - 1) / kTileRows;
    const std::int64_t chunks = (tiles + kChunkTiles - 1) / kChunkTiles;
    static thread_local std::vector<float> weight_panels;  // the calling thread's, shared below
    weight_panels.resize(static_cast<std::size_t>(p.hidden * (p.in + p.out)));
    float* const packed_in = weight_panels.data();
    float* const packed_out = packed_in + p.hidden * p.in;
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        pack_weight_panels(p.weight_in, p.in, p.hidden, false, packed_in);
        pack_weight_panels(p.weight_out, p.hidden, p.out, false, packed_out);
        static thread_local std::vector<float> x_tiles, hidden_tiles, normalised;
        x_tiles.resize(static_cast<std::size_t>(kChunkTiles * kTileRows * p.in + 8));
        hidden_tiles.resize(static_cast<std::size_t>(kChunkTiles * kTileRows * p.hidden + 8));
        if (p.layer_norm)
            normalised.resize(static_cast<std::size_t>(kChunkTiles * kTileRows * p.in));
#pragma omp for schedule(dynamic, 1)
        for (std::int64_t chunk = 0; chunk < chunks; ++chunk) {
            const std::int64_t i0 = chunk * kChunkTiles, i1 = std::min(tiles, i0 + kChunkTiles);
            const std::int64_t r0 = i0 * kTileRows, rows = std::min(p.rows, i1 * kTileRows) - r0;
            if (p.layer_norm) {
                // The chunk's rows normalised into L1/L2 and packed from there (read before
                // the chunk's rows of y are written: y may be x).
                for (std::int64_t r = 0; r < rows; ++r)
                    layer_norm_row(p.x + (r0 + r) * p.in, normalised.data() + r * p.in, p.in,
                                   p.norm_gamma, p.norm_beta, p.norm_eps);
                pack_chunk(normalised.data(), p.in, rows, p.in, 0, i1 - i0, x_tiles.data());
            } else {
                pack_chunk(p.x, p.in, p.rows, p.in, i0, i1, x_tiles.data());
            }
            multiply_chunk_k_major(p.in, x_tiles.data(), i1 - i0, packed_in, p.hidden, p.bias_in,
                                   hidden_tiles.data());
            gelu_row(hidden_tiles.data(), (i1 - i0) * kTileRows * p.hidden);
            multiply_chunk(p.hidden, p.accumulate, hidden_tiles.data(), rows, packed_out, 0,
                           p.out / kPanel, p.out, p.bias_out, p.y + r0 * p.out, p.out);
        }
    }
}

#endif  // BOREAS_SIMD_AVX2

}  // namespace

void linear(const LinearParams& p) {
    BOREAS_CHECK(p.bf16 || !(p.y_bf16 || p.weight_bf16),
                 "linear: bf16 output or weights need the bf16 Linear");
    if (p.bf16) {
        linear_bf16(p);
        return;
    }
    single_threaded_blas();
    BOREAS_CHECK(p.x && p.weight && p.y && p.rows >= 0 && p.in > 0 && p.out > 0,
                 "linear: invalid parameters (rows {}, in {}, out {})", p.rows, p.in, p.out);
    BOREAS_CHECK(!(p.gelu && p.accumulate), "linear: the GELU epilogue cannot accumulate");
    if (p.rows == 0) return;
    const std::int64_t ldx = p.x_stride ? p.x_stride : p.in;
    const std::int64_t ldy = p.y_stride ? p.y_stride : p.out;
    const int used = threads_for(p.rows, p.in * p.out);
#ifdef BOREAS_SIMD_AVX2
    if (p.in <= kMaxTiledIn) {
        linear_tiled(p, ldx, ldy, used);
        return;
    }
#endif
    // Each thread runs a single-threaded sgemm on its own rows and then the epilogue on them:
    // measured 5-15% faster than OpenBLAS' own threading on these tall-skinny shapes
    // (docs/performance.md). OpenBLAS runs single-threaded inside an OpenMP parallel region.
#pragma omp parallel num_threads(used) if (used > 1)
    {
        const int t = omp_get_thread_num(), n = omp_get_num_threads();
        const std::int64_t r0 = p.rows * t / n, r1 = p.rows * (t + 1) / n;
        if (r1 > r0) linear_rows_blas(p, ldx, ldy, r0, r1);
    }
}

void mlp(const MlpParams& p) {
    BOREAS_CHECK(p.bf16 || !(p.weight_in_bf16 || p.weight_out_bf16),
                 "mlp: bf16 weights need the bf16 MLP");
    if (p.bf16) {
        mlp_bf16(p);
        return;
    }
    single_threaded_blas();
    BOREAS_CHECK(p.x && p.weight_in && p.weight_out && p.y && p.rows >= 0 && p.in > 0 &&
                     p.hidden > 0 && p.out > 0,
                 "mlp: invalid parameters (rows {}, in {}, hidden {}, out {})", p.rows, p.in,
                 p.hidden, p.out);
    if (p.rows == 0) return;
#ifdef BOREAS_SIMD_AVX2
    if (mlp_tiles_apply(p)) {
        mlp_tiled(p, threads_for(p.rows, p.hidden * (p.in + p.out)));
        return;
    }
#endif
    Tensor normalised;
    if (p.layer_norm) {
        normalised = Tensor::uninitialised({p.rows, p.in});
        layer_norm_rows(p.x, normalised.data(), p.rows, p.in, p.norm_gamma, p.norm_beta,
                        p.norm_eps);
    }
    Tensor hidden_rows = Tensor::uninitialised({p.rows, p.hidden});
    LinearParams first;
    first.x = p.layer_norm ? normalised.data() : p.x;
    first.weight = p.weight_in;
    first.bias = p.bias_in;
    first.y = hidden_rows.data();
    first.rows = p.rows;
    first.in = p.in;
    first.out = p.hidden;
    first.gelu = true;
    linear(first);
    LinearParams second;
    second.x = hidden_rows.data();
    second.weight = p.weight_out;
    second.bias = p.bias_out;
    second.y = p.y;
    second.rows = p.rows;
    second.in = p.hidden;
    second.out = p.out;
    second.accumulate = p.accumulate;
    linear(second);
}

Fp32Tile choose_fp32_tile(int forced_bits, const char* origin, bool strict) {
#ifdef BOREAS_ISA_AVX512
    (void)strict;
    BOREAS_CHECK(forced_bits == 0 || forced_bits == 256 || forced_bits == 512,
                 "{}={}: the fp32 tile is 256 or 512 bits wide", origin, forced_bits);
    if (forced_bits != 0) {
        fp32_tile_bits.store(forced_bits);
        return {forced_bits, origin, 0, 0};
    }
    // Whichever tile runs faster on this CPU: on cores with two 512-bit FMA units (Sapphire
    // Rapids) the zmm tile doubles the rate; where AVX-512 is split into two 256-bit halves
    // (Zen 4) the two are close.
    // One thread, a 48-row chunk times 16 panels at k = 512 (the model's widths), the two tiles
    // alternated, the best of 5 rounds each (about 20 ms in all, once per process). Both give
    // the same bits, so the choice changes the speed only.
    constexpr std::int64_t k = 512, rows = kChunkTiles * kTileRows, out = 16 * kPanel;
    std::vector<float> packed_rows(static_cast<std::size_t>(rows * k + 8)),
        panels(static_cast<std::size_t>(out * k)), y(static_cast<std::size_t>(rows * out));
    for (std::size_t i = 0; i < packed_rows.size(); ++i)
        packed_rows[i] = static_cast<float>(i % 7) * 0.25f - 0.75f;
    for (std::size_t i = 0; i < panels.size(); ++i)
        panels[i] = static_cast<float>(i % 5) * 0.125f - 0.25f;
    double best[2] = {1e30, 1e30};
    for (int round = 0; round < 5; ++round)
        for (int wide = 0; wide < 2; ++wide) {
            fp32_tile_bits.store(wide ? 512 : 256);
            const auto start = std::chrono::steady_clock::now();
            for (int rep = 0; rep < 8; ++rep)
                multiply_chunk(k, false, packed_rows.data(), rows, panels.data(), 0, out / kPanel,
                               out, nullptr, y.data(), out);
            const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
            best[wide] = std::min(best[wide], took.count());
        }
    const double flops = 8.0 * 2.0 * static_cast<double>(rows * out * k);
    // The zmm tile unless it is more than 3 % slower: it issues half the instructions per FLOP
    // (one panel load and 12 FMAs with broadcast operands for 384 FLOPs, against two loads, six
    // broadcasts and 12 FMAs for 192), and on Zen 4, where the two measure within noise of each
    // other in this test, the model measured as fast or faster with it (docs/performance.md).
    const int bits = best[1] <= 1.03 * best[0] ? 512 : 256;
    fp32_tile_bits.store(bits);
    return {bits, "measured", flops / best[0] * 1e-9, flops / best[1] * 1e-9};
#elif defined(BOREAS_SIMD_AVX2)
    BOREAS_CHECK(!strict || forced_bits == 0 || forced_bits == 256,
                 "{}={}: the {} path has the 256-bit tile only (512 needs the avx512 path)", origin,
                 forced_bits, BOREAS_ISA_NAME);
    return {256, "the path", 0, 0};
#else
    BOREAS_CHECK(!strict || forced_bits == 0,
                 "{}={}: the {} path has no fp32 register tile (OpenBLAS)", origin, forced_bits,
                 BOREAS_ISA_NAME);
    return {0, "the path", 0, 0};
#endif
}

void layer_norm(const LayerNormParams& p) {
    layer_norm_rows(p.x, p.y, p.rows, p.channels, p.gamma, p.beta, p.eps);
}

void gelu(float* x, std::int64_t n) {
    constexpr std::int64_t kBlock = 4096;
    const std::int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (n > 16384)
    for (std::int64_t b = 0; b < blocks; ++b)
        gelu_row(x + b * kBlock, std::min(kBlock, n - b * kBlock));
}

}  // namespace boreas::kernels::cpu::BOREAS_ISA_NS
