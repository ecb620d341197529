"""The sensor student: a torchvision CNN on GAF images, with the paper's extra fc0.

    GAF (3 x S x S) -> backbone up to global pooling (512) -> fc0 = Linear(512, D) + ReLU
                    -> fc1 = Linear(D, classes)

D is the teacher's feature size, so fc0's output H^S can be compared with the teacher's
H^T in the semantic loss (paper section 3.2, eq. 8, Fig. 1).

Backbones (``arch``; params ``student.arch``), both from scratch:

* ``resnet18`` (the paper's student): torchvision ResNet18 without its fc; 512-d pooled.
* ``vgg16`` (Table 4's "DASK-VGG16"): torchvision ``vgg16_bn``'s 13 convolutions and 5 max
  pools, then a global average pool (512-d) in place of VGG's 7 x 7 pool and its two
  4096-wide layers. Why: at the default 48 px GAF the last map is 1 x 1, and VGG's adaptive
  7 x 7 pool would only replicate it 49 times into a 25088-d vector whose Linear(25088, 4096)
  alone is 103 M of VGG16's 138 M parameters (a 0.5 GB checkpoint, 1.5 GB resume file per
  epoch); the global pool makes the head identical to the ResNet18 student's (fc0 on 512
  features), so the two students differ only in their convolutional trunk, as CIFAR-sized
  VGGs in distillation code do (RepDistiller's ``vgg``). The BatchNorm variant because it is
  trained from scratch (ResNet18 has BatchNorm too). 14.86 M parameters; it works for any
  image size >= 32 (5 poolings).

:meth:`GAFStudent.features_and_maps` also returns the activations attention transfer reads
(``vskd.attention``): output strides 8, 16, 32.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torchvision

ARCHS = ("resnet18", "vgg16")
# The layers whose activations AT compares with the teacher's maps (output stride 8, 16, 32).
ATTENTION_LAYERS = {"resnet18": ("layer2", "layer3", "layer4"),
                    "vgg16": ("pool3", "pool4", "pool5")}


def _backbone(arch: str) -> tuple[nn.Module, int]:
    if arch == "resnet18":
        backbone = torchvision.models.resnet18(weights=None)
        width = backbone.fc.in_features
        backbone.fc = nn.Identity()
        return backbone, width
    if arch == "vgg16":
        backbone = torchvision.models.vgg16_bn(weights=None)
        backbone.avgpool = nn.AdaptiveAvgPool2d(1)
        backbone.classifier = nn.Identity()
        return backbone, 512
    raise ValueError(f"unknown student arch {arch!r}; known: {', '.join(ARCHS)}")


class GAFStudent(nn.Module):
    def __init__(self, num_classes: int, feature_dim: int, arch: str = "resnet18"):
        super().__init__()
        backbone, width = _backbone(arch)
        self.backbone = backbone
        self.fc0 = nn.Linear(width, feature_dim)
        self.fc1 = nn.Linear(feature_dim, num_classes)
        self.num_classes, self.feature_dim, self.arch = num_classes, feature_dim, arch

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """H^S: (B, 3, S, S) GAF in [-1, 1] -> (B, feature_dim)."""
        return torch.relu(self.fc0(self.backbone(x)))

    def head(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc1(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def features_and_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(H^S as :meth:`features`, [activations of ATTENTION_LAYERS[arch]]) in one pass."""
        b = self.backbone
        if self.arch == "resnet18":
            x = b.maxpool(b.relu(b.bn1(b.conv1(x))))
            x = b.layer1(x)
            maps = []
            for layer in (b.layer2, b.layer3, b.layer4):
                x = layer(x)
                maps.append(x)
        else:  # vgg16: keep the outputs of the 3rd, 4th and 5th max pool
            maps, pools = [], 0
            for module in b.features:
                x = module(x)
                if isinstance(module, nn.MaxPool2d):
                    pools += 1
                    if pools >= 3:
                        maps.append(x)
        pooled = torch.flatten(b.avgpool(x), 1)
        return torch.relu(self.fc0(pooled)), maps
