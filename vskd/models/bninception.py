"""BN-Inception backbone (Inception with Batch Normalization).

Paper: S. Ioffe and C. Szegedy, "Batch Normalization: Accelerating Deep Network
Training by Reducing Internal Covariate Shift", ICML 2015 (the Inception-v2 /
"BN-Inception" network of its Section 4.2 / Figure 5).

This is the backbone that TSN (Wang et al., ECCV 2016) and TRN (Zhou et al.,
ECCV 2018) use, and therefore the visual teacher backbone of VSKD (Ni et al.,
"Vision-to-Sensor Knowledge Distillation", ICASSP 2022).

The layer graph and the parameter names follow the community Caffe port (the
``bn_inception.yaml`` of TSN's ``tf_model_zoo`` and its PyTorch re-export in
``pretrainedmodels``), so that the public ImageNet checkpoints
(``bn_inception-52deb4733.pth``, ``bn_inception-9f5701afb96c8044.pth``) load
by name with :func:`load_bninception_weights`.  Every convolution is named
``<id>`` and its BatchNorm ``<id>_bn``, e.g. ``conv1_7x7_s2`` /
``conv1_7x7_s2_bn`` or ``inception_4e_double_3x3_2`` /
``inception_4e_double_3x3_2_bn``.

Differences from the port, all deliberate:

* no classifier: ``forward`` returns the 1024-d globally pooled feature;
  TSN/TRN replace the ImageNet ``fc`` anyway (dropout + a new linear layer);
* the final 7x7 average pool is an adaptive average pool, so inputs smaller
  than 224x224 (the fast CPU default uses 56 or 64 pixels) also work;
* at odd feature-map sizes, which never occur at 224x224, the stride-2 max
  pool of the reduction blocks (3c, 4e) is aligned with the stride-2
  convolutions so that the branches can still be concatenated (see
  :meth:`BNInception._reduction_pool`);
* BatchNorm momentum is PyTorch's default 0.1 (see the comment in
  :meth:`BNInception._conv_bn`).

Input convention of the pretrained weights (and therefore of ``forward``):
BGR channel order, 0..255 range, per-channel mean [104, 117, 128] subtracted,
standard deviation 1 (Caffe style).  :meth:`BNInception.preprocess` converts
ordinary RGB 0..255 tensors into that convention.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Iterable

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "BNInception",
    "WeightLoadError",
    "load_bninception_weights",
    "set_partial_bn",
    "BNINCEPTION_URLS",
]

# Public ImageNet checkpoints of the Caffe port (for reference; nothing is
# downloaded unless the caller passes one of them to load_bninception_weights).
BNINCEPTION_URLS = {
    # pretrainedmodels (Cadene); classifier stored as ``last_linear``.
    "imagenet_cadene": "http://data.lip6.fr/cadene/pretrainedmodels/bn_inception-52deb4733.pth",
    # TSN / TRN (Xiong); classifier stored as ``fc``; BN tensors stored as [1, C].
    "imagenet_tsn": "https://yjxiong.blob.core.windows.net/models/bn_inception-9f5701afb96c8044.pth",
}

# Mean of the Caffe model in *BGR* order, on the 0..255 scale (std is 1).
_BGR_MEAN = (104.0, 117.0, 128.0)


# (block, in_channels, 1x1, 3x3_reduce, 3x3, double_3x3_reduce, double_3x3,
#  pool type, pool_proj).  ``None`` for 1x1 / pool_proj marks the two
# grid-reduction blocks (3c, 4e): they have no 1x1 branch, their 3x3 convs
# have stride 2 and their max-pool branch is passed through unprojected.
# Numbers from Ioffe & Szegedy 2015, Fig. 5, as realised by the Caffe port.
_INCEPTION_SPECS = (
    ("3a", 192, 64, 64, 64, 64, 96, "avg", 32),      # -> 256
    ("3b", 256, 64, 64, 96, 64, 96, "avg", 64),      # -> 320
    ("3c", 320, None, 128, 160, 64, 96, "max", None),  # -> 576 (stride 2)
    ("4a", 576, 224, 64, 96, 96, 128, "avg", 128),   # -> 576
    ("4b", 576, 192, 96, 128, 96, 128, "avg", 128),  # -> 576
    ("4c", 576, 160, 128, 160, 128, 160, "avg", 128),  # -> 608
    ("4d", 608, 96, 128, 192, 160, 192, "avg", 128),  # -> 608
    ("4e", 608, None, 128, 192, 192, 256, "max", None),  # -> 1056 (stride 2)
    ("5a", 1056, 352, 192, 320, 160, 224, "avg", 128),  # -> 1024
    # 5b uses a *max* pool (stride 1) in its pool branch, as in the port.
    ("5b", 1024, 352, 192, 320, 192, 224, "max", 128),  # -> 1024
)


class BNInception(nn.Module):
    """BN-Inception feature extractor: ``forward(x) -> (B, 1024)``.

    Input convention (that of the public Caffe-port checkpoints): a float
    tensor of shape (B, 3, H, W) in **BGR** channel order, range 0..255, with
    the per-channel mean ``[104, 117, 128]`` (B, G, R) subtracted and no
    division by a standard deviation.  Use :meth:`preprocess` to build it
    from RGB 0..255 images.  224x224 is the native size (7x7 final map);
    smaller sizes such as 56x56 or 64x64 work thanks to the adaptive global
    pool (the final map is then 2x2).  Inputs below about 32x32 collapse to
    a 1x1 map early and are not meaningful.

    ``partial_bn`` (TSN's "partial BN", Wang et al. 2016, Sec. 3.2): when true,
    every BatchNorm except the first one is kept in eval mode with frozen
    affine parameters, and this survives ``train()`` calls.  See
    :func:`set_partial_bn`.
    """

    out_features = 1024

    def __init__(self, partial_bn: bool = False):
        super().__init__()
        # Stem.  Registration order matters: ``conv1_7x7_s2_bn`` must be the
        # first BatchNorm in ``modules()`` order for partial BN.
        self._conv_bn("conv1_7x7_s2", 3, 64, 7, stride=2, padding=3)
        self._conv_bn("conv2_3x3_reduce", 64, 64, 1)
        self._conv_bn("conv2_3x3", 64, 192, 3, padding=1)
        for spec in _INCEPTION_SPECS:
            self._inception(*spec)
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self._reset_parameters()
        self.partial_bn = bool(partial_bn)
        if self.partial_bn:
            self._apply_partial_bn()

    # ------------------------------------------------------------------ build
    def _conv_bn(self, name: str, cin: int, cout: int, k: int, stride: int = 1, padding: int = 0) -> None:
        # The Caffe port keeps a bias in every convolution even though a BN
        # follows; it is kept so that the checkpoints load strictly.
        self.add_module(name, nn.Conv2d(cin, cout, k, stride=stride, padding=padding, bias=True))
        # Momentum: the port writes ``momentum=0.9`` (Caffe's "moving average
        # fraction" meaning: keep 90 % of the old statistic).  PyTorch's
        # ``momentum`` is the weight of the *new* batch, so 0.9 there would
        # make the running statistics almost a copy of the last batch.  The
        # PyTorch default 0.1 is the equivalent of Caffe's 0.9.
        self.add_module(name + "_bn", nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1))

    def _inception(self, block, cin, c1x1, c3r, c3, cdr, cd, pool, cproj) -> None:
        p = f"inception_{block}_"
        reduction = c1x1 is None
        stride = 2 if reduction else 1
        if not reduction:
            self._conv_bn(p + "1x1", cin, c1x1, 1)
        self._conv_bn(p + "3x3_reduce", cin, c3r, 1)
        self._conv_bn(p + "3x3", c3r, c3, 3, stride=stride, padding=1)
        self._conv_bn(p + "double_3x3_reduce", cin, cdr, 1)
        self._conv_bn(p + "double_3x3_1", cdr, cd, 3, padding=1)
        self._conv_bn(p + "double_3x3_2", cd, cd, 3, stride=stride, padding=1)
        if cproj is not None:
            self._conv_bn(p + "pool_proj", cin, cproj, 1)

    def _reset_parameters(self) -> None:
        # From-scratch initialisation (the pretrained weights overwrite it):
        # He init for convolutions followed by ReLU, zero conv bias (a BN
        # follows anyway), identity BatchNorm.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    # ---------------------------------------------------------------- forward
    def _cbr(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """conv -> BN -> ReLU (the port's ReLUs run in place on the BN output)."""
        return F.relu(getattr(self, name + "_bn")(getattr(self, name)(x)))

    @staticmethod
    def _reduction_pool(x: torch.Tensor, size: torch.Size) -> torch.Tensor:
        """Max-pool branch of the grid-reduction blocks 3c / 4e.

        Caffe's 3x3/2 max pool rounds the output size up (``ceil_mode``):
        out = ceil((H - 3) / 2) + 1, whereas the parallel 3x3/2 convolutions
        with padding 1 give floor((H - 1) / 2) + 1.  Both equal H/2 for even
        H (always the case at 224x224: 28 -> 14, 14 -> 7), so there the Caffe
        pool is used unchanged.  For odd H (e.g. 7x7 maps from 56x56 inputs)
        the pool would be one pixel short and the concatenation would fail;
        then the pool is padded by 1 like the convolutions, which puts its
        windows on exactly the same centres as the conv branches.
        """
        y = F.max_pool2d(x, 3, stride=2, ceil_mode=True)
        if y.shape[-2:] != size:
            y = F.max_pool2d(x, 3, stride=2, padding=1)
        return y

    def _inception_forward(self, block: str, x: torch.Tensor, pool: str, reduction: bool) -> torch.Tensor:
        p = f"inception_{block}_"
        branches = []
        if not reduction:
            branches.append(self._cbr(p + "1x1", x))
        branches.append(self._cbr(p + "3x3", self._cbr(p + "3x3_reduce", x)))
        d = self._cbr(p + "double_3x3_reduce", x)
        d = self._cbr(p + "double_3x3_1", d)
        branches.append(self._cbr(p + "double_3x3_2", d))
        if reduction:
            branches.append(self._reduction_pool(x, branches[0].shape[-2:]))
        else:
            if pool == "avg":
                # Caffe AVE pooling divides by the full window including the
                # zero padding -> count_include_pad=True.
                y = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=True)
            else:  # 5b: 3x3/1 max pool (ceil_mode is irrelevant at stride 1)
                y = F.max_pool2d(x, 3, stride=1, padding=1)
            branches.append(self._cbr(p + "pool_proj", y))
        return torch.cat(branches, dim=1)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised BGR input (B, 3, H, W) -> inception_5b output (B, 1024, h, w)."""
        return self.feature_maps(x)[0]

    def feature_maps(self, x: torch.Tensor, blocks: Iterable[str] = ()) -> tuple[torch.Tensor, dict]:
        """Like :meth:`feature_map`, also returning the outputs of the named inception blocks
        (``"inception_3b"``, ...) in a dict: the same computation, nothing extra is run."""
        wanted = set(blocks)
        known = {f"inception_{spec[0]}" for spec in _INCEPTION_SPECS}
        if not wanted <= known:
            raise ValueError(f"unknown BN-Inception block(s) {sorted(wanted - known)}; known: {sorted(known)}")
        kept = {}
        x = self._cbr("conv1_7x7_s2", x)
        x = F.max_pool2d(x, 3, stride=2, ceil_mode=True)  # pool1_3x3_s2
        x = self._cbr("conv2_3x3_reduce", x)
        x = self._cbr("conv2_3x3", x)
        x = F.max_pool2d(x, 3, stride=2, ceil_mode=True)  # pool2_3x3_s2
        for block, _cin, c1x1, *_rest, pool, _cproj in _INCEPTION_SPECS:
            x = self._inception_forward(block, x, pool, reduction=c1x1 is None)
            if f"inception_{block}" in wanted:
                kept[f"inception_{block}"] = x
        return x, kept

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised BGR input (B, 3, H, W) -> pooled feature (B, 1024)."""
        return torch.flatten(self.global_pool(self.feature_map(x)), 1)

    # ------------------------------------------------------------ conventions
    @staticmethod
    def preprocess(rgb: torch.Tensor) -> torch.Tensor:
        """RGB float 0..255, shape (..., 3, H, W) -> the backbone's input.

        Reverses the channel axis (RGB -> BGR) and subtracts the Caffe mean
        [104, 117, 128] (B, G, R); the scale stays 0..255 (std 1).
        """
        if rgb.dim() < 3 or rgb.shape[-3] != 3:
            raise ValueError(f"expected (..., 3, H, W) RGB tensor, got shape {tuple(rgb.shape)}")
        if not rgb.is_floating_point():
            rgb = rgb.float()
        mean = torch.tensor(_BGR_MEAN, dtype=rgb.dtype, device=rgb.device).view(3, 1, 1)
        return rgb.flip(-3) - mean

    # ------------------------------------------------------------- partial BN
    def batchnorms(self) -> list[nn.BatchNorm2d]:
        """All BatchNorm layers in registration (= forward) order."""
        return [m for m in self.modules() if isinstance(m, nn.BatchNorm2d)]

    def _apply_partial_bn(self) -> None:
        # TSN: "freeze the mean and variance parameters of all Batch
        # Normalization layers except the first one" (Wang et al. 2016,
        # Sec. 3.2).  The first BN sees the input distribution, which for
        # video frames / other modalities differs from ImageNet, so it adapts.
        for i, bn in enumerate(self.batchnorms()):
            if i == 0:
                continue
            bn.eval()
            bn.weight.requires_grad_(False)
            bn.bias.requires_grad_(False)

    def train(self, mode: bool = True) -> "BNInception":
        # nn.Module.train() recurses through children, so a parent model's
        # train()/eval() also lands here and partial BN is re-applied.
        super().train(mode)
        if getattr(self, "partial_bn", False):
            self._apply_partial_bn()
        return self


def set_partial_bn(model: nn.Module, enabled: bool) -> int:
    """Switch TSN's partial BN on/off for every BN-Inception inside ``model``.

    Enabled: all BatchNorms but the first of each backbone are put in eval mode
    (running statistics frozen) and their ``weight``/``bias`` get
    ``requires_grad=False``; because :class:`BNInception` overrides
    ``train()``, this persists through later ``model.train()`` calls.
    Disabled: the affine parameters become trainable again and the BN modes
    follow the backbone's ``training`` flag.

    Returns the number of backbones affected; raises ``TypeError`` if
    ``model`` contains no :class:`BNInception`.
    """
    backbones = [m for m in model.modules() if isinstance(m, BNInception)]
    if not backbones:
        raise TypeError(f"set_partial_bn: {type(model).__name__} contains no BNInception backbone")
    for bb in backbones:
        bb.partial_bn = bool(enabled)
        if enabled:
            bb._apply_partial_bn()
        else:
            for bn in bb.batchnorms():
                bn.weight.requires_grad_(True)
                bn.bias.requires_grad_(True)
                bn.train(bb.training)
    return len(backbones)


# ---------------------------------------------------------------------------
# Checkpoint loading
# ---------------------------------------------------------------------------
class WeightLoadError(RuntimeError):
    """A checkpoint does not match the BN-Inception backbone."""


_CLASSIFIER_PREFIXES = ("fc.", "last_linear.")


def _is_url(source: str) -> bool:
    return urllib.parse.urlparse(str(source)).scheme in ("http", "https")


def _download_cached(url: str, cache_dir: str | os.PathLike | None) -> Path:
    """Return a local copy of ``url``, downloading it once into ``cache_dir``.

    The file is streamed into a temporary file in the same directory and then
    renamed with ``os.replace`` (atomic on POSIX), so an interrupted download
    never leaves a truncated file under the final name, and concurrent
    processes never read a partial file.
    """
    cache = Path(cache_dir) if cache_dir is not None else Path.home() / ".cache" / "vskd" / "weights"
    cache.mkdir(parents=True, exist_ok=True)
    name = os.path.basename(urllib.parse.urlparse(url).path) or "weights.pth"
    target = cache / name
    if target.is_file():
        return target
    fd, tmp = tempfile.mkstemp(dir=cache, prefix=name + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as resp:
            shutil.copyfileobj(resp, out, length=1 << 20)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return target


def _torch_load(path: Path) -> object:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except UnicodeDecodeError:
        # Checkpoints pickled under Python 2 (the original ports) may need
        # latin1 to decode their byte strings.
        return torch.load(path, map_location="cpu", weights_only=True, encoding="latin1")


def _fmt_keys(keys: Iterable[str], limit: int = 12) -> str:
    keys = sorted(keys)
    s = ", ".join(keys[:limit])
    return s + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")


def load_bninception_weights(model: nn.Module, source: str, cache_dir: str | os.PathLike | None = None) -> dict:
    """Load an ImageNet BN-Inception checkpoint into ``model`` by parameter name.

    ``model`` is a :class:`BNInception` or a module with a ``backbone``
    attribute that is one (e.g. ``TRNTeacher``).  ``source`` is a local path or
    an http(s) URL; URLs are downloaded once into ``cache_dir`` (default
    ``~/.cache/vskd/weights``) and reused afterwards.

    Normalisation of the checkpoint before the strict load:

    * a dict wrapped under ``'state_dict'`` or ``'model'`` is unwrapped;
    * a ``'module.'`` prefix (DataParallel) is stripped;
    * BatchNorm tensors stored as [1, C] (legacy PyTorch export of the TSN
      checkpoint) are squeezed to [C];
    * classifier tensors (``fc.*`` / ``last_linear.*``) are dropped, since the
      backbone has no classifier;
    * ``num_batches_tracked`` buffers, absent from pre-0.4 checkpoints, are
      the only keys allowed to be missing (the model keeps its own).

    Any other missing or unexpected key, or a shape mismatch, raises
    :class:`WeightLoadError` naming ``source`` and the offending keys.

    Returns ``{'source', 'path', 'loaded', 'squeezed', 'dropped'}``: number of
    tensors loaded, number of squeezed BN tensors, and the dropped keys.
    """
    backbone = model if isinstance(model, BNInception) else getattr(model, "backbone", None)
    if not isinstance(backbone, BNInception):
        raise TypeError(f"load_bninception_weights: {type(model).__name__} is not (and has no) BNInception backbone")
    path = _download_cached(source, cache_dir) if _is_url(source) else Path(source)
    if not path.is_file():
        raise WeightLoadError(f"BN-Inception checkpoint {source!r}: file not found ({path})")
    ckpt = _unwrap(_torch_load(path), source)
    state, dropped, squeezed = _normalised_state(ckpt, backbone, source)
    expected = backbone.state_dict()
    _check_keys(state, expected, source, path)
    # Keep the model's own counters where the checkpoint predates them.
    for k, v in expected.items():
        state.setdefault(k, v)
    backbone.load_state_dict(state, strict=True)
    return {
        "source": str(source),
        "path": str(path),
        "loaded": len(ckpt) - len(dropped),
        "squeezed": squeezed,
        "dropped": sorted(dropped),
    }


def _unwrap(ckpt: object, source: str) -> dict:
    """A state dict, unwrapped from ``'state_dict'`` or ``'model'`` where it is wrapped."""
    for wrapper in ("state_dict", "model"):
        if isinstance(ckpt, dict) and isinstance(ckpt.get(wrapper), dict):
            ckpt = ckpt[wrapper]
            break
    if not isinstance(ckpt, dict):
        raise WeightLoadError(f"BN-Inception checkpoint {source!r}: expected a state dict, got {type(ckpt).__name__}")
    return ckpt


def _normalised_state(ckpt: dict, backbone: BNInception, source: str) -> tuple[dict, list[str], int]:
    """Strip ``module.``, drop the classifier, squeeze legacy [1, C] BatchNorm tensors."""
    bn_names = {name for name, m in backbone.named_modules() if isinstance(m, nn.BatchNorm2d)}
    state: dict[str, torch.Tensor] = {}
    dropped: list[str] = []
    squeezed = 0
    for key, value in ckpt.items():
        if key.startswith("module."):
            key = key[len("module."):]
        if key.startswith(_CLASSIFIER_PREFIXES):
            dropped.append(key)
            continue
        if not torch.is_tensor(value):
            raise WeightLoadError(f"BN-Inception checkpoint {source!r}: entry {key!r} is not a tensor")
        owner = key.rsplit(".", 1)[0]
        if owner in bn_names and value.dim() == 2 and value.shape[0] == 1:
            value = value.reshape(-1)
            squeezed += 1
        state[key] = value
    return state, dropped, squeezed


def _check_keys(state: dict, expected: dict, source: str, path: Path) -> None:
    """Missing (but num_batches_tracked), unexpected or misshapen keys: one error naming them."""
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in state
        if k in expected and state[k].shape != expected[k].shape
    ]
    parts = []
    if missing:
        parts.append("missing keys: " + _fmt_keys(missing))
    if unexpected:
        parts.append("unexpected keys: " + _fmt_keys(unexpected))
    if mismatched:
        parts.append("shape mismatches: " + _fmt_keys(mismatched))
    if parts:
        raise WeightLoadError(f"BN-Inception checkpoint {source!r} ({path}) does not match the backbone; "
                              + "; ".join(parts))
