// The bridge between the model zoo's feature taps (models/classifier.h) and what
// objectives read (runtime/objective.h): the two layers do not know each other.
#pragma once
#include "classifier.h"
#include "model_handle.h"
#include "objective.h"

namespace dtokd {

FeatureRequest to_feature_request(const TapRequest &taps);
NetOutputs to_net_outputs(ModelOutputs outputs);

// One forward of `model` on `x` keeping the taps `taps` (a plain logit forward when none).
NetOutputs forward_taps(ModelHandle &model, const at::Tensor &x, const TapRequest &taps);

}  // namespace dtokd
