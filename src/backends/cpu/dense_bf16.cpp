// bf16 inference Linear and MLP (LinearParams::bf16): anemoi's bf16 autocast numbers, x and W
// rounded to bf16, fp32 accumulation, the result rounded to bf16.
//
// Two ways to the same numbers:
// - avx512 path on a CPU with AVX512-BF16: W packed once per call into 32-column bf16 panels of
//   k-pairs, x converted to bf16 48 rows at a time, and a 12 x 32 register tile of vdpbf16ps
//   (24 zmm accumulators; each instruction is 16 lanes x 2 products) over them: half the bytes
//   of the fp32 GEMM for the weights and twice its products per instruction.
// - everywhere else ("emulated"): W and x rounded to bf16 values held in fp32, through this
//   path's fp32 Linear. Products of two bf16 are exact in fp32, so the two differ only by the
//   order of the fp32 sums (and the final bf16 rounding of a sum that lands on a tie).
#include "bf16_tile.hpp"
#include "dense_bf16_rounding.hpp"
#include "simd.hpp"

namespace boreas::kernels::cpu::BOREAS_ISA_NS {
namespace {

/// Rows converted per chunk on the emulated path (and through the MLP): bounds the rounded copy
/// of x and the fp32 result to a few MiB per thread whatever the row count.
constexpr std::int64_t kEmulatedChunkRows = 1024;
/// Rows of the bf16 MLP per chunk: its [rows, hidden] activation, 32 MiB at hidden 4096.
constexpr std::int64_t kMlpChunkRows = 2048;

/// rows x cols of raw (x W^T + b, fp32) become the autocast result in y: rounded, GELU'd and
/// rounded again, or added to y. raw may be y itself when not accumulating.
void finish_rows(const LinearParams& p, float* raw, std::int64_t ld_raw, float* y, std::int64_t ldy,
                 std::int64_t r0, std::int64_t rows, std::int64_t c0, std::int64_t cols) {
    for (std::int64_t r = 0; r < rows; ++r) {
        float* t = raw + r * ld_raw;
        round_to_bf16(t, cols);
        if (p.gelu) {
            if (p.pre_activation) simd::copy(p.pre_activation + (r0 + r) * p.out + c0, t, cols);
            gelu_row(t, cols);
            round_to_bf16(t, cols);
        }
        if (p.y_bf16 != nullptr) {
            std::uint16_t* bits = p.y_bf16 + (r0 + r) * ldy + c0;
            for (std::int64_t c = 0; c < cols; ++c)
                bits[c] = static_cast<std::uint16_t>(std::bit_cast<std::uint32_t>(t[c]) >> 16);
            continue;
        }
        float* out = y + (r0 + r) * ldy + c0;
        if (p.accumulate)
            simd::add(out, t, cols);
        else if (out != t)
            simd::copy(out, t, cols);
    }
}

void check(const LinearParams& p) {
    BOREAS_CHECK(p.x && (p.weight || p.weight_bf16) && (p.y || p.y_bf16) && p.rows >= 0 &&
                     p.in > 0 && p.out > 0,
                 "linear (bf16): invalid parameters (rows {}, in {}, out {})", p.rows, p.in, p.out);
    BOREAS_CHECK(!p.y_bf16 || !(p.gelu || p.accumulate || p.y),
                 "linear (bf16): bf16 output takes neither gelu, accumulate nor y");
    BOREAS_CHECK(!(p.gelu && p.accumulate), "linear: the GELU epilogue cannot accumulate");
}

/// W rounded to bf16 values, in fp32, in the layout given.
std::vector<float> rounded_weight(const LinearParams& p) {
    std::vector<float> weight(static_cast<std::size_t>(p.out * p.in));
    if (p.weight_bf16) {
        for (std::size_t i = 0; i < weight.size(); ++i)
            weight[i] = std::bit_cast<float>(static_cast<std::uint32_t>(p.weight_bf16[i]) << 16);
        return weight;
    }
    std::copy_n(p.weight, weight.size(), weight.data());
    round_to_bf16(weight.data(), static_cast<std::int64_t>(weight.size()));
    return weight;
}

void linear_bf16_emulated(const LinearParams& p, const std::vector<float>& weight) {
    const std::int64_t ldx = p.x_stride ? p.x_stride : p.in;
    const std::int64_t ldy = p.y_stride ? p.y_stride : p.out;
    const std::int64_t chunk = std::min(kEmulatedChunkRows, p.rows);
    std::vector<float> x(static_cast<std::size_t>(chunk * p.in));
    std::vector<float> raw(static_cast<std::size_t>(chunk * p.out));
    for (std::int64_t r0 = 0; r0 < p.rows; r0 += chunk) {
        const std::int64_t rows = std::min(chunk, p.rows - r0);
        for (std::int64_t r = 0; r < rows; ++r)
            simd::copy(x.data() + r * p.in, p.x + (r0 + r) * ldx, p.in);
        round_to_bf16(x.data(), rows * p.in);
        LinearParams q;
        q.x = x.data();
        q.weight = weight.data();
        q.weight_transposed = p.weight_transposed;
        q.bias = p.bias;
        q.y = raw.data();
        q.rows = rows, q.in = p.in, q.out = p.out;
        linear(q);
        finish_rows(p, raw.data(), p.out, p.y, ldy, r0, rows, 0, p.out);
    }
}

#ifdef BOREAS_ISA_AVX512

constexpr std::int64_t kPanelCols = bf16::kPanelCols;  // two zmm of accumulators per tile row
constexpr std::int64_t kTileRowsBf16 = bf16::kTileRows;
constexpr std::int64_t kChunkRowsBf16 = 8 * kTileRowsBf16;

/// W[out, in] as bf16 bits, from the bf16 weight where given.
std::uint16_t weight_bits(const LinearParams& p, std::int64_t out, std::int64_t in) {
    const std::int64_t i = p.weight_transposed ? in * p.out + out : out * p.in + in;
    return p.weight_bf16 ? p.weight_bf16[i] : bf16_bits(p.weight[i]);
}

/// W as 32-column panels of k-pairs: panel j, pair k holds 64 bf16, column c's (W[c, 2k],
/// W[c, 2k + 1]) at 2c: one zmm load gives 16 columns' pairs, what vdpbf16ps multiplies with a
/// broadcast pair of x. Columns past out and the odd k past in are zero.
struct PackedWeight {
    std::vector<std::uint16_t> data;
    std::int64_t pairs = 0, panels = 0;
    const std::uint16_t* panel(std::int64_t j) const { return data.data() + j * pairs * 64; }
};

PackedWeight pack_weight(const LinearParams& p) {
    PackedWeight w;
    w.pairs = (p.in + 1) / 2;
    w.panels = (p.out + kPanelCols - 1) / kPanelCols;
    w.data.resize(static_cast<std::size_t>(w.panels * w.pairs * 64));
#pragma omp parallel for schedule(static) if (p.out * p.in > 65536)
    for (std::int64_t j = 0; j < w.panels; ++j) {
        std::uint16_t* panel = w.data.data() + j * w.pairs * 64;
        for (std::int64_t c = 0; c < kPanelCols; ++c) {
            const std::int64_t col = j * kPanelCols + c;
            for (std::int64_t k = 0; k < 2 * w.pairs; ++k)
                panel[(k / 2) * 64 + 2 * c + (k % 2)] =
                    (col < p.out && k < p.in) ? weight_bits(p, col, k) : 0;
        }
    }
    return w;
}

/// c[12 rows, 32 columns] (ldc apart) = a[12, pairs] (bf16 pairs, `stride` apart) times the
/// panel, plus bias[0, 32) (zero past the columns).
[[BOREAS_BF16_TARGET]] void tile_bf16(std::int64_t pairs, const std::uint32_t* a,
                                      std::int64_t stride, const std::uint16_t* panel,
                                      const float* bias, float* c, std::int64_t ldc) {
    const __m512 bias0 = _mm512_loadu_ps(bias), bias1 = _mm512_loadu_ps(bias + 16);
    bf16::tile(pairs, a, stride, panel, [&](int r, __m512 lo, __m512 hi) {
        _mm512_storeu_ps(c + r * ldc, _mm512_add_ps(lo, bias0));
        _mm512_storeu_ps(c + r * ldc + 16, _mm512_add_ps(hi, bias1));
    });
}

void linear_bf16_native(const LinearParams& p, const PackedWeight& weight) {
    const std::int64_t ldx = p.x_stride ? p.x_stride : p.in;
    const std::int64_t ldy = p.y_stride ? p.y_stride : p.out;
    const std::int64_t padded_out = weight.panels * kPanelCols;
    std::vector<float> bias(static_cast<std::size_t>(padded_out), 0.0f);
    if (p.bias) std::copy_n(p.bias, p.out, bias.data());
    const std::int64_t stride = bf16::tile_stride(weight.pairs);
    const std::int64_t chunks = (p.rows + kChunkRowsBf16 - 1) / kChunkRowsBf16;
    const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    const int used = static_cast<int>(std::clamp<std::int64_t>(chunks, 1, threads));
#pragma omp parallel num_threads(used) if (used > 1)
    {
        std::vector<std::uint32_t> a(static_cast<std::size_t>(kChunkRowsBf16 * stride));
        std::vector<float> raw(static_cast<std::size_t>(kChunkRowsBf16 * padded_out));
#pragma omp for schedule(dynamic, 1)
        for (std::int64_t chunk = 0; chunk < chunks; ++chunk) {
            const std::int64_t r0 = chunk * kChunkRowsBf16;
            const std::int64_t rows = std::min(kChunkRowsBf16, p.rows - r0);
            const std::int64_t tiles = (rows + kTileRowsBf16 - 1) / kTileRowsBf16;
            bf16::convert_rows(p.x + r0 * ldx, ldx, rows, tiles * kTileRowsBf16, p.in, stride,
                               a.data());
            for (std::int64_t j = 0; j < weight.panels; ++j)
                for (std::int64_t t = 0; t < tiles; ++t)
                    tile_bf16(weight.pairs, a.data() + t * kTileRowsBf16 * stride, stride,
                              weight.panel(j), bias.data() + j * kPanelCols,
                              raw.data() + t * kTileRowsBf16 * padded_out + j * kPanelCols,
                              padded_out);
            finish_rows(p, raw.data(), padded_out, p.y, ldy, r0, rows, 0, p.out);
        }
    }
}

#endif  // BOREAS_ISA_AVX512

/// A Linear's weight made ready once for any number of row chunks.
struct PreparedWeight {
#ifdef BOREAS_ISA_AVX512
    PackedWeight packed;
#endif
    std::vector<float> rounded;
};

PreparedWeight prepare(const LinearParams& p) {
    PreparedWeight w;
#ifdef BOREAS_ISA_AVX512
    if (bf16::cpu_has_dot()) {
        w.packed = pack_weight(p);
        return w;
    }
#endif
    w.rounded = rounded_weight(p);
    return w;
}

void run(const LinearParams& p, const PreparedWeight& w) {
    if (p.rows == 0) return;
#ifdef BOREAS_ISA_AVX512
    if (bf16::cpu_has_dot()) {
        linear_bf16_native(p, w.packed);
        return;
    }
#endif
    linear_bf16_emulated(p, w.rounded);
}

}  // namespace

const char* bf16_method() {
#ifdef BOREAS_ISA_AVX512
    if (bf16::cpu_has_dot()) return "avx512_bf16";
#endif
    return "emulated";
}

void linear_bf16(const LinearParams& p) {
    check(p);
    if (p.rows == 0) return;
    run(p, prepare(p));
}

void mlp_bf16(const MlpParams& p) {
    BOREAS_CHECK(p.x && (p.weight_in || p.weight_in_bf16) && (p.weight_out || p.weight_out_bf16) &&
                     p.y && p.rows >= 0 && p.in > 0 && p.hidden > 0 && p.out > 0,
                 "mlp (bf16): invalid parameters (rows {}, in {}, hidden {}, out {})", p.rows, p.in,
                 p.hidden, p.out);
    if (p.rows == 0) return;
    LinearParams first;
    first.weight = p.weight_in;
    first.weight_bf16 = p.weight_in_bf16;
    first.bias = p.bias_in;
    first.in = p.in, first.out = p.hidden;
    first.gelu = true;
    first.bf16 = true;
    LinearParams second;
    second.weight = p.weight_out;
    second.weight_bf16 = p.weight_out_bf16;
    second.bias = p.bias_out;
    second.in = p.hidden, second.out = p.out;
    second.accumulate = p.accumulate;
    second.bf16 = true;
    const PreparedWeight weight_in = prepare(first), weight_out = prepare(second);
    // Chunks of rows: the hidden activation exists for kMlpChunkRows rows at a time. A chunk
    // reads its rows of x (LayerNorm, first Linear) before it writes them in y, so y may be x.
    const std::int64_t chunk = std::min(kMlpChunkRows, p.rows);
    std::vector<float> normalised(p.layer_norm ? static_cast<std::size_t>(chunk * p.in) : 0);
    std::vector<float> hidden(static_cast<std::size_t>(chunk * p.hidden));
    for (std::int64_t r0 = 0; r0 < p.rows; r0 += chunk) {
        const std::int64_t rows = std::min(chunk, p.rows - r0);
        const float* x = p.x + r0 * p.in;
        if (p.layer_norm) {
            LayerNormParams norm;
            norm.x = x;
            norm.y = normalised.data();
            norm.gamma = p.norm_gamma;
            norm.beta = p.norm_beta;
            norm.rows = rows;
            norm.channels = p.in;
            norm.eps = p.norm_eps;
            layer_norm(norm);
            x = normalised.data();
        }
        first.x = x;
        first.y = hidden.data();
        first.rows = rows;
        run(first, weight_in);
        second.x = hidden.data();
        second.y = p.y + r0 * p.out;
        second.rows = rows;
        run(second, weight_out);
    }
}

}  // namespace boreas::kernels::cpu::BOREAS_ISA_NS
