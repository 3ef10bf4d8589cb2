#pragma once
/// Edge and node attributes exactly as anemoi-graphs computes them (before normalisation in
/// double precision from the float32 node coordinates the model sees).

#include <span>
#include <vector>

#include "boreas/graphs/builder.hpp"

namespace boreas::graphs {

/// Great-circle length (radians) of every edge, CSR order.
std::vector<double> edge_lengths(const EdgeSet& edges, const NodeSet& source, const NodeSet& target);
/// Direction of every edge's source seen from its destination rotated to the north pole, as a
/// unit 2-vector, [E, 2], in the given convention.
std::vector<double> edge_directions(const EdgeSet& edges, const NodeSet& source,
                                    const NodeSet& target, Convention convention);

/// anemoi-graphs' NormaliserMixin over all entries of `values` pooled.
void normalise(std::vector<double>& values, Norm norm, Convention convention);

}  // namespace boreas::graphs
