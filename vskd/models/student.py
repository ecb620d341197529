"""The sensor student: a torchvision CNN on GAF images, with the paper's extra fc0.

    GAF (3 x S x S) -> backbone up to global pooling (512) -> fc0 = Linear(512, D) + ReLU
                    -> fc1 = Linear(D, classes)

D is the teacher's feature size, so fc0's output H^S can be compared with the teacher's
H^T in the semantic loss (paper section 3.2, eq. 8, Fig. 1).

Backbones (``arch``; params ``student.arch``), from scratch unless ``student.pretrained``
names ImageNet weights (:func:`load_pretrained`):

* ``resnet18`` (the paper's student): torchvision ResNet18 without its fc; 512-d pooled.
  ``stem_pool`` (params ``student.stem_pool``) False drops the 3 x 3 max pool after conv1:
  ImageNet's stem shrinks a 224 px photo by 4 before the first residual block, but a 48 px GAF
  to 12 x 12, one pixel for about 12 samples of a 150-sample trial, before any block has seen
  the fine structure of the motion (the CIFAR ResNets keep the full map for the same reason).
  The map after conv1 stays 24 x 24: 3.2x the MACs at 48 px. No weights change, so ImageNet
  files load as they are.
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

ImageNet initialisation (params ``student.pretrained``; the authors' student is torchvision's
ImageNet ResNet18): :func:`load_pretrained` fills the backbone from torchvision's weights by
name or from a saved torchvision state_dict; fc0 and fc1 stay freshly initialised. Such
weights expect ImageNet-normalised RGB, so ``input_norm: imagenet`` (params
``student.input_norm``) maps the GAF's [-1, 1] to [0, 1] and applies ImageNet's mean and std
per channel (the x, y, z fields in the place of R, G, B) as the first step of every forward:
the exported ONNX graph and ``predict`` include it, and the checkpoint's ``config`` rebuilds
it. ``none`` feeds the GAF as it is (the paper's).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import torch
import torch.nn as nn
import torchvision

from vskd.choices import INPUT_NORMS, STUDENT_ARCHS, TORCHVISION, weights_names
from vskd.params import ParamsError

# The ImageNet classifier of a torchvision file, which the student replaces by fc0 + fc1: never loaded
DISCARDED_HEAD = {"resnet18": "fc.", "vgg16": "classifier."}
# torchvision's ImageNet normalisation (the weights' transforms(): ToTensor's [0, 1], then these)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
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
    raise ValueError(f"unknown student arch {arch!r}; known: {', '.join(STUDENT_ARCHS)}")


class ImageNetNorm(nn.Module):
    """GAF in [-1, 1] -> what ImageNet weights expect: [0, 1] (ToTensor's range), then
    (x - mean) / std per channel. The constants are buffers that nothing trains, and not
    persistent: the checkpoint's ``config`` (``input_norm``) rebuilds them."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ((x + 1.0) * 0.5 - self.mean) / self.std


class GAFStudent(nn.Module):
    def __init__(self, num_classes: int, feature_dim: int, arch: str = "resnet18", input_norm: str = "none",
                 stem_pool: bool = True):
        super().__init__()
        if input_norm not in INPUT_NORMS:
            raise ValueError(f"unknown student input_norm {input_norm!r}; known: {', '.join(INPUT_NORMS)}")
        backbone, width = _backbone(arch)
        if not stem_pool:
            if arch != "resnet18":
                raise ValueError(f"stem_pool False is a resnet18 setting (the max pool after conv1); arch is {arch!r}")
            backbone.maxpool = nn.Identity()
        self.backbone = backbone
        self.fc0 = nn.Linear(width, feature_dim)
        self.fc1 = nn.Linear(feature_dim, num_classes)
        # none: no module at all, so the paper's forward (and its state_dict) is unchanged
        self.normalise = ImageNetNorm() if input_norm == "imagenet" else None
        self.num_classes, self.feature_dim, self.arch = num_classes, feature_dim, arch
        self.input_norm, self.stem_pool = input_norm, bool(stem_pool)

    def config(self) -> dict:
        """The constructor's arguments: what a checkpoint stores to rebuild this model."""
        return {"num_classes": self.num_classes, "feature_dim": self.feature_dim, "arch": self.arch,
                "input_norm": self.input_norm, "stem_pool": self.stem_pool}

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.normalise is None else self.normalise(x)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """H^S: (B, 3, S, S) GAF in [-1, 1] -> (B, feature_dim)."""
        return torch.relu(self.fc0(self.backbone(self._prepare(x))))

    def head(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc1(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def features_and_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(H^S as :meth:`features`, [activations of ATTENTION_LAYERS[arch]]) in one pass."""
        b = self.backbone
        x = self._prepare(x)
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


# --- ImageNet initialisation (params student.pretrained) --------------------------------------

def load_pretrained(model: GAFStudent, spec: str) -> str:
    """Fill ``model.backbone`` with ImageNet weights; fc0 and fc1 keep their fresh initialisation.

    ``spec`` (params ``student.pretrained``): a torchvision weights name of the arch
    (:func:`weights_names`: ``IMAGENET1K_V1``, ``DEFAULT``), which torchvision downloads into its
    hub cache, or the path of a saved torchvision state_dict of the whole ``resnet18`` /
    ``vgg16_bn`` (its ImageNet classifier is ignored). Every backbone tensor must be in it with
    its shape: a wrong file stops here, naming it and its first offending key. Returns what was
    loaded, in words."""
    if spec in weights_names(model.arch):
        weights = torchvision.models.get_weight(f"{TORCHVISION[model.arch][1]}.{spec}")  # DEFAULT resolved
        state, source = _download(weights, spec), f"torchvision {weights}"
    else:
        state, source = _read_state_dict(spec, model.arch), str(spec)
    count = _load_backbone(model, state, source)
    return f"{count} backbone tensors from {source}; fc0 and fc1 freshly initialised"


def _download(weights, name: str) -> dict:
    try:
        return weights.get_state_dict(progress=False, check_hash=True, weights_only=True)
    except OSError as exc:  # URLError (no internet, no DNS), a refused or cut connection
        cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weights.url).path).name
        raise ParamsError(
            f"params.yaml: 'student.pretrained' is {name!r}, but torchvision could not download {weights.url} "
            f"({exc}). Without the internet: fetch that file on a machine that has it and set "
            f"student.pretrained to its local path (a .pth state_dict), or put it at {cached}, where "
            "torchvision looks first.") from exc


def _read_state_dict(path, arch: str) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"params.yaml: 'student.pretrained': {path} is not a file, nor a torchvision weights "
                          f"name of {arch} ({', '.join(weights_names(arch))}); give one of those names or the "
                          f"path of a .pth saved with torch.save(torchvision.models.{TORCHVISION[arch][0]}(...)"
                          ".state_dict(), path)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # not a torch file, truncated, or pickled objects beyond tensors
        raise ParamsError(f"student.pretrained: {path}: not a readable torch state_dict ({exc})") from exc
    if not isinstance(state, dict):
        raise ParamsError(f"student.pretrained: {path}: holds a {type(state).__name__}, not a state_dict "
                          "(a mapping of parameter names to tensors)")
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            hint = (": it looks like a training checkpoint; save its ['state_dict'] alone"
                    if "state_dict" in state else "")
            raise ParamsError(f"student.pretrained: {path}: not a state_dict: key {key!r} holds a "
                              f"{type(value).__name__}, not a tensor{hint}")
    return state


def _load_backbone(model: GAFStudent, state: dict, source: str) -> int:
    """Copy ``state``'s backbone tensors into ``model.backbone``, exactly; returns how many.
    BatchNorm's ``num_batches_tracked`` may be absent (files saved before PyTorch 0.4.1)."""
    own = model.backbone.state_dict()
    tv_name, head = TORCHVISION[model.arch][0], DISCARDED_HEAD[model.arch]
    what = f"a torchvision {tv_name} state_dict (student.arch {model.arch})"
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    if missing:
        hint = (" (its keys start with 'module.': save model.module.state_dict())"
                if any(k.startswith("module.") for k in state) else "")
        raise ParamsError(f"student.pretrained: {source}: missing key {missing[0]!r} ({len(missing)} of the "
                          f"{len(own)} backbone keys are absent): not {what}{hint}")
    for key, value in state.items():
        if key not in own and not key.startswith(head):
            raise ParamsError(f"student.pretrained: {source}: unexpected key {key!r}: not {what}")
        if key in own and tuple(value.shape) != tuple(own[key].shape):
            raise ParamsError(f"student.pretrained: {source}: key {key!r} has shape {tuple(value.shape)}, "
                              f"the student's {tuple(own[key].shape)}: not {what}")
    loaded = {k: state[k] for k in own if k in state}
    model.backbone.load_state_dict({**own, **loaded})
    return len(loaded)
