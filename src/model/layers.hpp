#pragma once
// Parameterised layers over [rows, channels] matrices. Each declares its tensors in the
// ParameterStore under anemoi's names and runs through the CPU kernels.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "boreas/backends/backend.hpp"
#include "boreas/core/error.hpp"
#include "boreas/kernels/kernels.hpp"
#include "boreas/model/model.hpp"
#include "boreas/model/parameters.hpp"

namespace boreas::model {

/// Whether the Linears of the forward running now compute in bf16 (ForwardOptions::precision).
/// Model::forward sets it for its duration; training's forward and backward never run under it.
/// One per process: forwards of different precisions do not run at the same time.
inline std::atomic<bool> bf16_inference{false};

class InferencePrecisionScope {
  public:
    explicit InferencePrecisionScope(Precision precision)
        : previous_(bf16_inference.exchange(precision == Precision::bf16)) {}
    ~InferencePrecisionScope() { bf16_inference.store(previous_); }
    InferencePrecisionScope(const InferencePrecisionScope&) = delete;
    InferencePrecisionScope& operator=(const InferencePrecisionScope&) = delete;

  private:
    bool previous_;
};

struct Linear {
    const Tensor* weight = nullptr;  // [out, in]
    const Tensor* bias = nullptr;    // [out] or null
    std::int64_t in = 0, out = 0;
    const ParameterStore* store = nullptr;  // where the weight may be kept in bf16

    /// The weight's bf16 bits where the store keeps it so (keep_as_bf16), else null.
    const std::uint16_t* bf16_weight() const { return store ? store->bf16_bits(weight) : nullptr; }

    static Linear declare(ParameterStore& store, const std::string& name, std::int64_t in,
                          std::int64_t out, bool bias = true) {
        Linear layer;
        layer.in = in;
        layer.out = out;
        layer.store = &store;
        layer.weight = store.declare(name + ".weight", {out, in}, Init::linear_weight, in);
        if (bias) layer.bias = store.declare(name + ".bias", {out}, Init::linear_bias, in);
        return layer;
    }

    /// y[rows, out] (=|+=) x[rows, in] W^T + b.
    void apply(const float* x, std::int64_t rows, float* y, bool accumulate = false) const {
        run(x, rows, y, accumulate, false);
    }

    /// y[rows, out] = GELU(x[rows, in] W^T + b), the GELU fused into the GEMM's epilogue;
    /// `pre` (optional) receives x W^T + b too.
    void apply_gelu(const float* x, std::int64_t rows, float* y, float* pre = nullptr) const {
        run(x, rows, y, false, true, pre);
    }

  private:
    void run(const float* x, std::int64_t rows, float* y, bool accumulate, bool gelu,
             float* pre = nullptr) const {
        kernels::LinearParams p;
        p.x = x;
        p.weight = weight->data();
        p.weight_bf16 = bf16_weight();
        p.bias = bias ? bias->data() : nullptr;
        p.y = y;
        p.rows = rows;
        p.in = in;
        p.out = out;
        p.accumulate = accumulate;
        p.gelu = gelu;
        p.pre_activation = pre;
        p.bf16 = bf16_inference.load(std::memory_order_relaxed) || p.weight_bf16 != nullptr;
        backends::active().linear(p);
    }
};

struct LayerNorm {
    const Tensor* gamma = nullptr;
    const Tensor* beta = nullptr;
    std::int64_t channels = 0;

    static LayerNorm declare(ParameterStore& store, const std::string& name,
                             std::int64_t channels) {
        LayerNorm layer;
        layer.channels = channels;
        layer.gamma = store.declare(name + ".weight", {channels}, Init::ones);
        layer.beta = store.declare(name + ".bias", {channels}, Init::zeros);
        return layer;
    }

    void apply(const float* x, std::int64_t rows, float* y) const {
        kernels::LayerNormParams p;
        p.x = x;
        p.y = y;
        p.gamma = gamma->data();
        p.beta = beta->data();
        p.rows = rows;
        p.channels = channels;
        backends::active().layer_norm(p);
    }
};

/// Linears that read the same input, stacked along their outputs: weight [sum of outs, in], Linear
/// i in rows [sum of earlier outs, + out_i); bias likewise (zeros where a Linear has none), or
/// empty when none has one. Forward and backward of side-by-side Linears both run on this.
struct StackedLinears {
    Tensor weight, bias;
    std::vector<std::uint16_t> weight_bf16;  // instead of weight where the layers keep bf16
    std::int64_t in = 0, out = 0;

    explicit StackedLinears(std::initializer_list<const Linear*> layers) {
        in = (*layers.begin())->in;
        bool any_bias = false;
        for (const Linear* l : layers) {
            BOREAS_CHECK(l->in == in,
                         "side-by-side Linears must read the same input width ({} vs {})", l->in,
                         in);
            out += l->out;
            any_bias = any_bias || l->bias != nullptr;
        }
        const bool bf16 = (*layers.begin())->bf16_weight() != nullptr;
        if (bf16)
            weight_bf16.resize(static_cast<std::size_t>(out * in));
        else
            weight = Tensor::uninitialised({out, in});
        if (any_bias) bias = Tensor({out});
        std::int64_t offset = 0;
        for (const Linear* l : layers) {
            BOREAS_CHECK((l->bf16_weight() != nullptr) == bf16,
                         "side-by-side Linears keep their weights in different precisions");
            if (bf16)
                std::copy_n(l->bf16_weight(), l->out * in, weight_bf16.data() + offset * in);
            else
                std::copy_n(l->weight->data(), l->out * in, weight.row(offset));
            if (l->bias) std::copy_n(l->bias->data(), l->out, bias.data() + offset);
            offset += l->out;
        }
    }
};

/// The Linear of `stacked` over x's rows (its output left for the caller to point at).
inline kernels::LinearParams stacked_params(const StackedLinears& stacked, const float* x,
                                            std::int64_t rows) {
    kernels::LinearParams p;
    p.x = x;
    p.weight = stacked.weight.data();
    p.weight_bf16 = stacked.weight_bf16.empty() ? nullptr : stacked.weight_bf16.data();
    p.bias = stacked.bias.numel() ? stacked.bias.data() : nullptr;
    p.rows = rows;
    p.in = stacked.in;
    p.out = stacked.out;
    p.bf16 = bf16_inference.load(std::memory_order_relaxed) || p.weight_bf16 != nullptr;
    return p;
}

/// Linears that read the same input, run as one GEMM with their outputs side by side: y[rows,
/// sum of outs], Linear i in columns [sum of earlier outs, + out_i). The input is packed once and
/// the GEMM is wider (better blocked) than each part; costs a copy of the weights per call.
inline void apply_side_by_side(std::initializer_list<const Linear*> layers, const float* x,
                               std::int64_t rows, float* y) {
    const StackedLinears stacked(layers);
    auto p = stacked_params(stacked, x, rows);
    p.y = y;
    backends::active().linear(p);
}

/// apply_side_by_side in the bf16 forward, its result kept as bf16 bits (LinearParams::y_bf16):
/// the mappers' keys and values, which only graph attention reads.
inline void apply_side_by_side(std::initializer_list<const Linear*> layers, const float* x,
                               std::int64_t rows, std::uint16_t* y_bf16) {
    const StackedLinears stacked(layers);
    auto p = stacked_params(stacked, x, rows);
    p.y_bf16 = y_bf16;
    p.bf16 = true;
    backends::active().linear(p);
}

/// y[rows, out] += mlp_out(GELU(mlp_in(norm(x)))), norm a LayerNorm or none: the inference MLP
/// in one kernel, its normalised input and hidden rows kept in cache where the widths allow
/// (kernels::MlpParams). y may be x.
inline void apply_mlp(const Linear& mlp_in, const Linear& mlp_out, const LayerNorm* norm,
                      const float* x, std::int64_t rows, float* y) {
    kernels::MlpParams p;
    p.x = x;
    if (norm) {
        p.layer_norm = true;
        p.norm_gamma = norm->gamma->data();
        p.norm_beta = norm->beta->data();
    }
    p.weight_in = mlp_in.weight->data();
    p.weight_in_bf16 = mlp_in.bf16_weight();
    p.bias_in = mlp_in.bias ? mlp_in.bias->data() : nullptr;
    p.weight_out = mlp_out.weight->data();
    p.weight_out_bf16 = mlp_out.bf16_weight();
    p.bias_out = mlp_out.bias ? mlp_out.bias->data() : nullptr;
    p.y = y;
    p.rows = rows;
    p.in = mlp_in.in;
    p.hidden = mlp_in.out;
    p.out = mlp_out.out;
    p.accumulate = true;
    p.bf16 = bf16_inference.load(std::memory_order_relaxed) || p.weight_in_bf16 != nullptr;
    backends::active().mlp(p);
}

/// y[r] (=|+=) x[r] for `rows` rows of `cols` values (row strides x_stride, y_stride) on the
/// active backend: the forward's row copies and residual adds stay on the model's device.
inline void copy_rows(const float* x, std::int64_t x_stride, float* y, std::int64_t y_stride,
                      std::int64_t rows, std::int64_t cols, bool add = false) {
    kernels::CopyRowsParams p;
    p.x = x;
    p.y = y;
    p.rows = rows;
    p.cols = cols;
    p.x_stride = x_stride;
    p.y_stride = y_stride;
    p.add = add;
    backends::active().copy_rows(p);
}

/// anemoi's hidden width for a ratio: int(C * ratio + 0.5) (models/layers/utils.py).
inline std::int64_t hidden_width(std::int64_t channels, double ratio) {
    return static_cast<std::int64_t>(static_cast<double>(channels) * ratio + 0.5);
}

}  // namespace boreas::model
