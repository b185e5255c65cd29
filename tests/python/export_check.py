# The PyTorch side of tests/test_export_cli.cpp: loads a student `dtokd export` wrote,
# as a user would, and returns what PyTorch computes from it.
#   export_check.py ZOO_MODULE MODEL NUM_CLASSES IN_CHANNELS STATE_DICT TORCHSCRIPT IN.pt OUT.pt
# STATE_DICT must be what torch.load reads as a dict and what the zoo model of MODEL takes
# with load_state_dict(strict=True); OUT.pt gets its eval logits on IN.pt's "x" (logits_pth),
# the TorchScript file's (logits_ts; TORCHSCRIPT "-" for none), every state_dict entry as
# loaded ("sd/<key>") and whether its keys come in the model's own state_dict order.
import importlib.util
import sys

import torch

zoo_path, name, classes, in_channels, state_dict_path, ts_path, in_path, out_path = sys.argv[1:9]
spec = importlib.util.spec_from_file_location("dtokd_zoo", zoo_path)
zoo = importlib.util.module_from_spec(spec)
spec.loader.exec_module(zoo)

# IN.pt is torch::pickle_save's (a dict tagged with torch.jit._pickle.restore_type_tag):
# weights_only=False, as torch.load refuses that global by default from torch 2.6.
x = torch.load(in_path, weights_only=False)["x"]
# weights_only: torch.load's default from torch 2.6, which refuses anything but tensors and plain containers.
state_dict = torch.load(state_dict_path, weights_only=True)
if not isinstance(state_dict, dict):
    sys.exit("%s: torch.load gave a %s; expected a dict" % (state_dict_path, type(state_dict).__name__))
model = zoo.build(name, int(classes), int(in_channels))
model.load_state_dict(state_dict, strict=True)
model.eval()
out = {}
with torch.no_grad():
    out["logits_pth"] = model(x)
    if ts_path != "-":
        out["logits_ts"] = torch.jit.load(ts_path).eval()(x)
out["same_order"] = torch.tensor(list(state_dict) == list(model.state_dict()))
for key, value in state_dict.items():
    out["sd/" + key] = value
torch.save(out, out_path)
