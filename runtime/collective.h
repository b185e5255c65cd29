// How the ranks of a data-parallel run agree on what the trade-off needs. A policy given
// a Collective with world_size() > 1 sums across ranks only what its math uses (the
// losses, the gradient arenas or the logit Gram's numbers, objective modules' gradients),
// so every rank computes the same pi and applies the same update: see tradeoff_policies.cpp
// and docs/data_parallel.md. The runtime never makes one: the pipeline wraps a c10d
// process group (c10d_collective.h); tests may run ranks as threads.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace dtokd {

class Collective {
public:
    virtual ~Collective() = default;
    virtual int rank() const = 0;
    virtual int world_size() const = 0;
    // In place: each tensor becomes the elementwise sum of that tensor over the ranks.
    // Every rank passes the same count, shapes and dtypes in the same order. Throws
    // std::runtime_error naming the failure (a rank gone, a timeout).
    virtual void sum(std::vector<at::Tensor> &tensors) = 0;
    // In place: each tensor becomes rank 0's.
    virtual void broadcast(std::vector<at::Tensor> &tensors) = 0;
    // Payload bytes this rank has passed to sum() and broadcast() so far (benchmarks).
    int64_t bytes() const { return bytes_; }

protected:
    void count(const std::vector<at::Tensor> &tensors);

private:
    int64_t bytes_ = 0;
};

// True when `c` joins several ranks (null: one process).
inline bool distributed(const Collective *c) { return c && c->world_size() > 1; }

// Sums `values` (float64) over the ranks in one call.
void sum_values(Collective &c, std::vector<double> &values);

}  // namespace dtokd
