"""Where every stage reads and writes, per dataset: the one place that names the paths.

dvc.yaml declares the same paths as deps and outs (with ``${item}`` for the dataset);
``tests/test_paths.py`` checks the two agree, so a path changed here and not there (or the
reverse) fails a test instead of making DVC track a file no stage writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StagePaths:
    """The files of one dataset's stage chain, relative to the repository root (or ``root``)."""

    raw: Path              # download@: the recordings in the dataset's native layout
    frames: Path           # frames@: every decoded frame
    gaf: Path              # gaf@: GAF images and the raw accelerometer series
    teacher: Path          # teacher@: the TRN checkpoint
    teacher_outputs: Path  # teacher@: logits, features, attention maps of every sample
    student: Path          # student@: the first seed's baseline (the others beside it)
    vskd: Path             # distill@: the first seed's distilled student
    minirocket: Path       # minirocket@: test predictions per seed
    onnx: Path             # export@: the shipped graph (float and int8)
    metrics: Path          # evaluate@: the dataset's metrics JSON
    plots: Path            # evaluate@: confusion matrices
    export_metrics: Path   # export@: deterministic export and cost figures
    train_logs: Path       # teacher@, student@, distill@: per-epoch curves, one folder each

    def live(self, stage: str) -> Path:
        """dvclive's folder of a training stage (teacher, student, distill)."""
        return self.train_logs / stage


def stage_paths(dataset: str, root: str | Path = ".") -> StagePaths:
    root = Path(root)
    data, models, metrics = root / "data" / dataset, root / "models" / dataset, root / "metrics"
    return StagePaths(
        raw=data / "raw", frames=data / "frames.h5", gaf=data / "gaf.h5",
        teacher=models / "teacher.pt", teacher_outputs=models / "teacher_outputs.h5",
        student=models / "student.pt", vskd=models / "vskd.pt", minirocket=models / "minirocket.json",
        onnx=models / "onnx", metrics=metrics / f"{dataset}.json", plots=metrics / dataset / "plots",
        export_metrics=metrics / dataset / "export.json", train_logs=metrics / dataset / "train",
    )
