# PyTorch twins of dtokd's zoo models used by the peer comparison: cnn_small
# (models/small_cnn.cpp) and the CIFAR ResNets of RepDistiller
# (models/resnet_cifar.cpp). Parameter names and order match the LibTorch modules'
# named_parameters(), so weights dumped by peer_step load by name.
import torch
import torch.nn as nn
import torch.nn.functional as F


class CnnSmall(nn.Module):
    def __init__(self, in_channels, num_classes):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 8, kernel_size=3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, kernel_size=3, padding=1)
        self.bn2 = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16 * 7 * 7, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        return self.fc(F.adaptive_avg_pool2d(x, (7, 7)).flatten(1))


class BasicBlock(nn.Module):
    def __init__(self, in_planes, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (self.downsample(x) if self.downsample is not None else x))


class ResNetCifar(nn.Module):
    def __init__(self, depth, filters, in_channels, num_classes):
        super().__init__()
        assert depth >= 8 and (depth - 2) % 6 == 0, depth
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, filters[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(filters[0])
        self.layer1 = self._stage(filters[0], filters[1], n, 1)
        self.layer2 = self._stage(filters[1], filters[2], n, 2)
        self.layer3 = self._stage(filters[2], filters[3], n, 2)
        self.fc = nn.Linear(filters[3], num_classes)

    @staticmethod
    def _stage(in_planes, planes, blocks, stride):
        return nn.Sequential(BasicBlock(in_planes, planes, stride),
                             *[BasicBlock(planes, planes, 1) for _ in range(1, blocks)])

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(F.adaptive_avg_pool2d(x, (1, 1)).flatten(1))


_ZOO = {
    'cnn_small': lambda c, k: CnnSmall(c, k),
    'resnet20': lambda c, k: ResNetCifar(20, (16, 16, 32, 64), c, k),
    'resnet32x4': lambda c, k: ResNetCifar(32, (32, 64, 128, 256), c, k),
}


def make_model(name, in_channels, num_classes):
    if name not in _ZOO:
        raise ValueError(f"model '{name}' has no PyTorch twin; expected one of: {', '.join(_ZOO)}")
    return _ZOO[name](in_channels, num_classes)
