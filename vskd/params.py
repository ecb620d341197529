"""Reading and validating params.yaml.

Every stage calls :func:`load_params` first, so a bad value stops the stage before any
work, with a message that names the key (``teacher.lr``) and the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from vskd.choices import (AUGMENT_IDENTITY, BACKENDS, DEVICES, DISTILL_METHODS, GAF_METHODS, GAF_SCALES, INPUT_NORMS,
                          ON_BAD_SAMPLE, SCHEDULES, SELECTIONS, SEMANTIC_SCALES, SPLIT_MEMBERS, STUDENT_ARCHS,
                          TEACHER_OPTIMIZERS, TRUST, weights_names)

DEFAULT_PARAMS = Path("params.yaml")


class ParamsError(ValueError):
    """A missing or invalid hyperparameter; the message names the key and the file."""


def load_params(path: str | Path = DEFAULT_PARAMS) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: not found. Run the stage from the repository root.")
    with open(path) as f:
        params = yaml.safe_load(f)
    if not isinstance(params, dict):
        raise ParamsError(f"{path}: expected a mapping at the top level")
    validate(params, path)
    return params


def set_dotted(params: dict, dotted: str, value: Any) -> None:
    """``set_dotted(p, "teacher.lr", 0.01)``, creating missing blocks (the `-S` of `dvc exp run`)."""
    node = params
    *parents, last = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


# The tiny configuration of the end-to-end tests and `benchmarks.run --quick`: every stage
# runs, in seconds, on 3 actions x 2 subjects x 2 trials.
TINY_OVERRIDES: dict[str, Any] = {
    "synthetic.download": {"seed": 0, "actions": 3, "subjects": 2, "trials": 2, "width": 80,
                           "height": 60, "fps": 15.0},
    "synthetic.segments": 3,
    "synthetic.split": {"name": "cross_subject", "train_subjects": [1], "train_trials": [1, 2],
                        "val_fraction": 0.0},
    "frames.short_side": 32,
    "gaf.image_size": 16,
    "teacher.input_size": 32,
    "teacher.epochs": 1,
    "teacher.batch_size": 2,
    "teacher.lr_steps": [1],
    "teacher.num_workers": 0,
    "student.epochs": 1,
    "student.batch_size": 2,
}


def get(params: dict, dotted: str, path: str | Path = DEFAULT_PARAMS) -> Any:
    """``get(p, "teacher.lr")``; a missing key is an error naming it."""
    node: Any = params
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ParamsError(f"{path}: missing key '{dotted}'")
        node = node[part]
    return node


def dataset_block(params: dict, name: str, path: str | Path = DEFAULT_PARAMS) -> dict:
    from vskd.datasets import ADAPTERS

    if name not in ADAPTERS:
        raise ParamsError(
            f"unknown dataset '{name}'. Known datasets: {', '.join(sorted(ADAPTERS))}."
        )
    block = params.get(name)
    if not isinstance(block, dict):
        raise ParamsError(f"{path}: dataset '{name}' has no block '{name}:' in params.yaml")
    return block


def _check(cond: bool, path, key: str, msg: str) -> None:
    if not cond:
        raise ParamsError(f"{path}: '{key}' {msg}")


def _number(params, key, path, *, minimum=None, strictly_positive=False, integer=False):
    value = get(params, key, path)
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    _check(ok_type and not isinstance(value, bool), path, key,
           f"must be {'an integer' if integer else 'a number'}, got {value!r}")
    if strictly_positive:
        _check(value > 0, path, key, f"must be > 0, got {value!r}")
    if minimum is not None:
        _check(value >= minimum, path, key, f"must be >= {minimum}, got {value!r}")
    return value


def validate(params: dict, path: str | Path = DEFAULT_PARAMS) -> None:
    """Reject values that would crash or silently mislead deep inside a stage."""
    _number(params, "seed", path, integer=True, minimum=0)
    for key in ("alpha", "beta", "gamma"):
        _number(params, key, path, minimum=0)
    _number(params, "temperature", path, strictly_positive=True)
    datasets = get(params, "datasets", path)
    _check(isinstance(datasets, list) and len(datasets) > 0, path, "datasets",
           "must be a non-empty list of dataset names")
    for name in datasets:
        _validate_dataset(params, name, path)
    _validate_inputs(params, path)
    _validate_training(params, path)
    _validate_augment(params, path)
    _validate_student_init(params, path)
    _validate_distill(params, path)
    seeds = get(params, "seeds", path)  # training seeds of the students and MiniRocket
    _check(isinstance(seeds, list) and len(seeds) > 0
           and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds),
           path, "seeds", f"must be a non-empty list of integers >= 0, got {seeds!r}")
    _check(len(set(seeds)) == len(seeds), path, "seeds", f"must not repeat a seed, got {seeds!r}")
    _number(params, "minirocket.n_kernels", path, integer=True, minimum=84)
    _number(params, "minirocket.max_dilations_per_kernel", path, integer=True, strictly_positive=True)
    length = _number(params, "minirocket.length", path, integer=True, minimum=0)
    _check(length == 0 or length >= 9, path, "minirocket.length",
           f"must be 0 (the longest training recording) or >= 9 (MiniRocket's kernel length), got {length}")
    _validate_runtime(params, path)


def _validate_inputs(params: dict, path) -> None:
    """frames, gaf and the input sizes of both networks."""
    _number(params, "frames.short_side", path, integer=True, minimum=16)
    _number(params, "gaf.image_size", path, integer=True, minimum=16)
    _check(get(params, "gaf.method", path) in GAF_METHODS, path, "gaf.method",
           "must be 'summation' or 'difference'")
    _check(get(params, "gaf.scale", path) in GAF_SCALES, path, "gaf.scale",
           "must be 'axis' (each axis min-max scaled, the paper's) or 'joint' (one range for the three axes)")
    teacher_in = _number(params, "teacher.input_size", path, integer=True, minimum=32)
    _check(teacher_in <= get(params, "frames.short_side", path), path, "teacher.input_size",
           "must not exceed frames.short_side (the crop is taken from the stored frames)")
    arch = get(params, "student.arch", path)
    _check(arch in STUDENT_ARCHS, path, "student.arch", f"must be resnet18 or vgg16, got {arch!r}")
    if arch == "vgg16":  # five 2 x 2 max pools: a 16 px image is 1 x 1 before the last one
        _check(get(params, "gaf.image_size", path) >= 32, path, "gaf.image_size",
               f"must be >= 32 for student.arch vgg16 (5 poolings), got {get(params, 'gaf.image_size', path)!r}")


def _validate_training(params: dict, path) -> None:
    """The teacher and student blocks' optimisation settings."""
    for section in ("teacher", "student"):
        _number(params, f"{section}.epochs", path, integer=True, strictly_positive=True)
        _number(params, f"{section}.batch_size", path, integer=True, minimum=2)
        _number(params, f"{section}.lr", path, strictly_positive=True)
        _number(params, f"{section}.weight_decay", path, minimum=0)
        _check(get(params, f"{section}.selection", path) in SELECTIONS, path,
               f"{section}.selection", "must be 'last' or 'best_val'")
        schedule = params[section].get("schedule")
        _check(schedule is None or schedule in SCHEDULES, path, f"{section}.schedule",
               f"must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
    _check(get(params, "teacher.optimizer", path) in TEACHER_OPTIMIZERS, path, "teacher.optimizer",
           "must be 'sgd' or 'adamw'")
    _number(params, "teacher.feature_dim", path, integer=True, strictly_positive=True)
    _number(params, "teacher.head_lr_mult", path, strictly_positive=True)
    dropout = _number(params, "teacher.dropout", path, minimum=0)
    _check(dropout < 1, path, "teacher.dropout", f"must be < 1, got {dropout}")
    if "affine" in params["teacher"]:
        _number(params, "teacher.affine.rotate_deg", path, minimum=0)
        stretch = _number(params, "teacher.affine.stretch", path, minimum=0)
        _check(stretch < 1, path, "teacher.affine.stretch", f"must be < 1 (a scale of 1 - stretch > 0), got {stretch}")
    if "mixup" in params["teacher"]:
        _number(params, "teacher.mixup", path, minimum=0)  # Beta(a, a) of mixup; 0: off
    if "view_jitter" in params["teacher"]:
        _number(params, "teacher.view_jitter.yaw_deg", path, minimum=0)
        pitch = _number(params, "teacher.view_jitter.pitch_deg", path, minimum=0)
        _check(pitch < 90, path, "teacher.view_jitter.pitch_deg", f"must be < 90 (the camera above the head), got {pitch}")


def _validate_distill(params: dict, path) -> None:
    for key in ("distill.distance_weight", "distill.angle_weight", "distill.at_weight", "distill.sp_weight"):
        _number(params, key, path, minimum=0)
    method = get(params, "distill.method", path)
    _check(method in DISTILL_METHODS, path, "distill.method",
           f"must be one of dask, st, at, sp (Table 4's losses), got {method!r}")
    scale = get(params, "distill.semantic_scale", path)
    _check(scale in SEMANTIC_SCALES, path, "distill.semantic_scale",
           f"must be none (the paper's L_S) or teacher (L_S / the teacher features' mean squared norm), "
           f"got {scale!r}")
    trust = params["distill"].get("trust", "none")
    _check(trust in TRUST, path, "distill.trust",
           f"must be none or teacher_accuracy (distillation scaled by the teacher's accuracy), got {trust!r}")


def _validate_augment(params: dict, path) -> None:
    augment = params["student"].get("augment") or {}
    _check(isinstance(augment, dict), path, "student.augment", "must be a mapping")
    for key, value in augment.items():
        _check(key in AUGMENT_IDENTITY, path, f"student.augment.{key}",
               f"is not an augmentation (known: {', '.join(AUGMENT_IDENTITY)})")
        _check(isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0, path,
               f"student.augment.{key}", f"must be a number >= 0, got {value!r}")
    _check(augment.get("gain", 0.0) < 1, path, "student.augment.gain",
           f"must be below 1 (the motion is scaled by 1 +- gain), got {augment.get('gain')}")
    crop = augment.get("crop", 1.0)
    _check(0 < crop <= 1, path, "student.augment.crop", f"must be in (0, 1] (the fraction kept), got {crop}")
    _check(augment.get("time_warp", 0) < 1, path, "student.augment.time_warp",
           "must be < 1 (local speed stays in 1 +- time_warp)")
    if "mixup" in params["student"]:
        _number(params, "student.mixup", path, minimum=0)  # Beta(a, a) of mixup; 0: off


def _validate_student_init(params: dict, path) -> None:
    """student.input_norm and student.pretrained (ImageNet initialisation of the GAF student):
    a weights name must be torchvision's for the arch, a path an existing file, before any work."""
    student = params["student"]
    norm = student.get("input_norm", "none")
    _check(norm in INPUT_NORMS, path, "student.input_norm",
           f"must be none (the GAF in [-1, 1] as it is) or imagenet ([0, 1], then ImageNet's mean and std), "
           f"got {norm!r}")
    pretrained = student.get("pretrained", "")
    _check(isinstance(pretrained, str), path, "student.pretrained",
           f"must be a string: \"\" (from scratch), a torchvision weights name or a .pth path, got {pretrained!r}")
    arch = student["arch"]  # already checked by _validate_inputs
    stem_pool = student.get("stem_pool", True)
    _check(isinstance(stem_pool, bool), path, "student.stem_pool",
           f"must be true (ResNet18's max pool after conv1, the paper's) or false, got {stem_pool!r}")
    _check(stem_pool or arch == "resnet18", path, "student.stem_pool",
           f"false drops ResNet18's max pool after conv1; student.arch {arch} has none to drop: set it true")
    if pretrained and pretrained not in weights_names(arch):
        _check(Path(pretrained).is_file(), path, "student.pretrained",
               f"is {pretrained!r}: neither a torchvision weights name of {arch} ({', '.join(weights_names(arch))}) "
               "nor an existing file (a torchvision state_dict saved with torch.save)")


# The `runtime` block: how stages run, not what they compute (README, "Robustness, resume
# and scale-out"). Optional; a missing key takes its default.
RUNTIME_DEFAULTS = {"device": "auto", "distributed": {"nproc_per_node": 1, "backend": "auto"},
                    "resume": True, "resume_every_s": 60, "on_bad_sample": "error", "amp": False, "channels_last": False}


def runtime_block(params: dict) -> dict:
    """``params['runtime']`` with the defaults filled in."""
    given = params.get("runtime") or {}
    out = {**RUNTIME_DEFAULTS, **given}
    out["distributed"] = {**RUNTIME_DEFAULTS["distributed"], **(given.get("distributed") or {})}
    return out


def _validate_runtime(params: dict, path) -> None:
    given = params.get("runtime", {})
    _check(isinstance(given, dict), path, "runtime", "must be a mapping")
    for key in given:
        _check(key in RUNTIME_DEFAULTS, path, f"runtime.{key}",
               f"is not a runtime setting (known: {', '.join(RUNTIME_DEFAULTS)})")
    distributed = given.get("distributed", {})
    _check(isinstance(distributed, dict), path, "runtime.distributed",
           "must be a mapping (nproc_per_node, backend)")
    for key in distributed:
        _check(key in RUNTIME_DEFAULTS["distributed"], path, f"runtime.distributed.{key}",
               "is not a setting (known: nproc_per_node, backend)")
    rt = runtime_block(params)
    _check(rt["device"] in DEVICES, path, "runtime.device",
           f"must be auto, cpu or cuda, got {rt['device']!r}")
    nproc = rt["distributed"]["nproc_per_node"]
    _check(isinstance(nproc, int) and not isinstance(nproc, bool) and nproc >= 1, path,
           "runtime.distributed.nproc_per_node", f"must be an integer >= 1, got {nproc!r}")
    backend = rt["distributed"]["backend"]
    _check(backend in BACKENDS, path, "runtime.distributed.backend",
           f"must be auto, gloo or nccl, got {backend!r}")
    _check(not (backend == "nccl" and rt["device"] == "cpu"), path, "runtime.distributed.backend",
           "is nccl, which needs CUDA: use gloo or auto with runtime.device cpu")
    _check(isinstance(rt["resume"], bool), path, "runtime.resume", f"must be true or false, got {rt['resume']!r}")
    every = rt["resume_every_s"]
    _check(isinstance(every, (int, float)) and not isinstance(every, bool) and every >= 0, path,
           "runtime.resume_every_s", f"must be a number of seconds >= 0 (0: every epoch), got {every!r}")
    _check(rt["on_bad_sample"] in ON_BAD_SAMPLE, path, "runtime.on_bad_sample",
           f"must be 'error' or 'skip', got {rt['on_bad_sample']!r}")
    _check(isinstance(rt["amp"], bool), path, "runtime.amp",
           f"must be true (autocast in training: bfloat16 on CPU; vskd/amp.py) or false, got {rt['amp']!r}")
    _check(isinstance(rt["channels_last"], bool), path, "runtime.channels_last",
           f"must be true (channels-last weights and inputs in training) or false, got {rt['channels_last']!r}")


def _validate_dataset(params: dict, name: str, path) -> None:
    from vskd.datasets import get_adapter

    block = dataset_block(params, name, path)
    _check(isinstance(get(params, f"{name}.source", path), str), path, f"{name}.source",
           "must be a string: a local folder or archive, or \"\"")
    download = get(params, f"{name}.download", path)
    _check(isinstance(download, dict), path, f"{name}.download", "must be a mapping")
    urls = download.get("urls", [])
    _check(isinstance(urls, list) and all(isinstance(u, str) and u.startswith(("http://", "https://"))
                                          for u in urls),
           path, f"{name}.download.urls", f"must be a list of http(s) URLs, got {urls!r}")
    for key in ("sha256", "sizes"):
        _check(isinstance(download.get(key, {}), dict), path, f"{name}.download.{key}",
               "must be a mapping from file name to value")
    _number(params, f"{name}.segments", path, integer=True, minimum=2)
    split = get(params, f"{name}.split", path)
    _check(isinstance(split, dict), path, f"{name}.split", "must be a mapping")
    for key, message in get_adapter(name).check_params(block):
        raise ParamsError(f"{path}: '{name}.{key}' {message}")
    split_name = get(params, f"{name}.split.name", path)
    _check(split_name in SPLIT_MEMBERS, path, f"{name}.split.name",
           f"must be one of {', '.join(SPLIT_MEMBERS)}, got {split_name!r}")
    members = get(params, f"{name}.split.{SPLIT_MEMBERS[split_name]}", path)
    _check(isinstance(members, list) and len(members) > 0
           and all(isinstance(m, int) and not isinstance(m, bool) for m in members),
           path, f"{name}.split.{SPLIT_MEMBERS[split_name]}",
           f"must be a non-empty list of integers for split '{split_name}', got {members!r}")
    vf = _number(params, f"{name}.split.val_fraction", path, minimum=0)
    _check(vf < 1, path, f"{name}.split.val_fraction", f"must be < 1, got {vf}")
