// The value and the gradient w.r.t. the student logits of a loss that is written as
// a plain tensor expression of the logits (dkd, dist): autograd on a detached leaf
// copy of the logits, so the result fits the logit-level path (ObjectiveValue's
// logit_grad) that `dto-logit` and the single-seed backward use, and the student's
// graph is never touched here.
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <string>

#include "objective.h"

namespace dtokd {

// {loss, logit_grad = dloss/dz} for loss = `loss_of(z)` at z = `logits`. Runs with grad
// mode on even inside a no-grad scope (reevaluate() needs the value only, but the
// objective stays one code path). `loss_of` must return a scalar.
ObjectiveValue logit_autograd(const at::Tensor &logits, const std::function<at::Tensor(const at::Tensor &)> &loss_of);

// For prepare(): both networks give logits [batch, classes] of one shape; else a
// std::invalid_argument naming `objective`.
void check_logit_pair(const std::string &objective, const NetOutputs &student, const NetOutputs &teacher);

}  // namespace dtokd
