// See net_taps.h.
#include "net_taps.h"

namespace dtokd {

FeatureRequest to_feature_request(const TapRequest &taps) {
    FeatureRequest r;
    r.feats = taps.feats;
    r.preact_feats = taps.preact_feats;
    r.pooled = taps.pooled;
    return r;
}

NetOutputs to_net_outputs(ModelOutputs outputs) {
    NetOutputs n;
    n.logits = std::move(outputs.logits);
    n.feats = std::move(outputs.feats);
    n.preact_feats = std::move(outputs.preact_feats);
    n.pooled = std::move(outputs.pooled);
    return n;
}

NetOutputs forward_taps(ModelHandle &model, const at::Tensor &x, const TapRequest &taps) {
    if (!taps.any()) {
        NetOutputs out;
        out.logits = model.forward(x);
        return out;
    }
    return to_net_outputs(model.forward_features(x, to_feature_request(taps)));
}

}  // namespace dtokd
