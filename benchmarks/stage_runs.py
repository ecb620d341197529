"""The training stages' own objects, built by their builders, and one epoch of the real loop.

``vskd.train_teacher.prepare_teacher`` and ``vskd.train_student.prepare_student`` build what
a stage trains (model, step, loaders, optimiser, schedule, seed) from the workspace's
params.yaml, exactly as the stage scripts call them, without resume files, curves or
outputs; :class:`EpochRunner` runs one epoch of :meth:`vskd.loop.Training.fit` on them, and
replays the batches it saw through :func:`vskd.loop.train_batch`.
"""

from __future__ import annotations

import time

from benchmarks.common import Workspace, sync
from vskd.loop import Training, train_batch


def build_training(ws: Workspace, stage: str) -> Training:
    """What ``stages/<stage>.py`` (teacher, student or distill) trains, on its first seed."""
    from vskd.losses import distill_loss
    from vskd.params import runtime_block
    from vskd.runtime import start_runtime
    from vskd.train_student import prepare_student
    from vskd.train_teacher import prepare_teacher

    params, block, p = ws.params, ws.block, ws.paths
    runtime = runtime_block(params)
    rt = start_runtime({**runtime, "resume": False})  # no resume file: nothing is written
    if stage == "teacher":
        return prepare_teacher(rt, p.frames, p.teacher, cfg=params["teacher"],
                               segments=block["segments"], split_cfg=block["split"], seed=params["seed"],
                               on_bad_sample=runtime["on_bad_sample"]).training
    distill = stage == "distill"
    model = p.vskd if distill else p.student
    return prepare_student(rt, p.gaf, model, cfg=params["student"],
                           feature_dim=params["teacher"]["feature_dim"], split_cfg=block["split"],
                           seed=params["seeds"][0], split_seed=params["seed"],
                           loss=distill_loss(params) if distill else None,
                           teacher_path=p.teacher_outputs if distill else None).training


def train_step(training: Training, batch):
    """forward + backward + optimiser step on one batch: the loop's own step, without its
    bookkeeping (float32, as ``runtime.amp: false``)."""
    return train_batch(training.model, training.step, batch, training.optimizer, training.max_grad_norm)[0]


class Context:
    """The stages' training objects, built once and shared by the sections that need them."""

    def __init__(self, ws: Workspace):
        self.ws = ws
        self._built: dict[str, Training] = {}

    def training(self, stage: str) -> Training:
        if stage not in self._built:
            self._built[stage] = build_training(self.ws, stage)
        return self._built[stage]


class EpochRunner:
    """One epoch of the real loop on a stage's objects, and the same batches replayed."""

    def __init__(self, training: Training):
        self.training = training
        self.batches: list = []

    def real_epoch(self, loader=None) -> dict:
        """``fit(..., epochs=1)``: epoch 1, the stage's loader (or ``loader``), step, optimiser,
        validation.

        Returns the wall time of the whole call, of its training pass (up to validation) and
        of validation, and when the first batch reached ``step``."""
        marks: dict[str, float] = {}
        batches: list = []

        def step(batch):
            marks.setdefault("first", time.perf_counter())
            batches.append(batch)
            return self.training.step(batch)

        def evaluate():
            sync()
            marks["eval_start"] = time.perf_counter()
            out = self.training.evaluate()
            sync()
            marks["eval_end"] = time.perf_counter()
            return out

        changes = {"train_loader": loader} if loader is not None else {}
        sync()
        t0 = time.perf_counter()
        self.training.fit(None, step=step, evaluate=evaluate, epochs=1, resume=None, **changes)
        sync()
        t1 = time.perf_counter()
        if loader is None:
            self.batches = batches
        self.last_batches = batches
        return {"epoch_s": t1 - t0, "train_pass_s": marks["eval_start"] - t0,
                "validation_s": marks["eval_end"] - marks["eval_start"],
                "first_batch_s": marks["first"] - t0, "batches": len(batches)}

    def pure(self, batches=None) -> float:
        """forward + backward + step over ``batches`` (default: those of the last real epoch on
        the stage's loader), already in memory."""
        self.training.model.train()
        sync()
        t0 = time.perf_counter()
        for batch in (self.batches if batches is None else batches):
            train_step(self.training, batch)
        sync()
        return time.perf_counter() - t0

    def loader_only(self, loader=None) -> float:
        from vskd.loaders import set_loader_epoch

        loader = loader or self.training.train_loader
        set_loader_epoch(loader, self.training.seed, 1)
        t0 = time.perf_counter()
        for _ in loader:
            pass
        return time.perf_counter() - t0
