// See logit_autograd.h.
#include "logit_autograd.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>
#include <c10/core/GradMode.h>

#include <stdexcept>

namespace dtokd {

ObjectiveValue logit_autograd(const at::Tensor &logits, const std::function<at::Tensor(const at::Tensor &)> &loss_of) {
    c10::AutoGradMode grad_on(true);
    const at::Tensor z = logits.detach().requires_grad_(true);
    const at::Tensor loss = loss_of(z);
    if (loss.numel() != 1)
        throw std::invalid_argument("logit_autograd: the loss has shape " + std::string(c10::str(loss.sizes())) +
                                    "; expected a scalar");
    ObjectiveValue v;
    v.set_loss(loss);
    v.logit_grad = torch::autograd::grad({loss}, {z}).at(0);
    return v;
}

void check_logit_pair(const std::string &objective, const NetOutputs &student, const NetOutputs &teacher) {
    if (!student.logits.defined() || student.logits.dim() != 2)
        throw std::invalid_argument(objective + ": expected student logits [batch, classes]");
    if (!teacher.logits.defined() || teacher.logits.sizes() != student.logits.sizes())
        throw std::invalid_argument(objective + ": expected teacher logits of the student's shape " +
                                    std::string(c10::str(student.logits.sizes())));
}

}  // namespace dtokd
