"""The per-epoch curves of a training stage, written with dvclive (``metrics/<ds>/train/<stage>/``)."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

from vskd.runtime import Runtime


class NoLive:
    """dvclive stand-in for ranks other than 0, and for a run without curves."""

    step = 0

    def log_metric(self, *args, **kwargs):
        pass

    def next_step(self):
        pass


def open_live(directory: str | Path, runtime: Runtime | None = None):
    """dvclive without its dvc.yaml edits and experiment saving: the stage declares its
    files in dvc.yaml itself (see REFERENCE: dvclive's defaults rewrite dvc.yaml).
    Under DDP only rank 0 logs; the others get a stand-in that drops everything."""
    from dvclive import Live

    if runtime is not None and not runtime.is_main:
        return nullcontext(NoLive())
    return Live(dir=str(directory), dvcyaml=None, save_dvc_exp=False, report=None)
