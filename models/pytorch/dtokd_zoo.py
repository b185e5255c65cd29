# dtokd's model zoo in plain PyTorch, for the students `dtokd export` writes.
#
# Each class here computes what the LibTorch module of the same name in models/ computes
# (eval-mode logits equal within 1e-5), and its state_dict keys and shapes are those of
# the reference PyTorch code of the CIFAR zoo (RepDistiller / mdistiller models/cifar), so
# an exported student loads into either with load_state_dict(strict=True). cnn_small and
# cnn_large are dtokd's own Fashion-MNIST models. Written for dtokd (not copied from the
# reference); it works with torch 1.13 and 2.x and every model is TorchScript-able.
#
# Differences from the reference architectures, none of which changes a key or a shape:
#   - every model ends in a global average pool where the reference uses a fixed
#     AvgPool2d(8) / avg_pool2d(4) / AvgPool2d(2): the same on 32x32 inputs, and 28x28 works;
#   - the stem takes `in_channels` (the reference fixes 3);
#   - forward(x) returns the logits only (no is_feat / preact features).
#
# In Python:   model = dtokd_zoo.build("resnet8x4", num_classes=100)
#              model.load_state_dict(torch.load("student.pth"))
# As a tool (dtokd export --format torchscript runs it):
#   python3 dtokd_zoo.py torchscript MODEL NUM_CLASSES IN_CHANNELS STATE_DICT OUT
import sys
from typing import Callable, Dict, List

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:  # only the tool's caller reads this code path's exit status
    if __name__ == "__main__":
        sys.stderr.write("dtokd_zoo.py: python3 cannot import torch (%s); install python3-torch\n" % e)
        sys.exit(3)
    raise

__all__ = ["build", "model_names"]


def _conv(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=k, stride=stride, padding=k // 2, groups=groups, bias=bias)


def _global_pool(x: torch.Tensor) -> torch.Tensor:
    return F.adaptive_avg_pool2d(x, 1).flatten(1)


def _shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    n, c, h, w = x.size()
    return x.view(n, groups, c // groups, h, w).permute(0, 2, 1, 3, 4).reshape(n, c, h, w)


# ---- cnn_small, cnn_large (dtokd's own; models/small_cnn.*) -------------------------


class CnnSmall(nn.Module):
    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.conv1 = _conv(in_channels, 8, 3, bias=True)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = _conv(8, 16, 3, bias=True)
        self.bn2 = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16 * 7 * 7, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        return self.fc(F.adaptive_avg_pool2d(x, 7).flatten(1))


class CnnLarge(nn.Module):
    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.conv1 = _conv(in_channels, 32, 3, bias=True)
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = _conv(32, 64, 3, bias=True)
        self.bn2 = nn.BatchNorm2d(64)
        self.fc1 = nn.Linear(64 * 7 * 7, 128)
        self.dropout = nn.Dropout(0.25)
        self.fc2 = nn.Linear(128, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        x = F.relu(self.fc1(F.adaptive_avg_pool2d(x, 7).flatten(1)))
        return self.fc2(self.dropout(x))


# ---- CIFAR ResNets: resnet8..110, resnet8x4, resnet32x4 (models/resnet_cifar.*) ------


class ResNetBasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = _conv(cin, cout, 3, stride)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = _conv(cout, cout, 3)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = (nn.Sequential(_conv(cin, cout, 1, stride), nn.BatchNorm2d(cout))
                           if stride != 1 or cin != cout else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        if self.downsample is not None:
            return F.relu(out + self.downsample(x))
        return F.relu(out + x)


class ResNetCifar(nn.Module):
    def __init__(self, depth: int, filters: List[int], in_channels: int, num_classes: int):
        super().__init__()
        if depth < 8 or (depth - 2) % 6 != 0:
            raise ValueError("ResNetCifar: depth %d; expected 6n + 2" % depth)
        n = (depth - 2) // 6
        self.conv1 = _conv(in_channels, filters[0], 3)
        self.bn1 = nn.BatchNorm2d(filters[0])
        self.layer1 = self._stage(filters[0], filters[1], n, 1)
        self.layer2 = self._stage(filters[1], filters[2], n, 2)
        self.layer3 = self._stage(filters[2], filters[3], n, 2)
        self.fc = nn.Linear(filters[3], num_classes)

    @staticmethod
    def _stage(cin: int, cout: int, blocks: int, stride: int) -> nn.Sequential:
        return nn.Sequential(*[ResNetBasicBlock(cin if i == 0 else cout, cout, stride if i == 0 else 1)
                               for i in range(blocks)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(_global_pool(x))


# ---- Wide ResNets: wrn_16_1, wrn_16_2, wrn_40_1, wrn_40_2 (models/wide_resnet.*) -----


class WrnBlock(nn.Module):
    """Pre-activation block; a width change routes the activated input through convShortcut."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = _conv(cin, cout, 3, stride)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = _conv(cout, cout, 3)
        self.convShortcut = _conv(cin, cout, 1, stride) if cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = F.relu(self.bn1(x))
        out = self.conv2(F.relu(self.bn2(self.conv1(act))))
        if self.convShortcut is not None:
            return self.convShortcut(act) + out
        return x + out


class WrnStage(nn.Module):
    def __init__(self, blocks: int, cin: int, cout: int, stride: int):
        super().__init__()
        self.layer = nn.Sequential(*[WrnBlock(cin if i == 0 else cout, cout, stride if i == 0 else 1)
                                     for i in range(blocks)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class WideResNet(nn.Module):
    def __init__(self, depth: int, widen: int, in_channels: int, num_classes: int):
        super().__init__()
        if depth < 10 or (depth - 4) % 6 != 0:
            raise ValueError("WideResNet: depth %d; expected 6n + 4" % depth)
        n = (depth - 4) // 6
        self.conv1 = _conv(in_channels, 16, 3)
        self.block1 = WrnStage(n, 16, 16 * widen, 1)
        self.block2 = WrnStage(n, 16 * widen, 32 * widen, 2)
        self.block3 = WrnStage(n, 32 * widen, 64 * widen, 2)
        self.bn1 = nn.BatchNorm2d(64 * widen)
        self.fc = nn.Linear(64 * widen, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block3(self.block2(self.block1(self.conv1(x))))
        return self.fc(_global_pool(F.relu(self.bn1(x))))


# ---- VGG with BatchNorm: vgg8, vgg11, vgg13 (models/vgg_cifar.*) ----------------------

_VGG_BLOCKS = {
    8: [[64], [128], [256], [512], [512]],
    11: [[64], [128], [256, 256], [512, 512], [512, 512]],
    13: [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
}


def _vgg_block(widths: List[int], cin: int) -> nn.Sequential:
    # conv(bias)-BN-ReLU per width, without the last ReLU (forward applies it): indices
    # 0, 1, (2), 3, 4 ... are the reference's block<i>.<j> keys.
    layers: List[nn.Module] = []
    for w in widths:
        layers += [nn.Conv2d(cin, w, kernel_size=3, padding=1), nn.BatchNorm2d(w), nn.ReLU()]
        cin = w
    return nn.Sequential(*layers[:-1])


class VggCifar(nn.Module):
    def __init__(self, depth: int, in_channels: int, num_classes: int):
        super().__init__()
        b = _VGG_BLOCKS[depth]
        self.block0 = _vgg_block(b[0], in_channels)
        self.block1 = _vgg_block(b[1], b[0][-1])
        self.block2 = _vgg_block(b[2], b[1][-1])
        self.block3 = _vgg_block(b[3], b[2][-1])
        self.block4 = _vgg_block(b[4], b[3][-1])
        self.classifier = nn.Linear(b[4][-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height = x.shape[2]
        x = F.relu(self.block0(x))
        x = F.relu(self.block1(F.max_pool2d(x, 2, 2)))
        x = F.relu(self.block2(F.max_pool2d(x, 2, 2)))
        x = F.relu(self.block3(F.max_pool2d(x, 2, 2)))
        if height == 64:  # the reference's pool3 runs only on 64x64 inputs
            x = F.max_pool2d(x, 2, 2)
        x = F.relu(self.block4(x))
        return self.classifier(_global_pool(x))


# ---- MobileNetV2, mobile_half (models/mobilenet_v2_cifar.*) --------------------------


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expansion: int):
        super().__init__()
        mid = cin * expansion
        self.use_residual = stride == 1 and cin == cout
        # The reference keeps the 1x1 expand conv even at expansion 1.
        self.conv = nn.Sequential(
            _conv(cin, mid, 1), nn.BatchNorm2d(mid), nn.ReLU(),
            _conv(mid, mid, 3, stride, groups=mid), nn.BatchNorm2d(mid), nn.ReLU(),
            _conv(mid, cout, 1), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_residual:
            return x + self.conv(x)
        return self.conv(x)


class MobileNetV2Cifar(nn.Module):
    def __init__(self, expansion: int, width: float, in_channels: int, num_classes: int):
        super().__init__()
        settings = [(1, 16, 1, 1), (expansion, 24, 2, 1), (expansion, 32, 3, 2), (expansion, 64, 4, 2),
                    (expansion, 96, 3, 1), (expansion, 160, 3, 2), (expansion, 320, 1, 1)]
        cin = int(32 * width)  # channel counts truncate c * width, as the reference does
        self.conv1 = nn.Sequential(_conv(in_channels, cin, 3, 2), nn.BatchNorm2d(cin), nn.ReLU())
        stages: List[nn.Module] = []
        for t, c, n, s in settings:
            cout = int(c * width)
            units: List[nn.Module] = []
            for i in range(n):
                units.append(InvertedResidual(cin, cout, s if i == 0 else 1, t))
                cin = cout
            stages.append(nn.Sequential(*units))
        self.blocks = nn.ModuleList(stages)
        last = int(1280 * width) if width > 1.0 else 1280
        self.conv2 = nn.Sequential(_conv(cin, last, 1), nn.BatchNorm2d(last), nn.ReLU())
        self.classifier = nn.Sequential(nn.Linear(last, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        for stage in self.blocks:
            x = stage(x)
        return self.classifier(_global_pool(self.conv2(x)))


# ---- ShuffleNet V1, shufflev1 (models/shufflenet_v1.*) -------------------------------


class ShuffleV1Unit(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, groups: int):
        super().__init__()
        mid = cout // 4
        # The reference's first 1x1 conv is ungrouped on the 24-channel stem.
        self.first_groups = 1 if cin == 24 else groups
        self.stride = stride
        self.conv1 = _conv(cin, mid, 1, groups=self.first_groups)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = _conv(mid, mid, 3, stride, groups=mid)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = _conv(mid, cout, 1, groups=groups)
        self.bn3 = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = _shuffle(F.relu(self.bn1(self.conv1(x))), self.first_groups)
        out = self.bn3(self.conv3(F.relu(self.bn2(self.conv2(out)))))
        if self.stride == 2:
            return F.relu(torch.cat([out, F.avg_pool2d(x, 3, 2, 1)], 1))
        return F.relu(out + x)


class ShuffleNetV1(nn.Module):
    def __init__(self, widths: List[int], units: List[int], groups: int, in_channels: int, num_classes: int):
        super().__init__()
        self.conv1 = _conv(in_channels, 24, 1)
        self.bn1 = nn.BatchNorm2d(24)
        self.layer1 = self._stage(24, widths[0], units[0], groups)
        self.layer2 = self._stage(widths[0], widths[1], units[1], groups)
        self.layer3 = self._stage(widths[1], widths[2], units[2], groups)
        self.linear = nn.Linear(widths[2], num_classes)

    @staticmethod
    def _stage(cin: int, cout: int, units: int, groups: int) -> nn.Sequential:
        # The first unit concatenates its pooled input, so its branch makes cout - cin channels.
        return nn.Sequential(ShuffleV1Unit(cin, cout - cin, 2, groups),
                             *[ShuffleV1Unit(cout, cout, 1, groups) for _ in range(units - 1)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.linear(_global_pool(x))


# ---- ShuffleNet V2, shufflev2 (models/shufflenet_v2.*) -------------------------------


class ShuffleV2Basic(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.half = channels // 2
        self.conv1 = _conv(self.half, self.half, 1)
        self.bn1 = nn.BatchNorm2d(self.half)
        self.conv2 = _conv(self.half, self.half, 3, groups=self.half)
        self.bn2 = nn.BatchNorm2d(self.half)
        self.conv3 = _conv(self.half, self.half, 1)
        self.bn3 = nn.BatchNorm2d(self.half)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kept, branch = x[:, :self.half], x[:, self.half:]
        branch = F.relu(self.bn1(self.conv1(branch)))
        branch = F.relu(self.bn3(self.conv3(self.bn2(self.conv2(branch)))))
        return _shuffle(torch.cat([kept, branch], 1), 2)


class ShuffleV2Down(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        mid = cout // 2
        self.conv1 = _conv(cin, cin, 3, 2, groups=cin)  # left branch
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv2 = _conv(cin, mid, 1)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = _conv(cin, mid, 1)  # right branch
        self.bn3 = nn.BatchNorm2d(mid)
        self.conv4 = _conv(mid, mid, 3, 2, groups=mid)
        self.bn4 = nn.BatchNorm2d(mid)
        self.conv5 = _conv(mid, mid, 1)
        self.bn5 = nn.BatchNorm2d(mid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left = F.relu(self.bn2(self.conv2(self.bn1(self.conv1(x)))))
        right = F.relu(self.bn3(self.conv3(x)))
        right = F.relu(self.bn5(self.conv5(self.bn4(self.conv4(right)))))
        return _shuffle(torch.cat([left, right], 1), 2)


class ShuffleNetV2(nn.Module):
    def __init__(self, widths: List[int], units: List[int], in_channels: int, num_classes: int):
        super().__init__()
        self.conv1 = _conv(in_channels, 24, 1)
        self.bn1 = nn.BatchNorm2d(24)
        self.layer1 = self._stage(24, widths[0], units[0])
        self.layer2 = self._stage(widths[0], widths[1], units[1])
        self.layer3 = self._stage(widths[1], widths[2], units[2])
        self.conv2 = _conv(widths[2], widths[3], 1)
        self.bn2 = nn.BatchNorm2d(widths[3])
        self.linear = nn.Linear(widths[3], num_classes)

    @staticmethod
    def _stage(cin: int, cout: int, units: int) -> nn.Sequential:
        return nn.Sequential(ShuffleV2Down(cin, cout), *[ShuffleV2Basic(cout) for _ in range(units)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.linear(_global_pool(F.relu(self.bn2(self.conv2(x)))))


# ---- ResNet50 for CIFAR (models/resnet50_cifar.*) -------------------------------------


class Bottleneck(nn.Module):
    def __init__(self, cin: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = _conv(cin, planes, 1)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv(planes, planes, 3, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv(planes, 4 * planes, 1)
        self.bn3 = nn.BatchNorm2d(4 * planes)
        self.shortcut = (nn.Sequential(_conv(cin, 4 * planes, 1, stride), nn.BatchNorm2d(4 * planes))
                         if stride != 1 or cin != 4 * planes else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn3(self.conv3(F.relu(self.bn2(self.conv2(out)))))
        if self.shortcut is not None:
            return F.relu(out + self.shortcut(x))
        return F.relu(out + x)


class ResNet50Cifar(nn.Module):
    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.conv1 = _conv(in_channels, 64, 3)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = self._stage(64, 64, 3, 1)
        self.layer2 = self._stage(256, 128, 4, 2)
        self.layer3 = self._stage(512, 256, 6, 2)
        self.layer4 = self._stage(1024, 512, 3, 2)
        self.linear = nn.Linear(2048, num_classes)

    @staticmethod
    def _stage(cin: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
        return nn.Sequential(*[Bottleneck(cin if i == 0 else 4 * planes, planes, stride if i == 0 else 1)
                               for i in range(blocks)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.linear(_global_pool(x))


# ---- the registry: the names of models/model_factory.cpp ------------------------------

_Builder = Callable[[int, int], nn.Module]


def _resnet(depth: int, filters: List[int]) -> _Builder:
    return lambda cin, classes: ResNetCifar(depth, filters, cin, classes)


def _wrn(depth: int, widen: int) -> _Builder:
    return lambda cin, classes: WideResNet(depth, widen, cin, classes)


def _vgg(depth: int) -> _Builder:
    return lambda cin, classes: VggCifar(depth, cin, classes)


_ZOO: Dict[str, _Builder] = {
    "cnn_small": CnnSmall,
    "cnn_large": CnnLarge,
    "resnet8": _resnet(8, [16, 16, 32, 64]),
    "resnet14": _resnet(14, [16, 16, 32, 64]),
    "resnet20": _resnet(20, [16, 16, 32, 64]),
    "resnet32": _resnet(32, [16, 16, 32, 64]),
    "resnet44": _resnet(44, [16, 16, 32, 64]),
    "resnet56": _resnet(56, [16, 16, 32, 64]),
    "resnet110": _resnet(110, [16, 16, 32, 64]),
    "resnet8x4": _resnet(8, [32, 64, 128, 256]),
    "resnet32x4": _resnet(32, [32, 64, 128, 256]),
    "wrn_16_1": _wrn(16, 1),
    "wrn_16_2": _wrn(16, 2),
    "wrn_40_1": _wrn(40, 1),
    "wrn_40_2": _wrn(40, 2),
    "vgg8": _vgg(8),
    "vgg11": _vgg(11),
    "vgg13": _vgg(13),
    "mobile_half": lambda cin, classes: MobileNetV2Cifar(6, 0.5, cin, classes),
    "shufflev1": lambda cin, classes: ShuffleNetV1([240, 480, 960], [4, 8, 4], 3, cin, classes),
    "shufflev2": lambda cin, classes: ShuffleNetV2([116, 232, 464, 1024], [3, 7, 3], cin, classes),
    "resnet50": ResNet50Cifar,
}


def model_names() -> List[str]:
    return list(_ZOO)


def build(name: str, num_classes: int, in_channels: int = 3) -> nn.Module:
    """A fresh zoo model; load an exported student into it with load_state_dict."""
    if name not in _ZOO:
        raise ValueError("dtokd_zoo: unknown model %r; known models: %s" % (name, ", ".join(_ZOO)))
    return _ZOO[name](in_channels, num_classes)


def _torchscript(name: str, num_classes: int, in_channels: int, state_dict: str, out: str) -> None:
    model = build(name, num_classes, in_channels)
    model.load_state_dict(torch.load(state_dict, map_location="cpu"), strict=True)
    model.eval()
    torch.jit.save(torch.jit.script(model), out)


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) != 6 or args[0] != "torchscript":
        sys.exit("usage: dtokd_zoo.py torchscript MODEL NUM_CLASSES IN_CHANNELS STATE_DICT OUT")
    try:
        _torchscript(args[1], int(args[2]), int(args[3]), args[4], args[5])
    except Exception as e:  # one line naming the cause, not a traceback
        sys.exit("dtokd_zoo.py: %s: %s" % (type(e).__name__, e))
