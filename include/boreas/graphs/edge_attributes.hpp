#pragma once
/// Edge attributes by anemoi-graphs' formulas, evaluated in double from the float32 node
/// coordinates and rounded to float32. anemoi evaluates them in float32, where short edges and
/// destinations near the poles lose up to ~5e-5 to cancellation; Boreas gives the exact value of
/// the same formula (tests compare with anemoi's formula in float64 and in float32).

#include <span>
#include <vector>

#include "boreas/graphs/builder.hpp"

namespace boreas::graphs {

/// Great-circle length (radians) of every edge, CSR order.
std::vector<float> edge_lengths(const EdgeSet& edges, const NodeSet& source, const NodeSet& target);
/// Direction of every edge's source seen from its destination rotated to the north pole, as a
/// unit 2-vector, [E, 2], in the given convention.
std::vector<float> edge_directions(const EdgeSet& edges, const NodeSet& source,
                                    const NodeSet& target, Convention convention);

/// anemoi-graphs' NormaliserMixin over all entries of `values` pooled.
void normalise(std::vector<float>& values, Norm norm, Convention convention);

}  // namespace boreas::graphs
