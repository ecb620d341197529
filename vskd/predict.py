"""``python -m vskd predict MODEL FILE``: classify an accelerometer recording.

MODEL is the exported ONNX graph (run with onnxruntime; everything it needs, class names
included, is in its metadata) or a GAF student checkpoint ``.pt`` (run with torch; its GAF
settings come from ``--params``, default ``params.yaml``, since checkpoints do not record them).

FILE is a UTD-MHAD ``.mat`` (variable ``d_iner``; columns 1-3 are the accelerometer in g) or
a ``.csv`` in the format :func:`read_csv` documents.

A recording no longer than the window gives one prediction over the whole recording, as the
student was trained on whole trials. A longer one is cut into sliding windows (``--window``
and ``--stride`` in seconds), one prediction per window; the last window is aligned with the
end of the recording so no tail is left unclassified.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TIME_COLUMNS = ("t", "time", "timestamp")


def read_csv(path: str | Path) -> tuple[np.ndarray, float | None]:
    """A CSV accelerometer recording -> ((N, 3) float64 in g, sampling rate from its time column).

    Accepted format (comma-separated, one sample per row, blank lines and ``#`` comments skipped):

    * without a header: 3 columns ``x,y,z``, or 4 columns ``t,x,y,z``;
    * with a header (a first row that is not all numbers): columns named ``x``, ``y``, ``z``
      (case-insensitive) and optionally ``t``, ``time`` or ``timestamp``; other columns are
      ignored.

    Acceleration is in g (UTD-MHAD's unit). The time column, in seconds and strictly
    increasing, gives the sampling rate (1 / median step); without one the rate is None.
    """
    path = Path(path)
    with open(path, newline="") as f:
        rows = [(i, [c.strip() for c in row]) for i, row in enumerate(csv.reader(f), start=1)
                if row and any(c.strip() for c in row) and not row[0].lstrip().startswith("#")]
    if not rows:
        raise ValueError(f"{path}: empty CSV; expected columns x,y,z (g), optionally t (s) first")
    columns, time_col, has_header = _csv_columns(path, *rows[0])
    values = _csv_values(path, rows[1:] if has_header else rows,
                         columns + ([time_col] if time_col is not None else []))
    rate = None
    if time_col is not None:
        steps = np.diff(values[:, 3])
        if (steps <= 0).any():
            bad = int(np.flatnonzero(steps <= 0)[0]) + 1
            raise ValueError(f"{path}: the time column must increase strictly (sample {bad + 1} does not)")
        rate = round(float(1.0 / np.median(steps)), 6)  # timestamps are rounded; 49.99999999 Hz is 50
    return values[:, :3], rate


def _numeric(cells) -> bool:
    try:
        [float(c) for c in cells]
        return True
    except ValueError:
        return False


def _csv_columns(path: Path, line: int, first: list[str]) -> tuple[list[int], int | None, bool]:
    """(x, y, z column indices, time column or None, whether ``first`` is a header)."""
    if _numeric(first):
        if len(first) == 3:
            return [0, 1, 2], None, False
        if len(first) == 4:
            return [1, 2, 3], 0, False
        raise ValueError(f"{path}: line {line} has {len(first)} columns; without a header a row must be "
                         "x,y,z or t,x,y,z")
    names = [c.lower() for c in first]
    missing = [a for a in ("x", "y", "z") if a not in names]
    if missing:
        raise ValueError(f"{path}: header {first} has no column(s) {missing}; expected x,y,z "
                         "(g) and optionally t/time/timestamp (s)")
    time_col = next((names.index(t) for t in TIME_COLUMNS if t in names), None)
    return [names.index(a) for a in ("x", "y", "z")], time_col, True


def _csv_values(path: Path, rows: list, wanted: list[int]) -> np.ndarray:
    """The ``wanted`` columns of every (line, cells) row as float64; errors name the line."""
    values = np.empty((len(rows), len(wanted)), dtype=np.float64)
    for k, (line, row) in enumerate(rows):
        if len(row) <= max(wanted):
            raise ValueError(f"{path}: line {line} has {len(row)} columns, expected at least {max(wanted) + 1}")
        try:
            values[k] = [float(row[c]) for c in wanted]
        except ValueError:
            raise ValueError(f"{path}: line {line} is not numeric: {','.join(row)}") from None
        if not np.isfinite(values[k]).all():
            raise ValueError(f"{path}: line {line} has NaN or inf: {','.join(row)}")
    if len(values) < 2:
        raise ValueError(f"{path}: {len(values)} sample(s); a recording needs at least 2")
    return values


def read_recording(path: str | Path) -> tuple[np.ndarray, float | None]:
    """(N, 3) accelerometer in g and, when the file says, its sampling rate in Hz."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".mat":
        from vskd.datasets.utd_mhad import read_accelerometer

        return read_accelerometer(path), None
    if suffix == ".csv":
        return read_csv(path)
    raise ValueError(f"{path}: unsupported file type '{suffix}'; expected a UTD-MHAD .mat (d_iner) or a .csv")


def window_starts(n: int, window: int, stride: int) -> list[int]:
    """Start indices of the sliding windows over n samples (n > window); the last ends at n."""
    starts = list(range(0, n - window + 1, stride))
    if starts[-1] + window < n:
        starts.append(n - window)
    return starts


@dataclass
class Predictor:
    """A loaded model: ``probabilities(clips) -> (len(clips), classes)``."""

    kind: str
    class_names: list[str]
    sample_rate: float      # Hz the model was trained at: the default for files without time
    clip_seconds: float     # default window
    _run: object

    def probabilities(self, clips: list[np.ndarray]) -> np.ndarray:
        return self._run(clips)


def _onnx_predictor(path: Path) -> Predictor:
    from vskd.cost import onnx_session
    from vskd.datasets.resample import resample_to_length
    from vskd.export import onnx_metadata, run_onnx

    try:
        session = onnx_session(path, threads=1)
        meta = onnx_metadata(session)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
    except Exception as exc:  # onnxruntime raises its own types for unreadable graphs
        raise ValueError(f"{path}: not a readable ONNX model ({exc})") from exc
    window = meta["window"]
    rate = meta.get("sample_rate", 50.0)

    def run(clips):
        return run_onnx(session, np.stack([resample_to_length(c, window) for c in clips]))

    return Predictor("onnx", meta["class_names"], rate, meta.get("clip_seconds", window / rate), run)


def _torch_predictor(path: Path, params_path: Path) -> Predictor:
    import torch

    from vskd.export import load_student
    from vskd.gaf import accelerometer_to_gaf

    model, ckpt = load_student(path)
    params = {}
    if params_path.is_file():
        import yaml

        params = yaml.safe_load(params_path.read_text()) or {}
    gaf = ckpt.get("gaf") or params.get("gaf")
    if not gaf or "image_size" not in gaf or "method" not in gaf:
        raise ValueError(f"{path}: the checkpoint does not record its GAF settings and {params_path} has no "
                         "gaf.image_size / gaf.method; run from the repository root or pass --params")
    export_cfg = params.get("export") or {}
    rate = float(export_cfg.get("sample_rate", 50.0))
    clip_seconds = float(export_cfg.get("window", 4.0 * rate)) / rate
    class_names = ckpt.get("class_names") or [str(i) for i in range(model.num_classes)]

    @torch.no_grad()
    def run(clips):
        # The clip at its own length, exactly as the gaf stage encodes a training trial.
        images = np.stack([accelerometer_to_gaf(c, int(gaf["image_size"]), gaf["method"], gaf.get("scale", "axis"))
                           for c in clips])
        return torch.softmax(model(torch.from_numpy(images)), dim=1).numpy()

    return Predictor("torch", list(class_names), rate, clip_seconds, run)


def load_predictor(model_path: str | Path, params_path: str | Path = "params.yaml") -> Predictor:
    path = Path(model_path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    if path.suffix.lower() == ".onnx":
        return _onnx_predictor(path)
    if path.suffix.lower() in (".pt", ".pth"):
        return _torch_predictor(path, Path(params_path))
    raise ValueError(f"{path}: unsupported model type '{path.suffix}'; expected .onnx or a .pt student checkpoint")


def predict_file(predictor: Predictor, file, *, window_s: float | None = None, stride_s: float | None = None,
                 rate: float | None = None) -> dict:
    """Predictions for one recording: one per window, with every class probability."""
    acc, file_rate = read_recording(file)
    rate = float(rate or file_rate or predictor.sample_rate)
    window_s = float(window_s if window_s is not None else predictor.clip_seconds)
    stride_s = float(stride_s if stride_s is not None else window_s / 2)
    if rate <= 0 or window_s <= 0 or stride_s <= 0:
        raise ValueError(f"rate, window and stride must be positive (got {rate}, {window_s}, {stride_s})")
    window = max(2, int(round(window_s * rate)))
    stride = max(1, int(round(stride_s * rate)))
    n = len(acc)
    starts = [0] if n <= window else window_starts(n, window, stride)
    spans = [(s, min(n, s + window)) for s in starts]
    probs = predictor.probabilities([acc[a:b] for a, b in spans])
    names = predictor.class_names
    windows = []
    for (a, b), p in zip(spans, probs):
        k = int(np.argmax(p))
        windows.append({"start_s": round(a / rate, 6), "end_s": round(b / rate, 6), "samples": b - a, "label": names[k],
                        "probability": float(p[k]),
                        "probabilities": {name: float(v) for name, v in zip(names, p)}})
    return {"file": str(file), "model": predictor.kind, "samples": n, "rate_hz": rate,
            "duration_s": round(n / rate, 6), "window_s": round(window / rate, 6),
            "stride_s": round(stride / rate, 6), "windows": windows}


def format_table(result: dict, top: int = 3) -> str:
    """The predictions as readable text: one line per window, label first.

    ``top`` is how many classes are shown, the most probable first, whatever the number of
    windows: one window lists its ``top`` classes below the label; many windows give the
    label and the ``top - 1`` runners-up on each window's line.
    """
    w = result["windows"]
    lines = [f"{result['file']}: {result['samples']} samples at {result['rate_hz']:g} Hz "
             f"({result['duration_s']:.2f} s), {len(w)} window(s) of {result['window_s']:.2f} s "
             f"({result['model']} model)"]
    if len(w) == 1:
        lines.append(f"label: {w[0]['label']} (p = {w[0]['probability']:.3f})")
        ranked = sorted(w[0]["probabilities"].items(), key=lambda kv: -kv[1])[:max(1, top)]
        width = max(len(name) for name, _ in ranked)
        lines += [f"  {name:<{width}}  {p:.3f}" for name, p in ranked]
        return "\n".join(lines)
    width = max(len(x["label"]) for x in w)
    lines.append(f"{'start_s':>8} {'end_s':>7}  {'label':<{width}}  {'p':>5}  next")
    for x in w:
        ranked = sorted(x["probabilities"].items(), key=lambda kv: -kv[1])[1:top]
        rest = ", ".join(f"{name} {p:.3f}" for name, p in ranked)
        lines.append(f"{x['start_s']:8.2f} {x['end_s']:7.2f}  {x['label']:<{width}}  {x['probability']:.3f}  {rest}")
    return "\n".join(lines)


def to_json(result: dict) -> str:
    return json.dumps(result, indent=2)
