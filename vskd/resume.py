"""Resuming an interrupted training stage (``runtime.resume``, default true).

After every epoch the whole training state (model, optimiser, scheduler, the RNG states of
torch, numpy, Python and of extra generators such as TRN's relation sampler, the per-epoch
history that dvclive logs) goes to ``models/<ds>/.<stage>.resume.pt`` (:class:`ResumeFile`);
a stage started again after an interruption continues from it when it was written by the
same configuration, and deletes it once the stage's outputs are written. The data order is a
function of (seed, epoch) alone (:func:`vskd.loaders.make_loader`), so epochs k+1.. of a
resumed run see exactly the batches of an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from vskd.amp import Amp
from vskd.h5store import atomic_path
from vskd.runtime import Runtime


def cpu_state(module: nn.Module) -> dict:
    """A copy of ``module.state_dict()`` on the CPU (what checkpoints and selection keep)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


def rng_state(generators) -> dict:
    """The states of torch's, numpy's and Python's global RNGs (and CUDA's, once used), and of
    ``generators``: what a resumed run restores to draw the same numbers as an uninterrupted one."""
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"key": np_state[0], "pos": int(np_state[2]), "has_gauss": int(np_state[3]),
                  "cached_gaussian": float(np_state[4]),
                  "state": torch.from_numpy(np_state[1].astype(np.int64))},
        "python": random.getstate(),
        "generators": [g.get_state() for g in generators],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict, generators) -> None:
    """Restore what :func:`rng_state` saved."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["key"], n["state"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    for g, s in zip(generators, state["generators"]):
        g.set_state(s)
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class ResumeFile:
    """``models/<ds>/.<stage>.resume.pt``: the training state after the last finished epoch.

    ``config`` is everything that determines the run (the stage's params, the seed, the
    identity of its input files, the number of processes, the device type); a file written
    by another configuration is ignored and replaced, never continued.
    """

    def __init__(self, model_path: str | Path, stage: str, config: dict, runtime: Runtime | None = None):
        model_path = Path(model_path)
        self.path = model_path.with_name(f".{stage}.resume.pt")
        self.stage = stage
        self.runtime = runtime or Runtime()
        extra = {"amp": str(Amp(self.runtime.device).dtype)} if self.runtime.amp else {}
        blob = json.dumps({**config, "stage": stage, "world_size": self.runtime.world_size,
                           "device": self.runtime.device.type, **extra}, sort_keys=True, default=str)
        self.fingerprint = hashlib.sha256(blob.encode()).hexdigest()
        self.last_saved = time.monotonic()  # the run's start counts as the last save

    def due(self) -> bool:
        """Whether ``runtime.resume_every_s`` has passed since the last save. A save moves the
        student's weights and Adam moments, 135 MB, in about 0.25 s on the 2-core CPU (a cProfile of
        a dev-fold student): a tenth of its epoch if written every epoch. Once a minute, an
        interruption loses at most a minute."""
        return time.monotonic() - self.last_saved >= self.runtime.resume_every_s

    @staticmethod
    def file_identity(*paths) -> list:
        """What identifies an input file cheaply: name, size, modification time."""
        out = []
        for p in paths:
            st = Path(p).stat()
            out.append([str(p), st.st_size, st.st_mtime_ns])
        return out

    def load(self) -> dict | None:
        if not self.path.is_file():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a file cut short cannot be: it is renamed into place whole
            print(f"{self.stage}: ignoring unreadable {self.path} ({exc}); starting over", file=sys.stderr)
            return None
        if state.get("fingerprint") != self.fingerprint:
            if self.runtime.is_main:
                print(f"{self.stage}: {self.path} was written by another configuration "
                      "(params, inputs or processes changed); starting over", file=sys.stderr)
            return None
        return state

    def save(self, state: dict) -> None:
        if self.runtime.is_main:
            with atomic_path(self.path) as tmp:
                torch.save({**state, "fingerprint": self.fingerprint}, tmp)
        self.last_saved = time.monotonic()

    def finish(self) -> None:
        """The stage's outputs are written: the resume file has served."""
        if self.runtime.is_main and self.path.exists():
            self.path.unlink()

