// See c10d_collective.h.
#include "c10d_collective.h"

#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>

#include <stdexcept>
#include <string>

#include "error_text.h"

namespace dtokd {

namespace {

class C10dCollective : public Collective {
public:
    explicit C10dCollective(c10::intrusive_ptr<C10dGroup> group) : group_(std::move(group)) {}
    int rank() const override { return group_->getRank(); }
    int world_size() const override { return group_->getSize(); }

    // One call per tensor (c10d's vector form means one tensor per local device), all
    // queued before the first wait so the transfers follow each other without gaps.
    void sum(std::vector<at::Tensor> &tensors) override {
        run("all-reduce", tensors, [&](std::vector<at::Tensor> &one) { return group_->allreduce(one); });
    }
    void broadcast(std::vector<at::Tensor> &tensors) override {
        run("broadcast", tensors, [&](std::vector<at::Tensor> &one) { return group_->broadcast(one); });
    }

private:
    template <class Op>
    void run(const char *what, std::vector<at::Tensor> &tensors, Op op) {
        count(tensors);
        std::vector<std::vector<at::Tensor>> ones;
        ones.reserve(tensors.size());
        std::vector<c10::intrusive_ptr<c10d::Work>> work;
        try {
            for (at::Tensor &t : tensors) {
                ones.push_back({t});
                work.push_back(op(ones.back()));
            }
            for (auto &w : work) w->wait();
        } catch (const std::exception &e) {
            throw std::runtime_error("rank " + std::to_string(rank()) + " of " + std::to_string(world_size()) + ": " +
                                     what + " failed (another rank stopped, or did not answer in time): " +
                                     message_without_backtrace(e));
        }
        // The vector form may have replaced a tensor that was not contiguous: copy back.
        for (size_t i = 0; i < tensors.size(); i++)
            if (!ones[i][0].is_same(tensors[i])) tensors[i].copy_(ones[i][0]);
    }

    c10::intrusive_ptr<C10dGroup> group_;
};

}  // namespace

std::unique_ptr<Collective> make_c10d_collective(c10::intrusive_ptr<C10dGroup> group) {
    if (!group) throw std::invalid_argument("make_c10d_collective: no process group");
    return std::make_unique<C10dCollective>(std::move(group));
}

}  // namespace dtokd
