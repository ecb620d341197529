"""The sensor student: torchvision ResNet18 on GAF images, with the paper's extra fc0.

    GAF (3 x S x S) -> ResNet18 up to global pooling (512) -> fc0 = Linear(512, D) + ReLU
                    -> fc1 = Linear(D, classes)

D is the teacher's feature size, so fc0's output H^S can be compared with the teacher's
H^T in the semantic loss (paper section 3.2, eq. 8, Fig. 1).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torchvision


class GAFStudent(nn.Module):
    def __init__(self, num_classes: int, feature_dim: int):
        super().__init__()
        backbone = torchvision.models.resnet18(weights=None)
        width = backbone.fc.in_features
        backbone.fc = nn.Identity()
        self.backbone = backbone
        self.fc0 = nn.Linear(width, feature_dim)
        self.fc1 = nn.Linear(feature_dim, num_classes)
        self.num_classes, self.feature_dim = num_classes, feature_dim

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """H^S: (B, 3, S, S) GAF in [-1, 1] -> (B, feature_dim)."""
        return torch.relu(self.fc0(self.backbone(x)))

    def head(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc1(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
