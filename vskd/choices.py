"""The allowed values of every params.yaml setting that is a choice, in one place.

Both sides read them from here: :mod:`vskd.params`, which rejects a bad value before a
stage does any work, and the module that acts on the value. This module imports nothing of
the project (and no torch at import time), so validating params.yaml does not make every
DVC stage depend on the training, loss or model code that defines what the choices do.
"""

from __future__ import annotations

# gaf.method: GASF (cos(phi_i + phi_j)) or GADF (sin(phi_i - phi_j)); vskd/gaf.py
GAF_METHODS = ("summation", "difference")
# gaf.scale: "axis" min-max scales each axis of a trial on its own (the paper's); "joint" uses
# one range for the three axes, so their relative size and offset survive: the share of
# gravity on each axis is the forearm's orientation, which per-axis scaling erases; "tanh" maps
# g to [-1, 1] the same way for every trial (tanh(a / 2 g)), so how hard a trial moves survives too;
# "sigmoid" is that map moved onto (0, 1), where the GASF also keeps each axis' sign (vskd/gaf.py).
GAF_SCALES = ("axis", "joint", "tanh", "sigmoid")

# student.arch, and torchvision's model and weights enum behind each (student.pretrained: a
# name of the enum); vskd/models/student.py
STUDENT_ARCHS = ("resnet18", "vgg16")
TORCHVISION = {"resnet18": ("resnet18", "ResNet18_Weights"), "vgg16": ("vgg16_bn", "VGG16_BN_Weights")}
# student.input_norm: the GAF as it is, or ImageNet's normalisation inside the model
INPUT_NORMS = ("none", "imagenet")

# student.augment: each augmentation and its value that leaves a trial unchanged; vskd/augment.py
AUGMENT_IDENTITY = {"rotation_deg": 0.0, "time_warp": 0.0, "crop": 1.0, "gain": 0.0, "jitter": 0.0}

# distill.method: Table 4's losses; vskd/losses.py
DISTILL_METHODS = ("dask", "st", "at", "sp")
# distill.semantic_scale: the paper's L_S, or L_S / the teacher features' mean squared norm
SEMANTIC_SCALES = ("none", "teacher")
# distill.trust: none keeps the weights as written; teacher_accuracy scales the distillation
# terms by trust_factor, so a teacher at chance cannot pull the student away from its labels.
TRUST = ("none", "teacher_accuracy")

# <section>.schedule of the teacher and student blocks; vskd/loop.py make_scheduler
SCHEDULES = ("constant", "step", "cosine")
# <section>.selection: the last epoch's weights, or the best validation epoch's (never test)
SELECTIONS = ("last", "best_val")
# teacher.optimizer: SGD with momentum (the authors', with ImageNet weights) or AdamW (from scratch)
TEACHER_OPTIMIZERS = ("sgd", "adamw")

# <dataset>.split.name, and the list of each split that names its training members; vskd/index.py
SPLIT_MEMBERS = {"cross_subject": "train_subjects", "subject_specific": "train_trials",
                 "cross_session": "train_sessions"}
SPLITS = tuple(SPLIT_MEMBERS)

# runtime block: vskd/runtime.py and vskd/badsamples.py
DEVICES = ("auto", "cpu", "cuda")
BACKENDS = ("auto", "gloo", "nccl")
ON_BAD_SAMPLE = ("error", "skip")


def weights_names(arch: str) -> tuple[str, ...]:
    """The torchvision weights names ``student.pretrained`` accepts for ``arch`` (and DEFAULT)."""
    import torchvision  # only when a student.pretrained name is checked or loaded

    enum = getattr(torchvision.models, TORCHVISION[arch][1])
    return ("DEFAULT", *(w.name for w in enum))
