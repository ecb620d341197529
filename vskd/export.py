"""The shipped student: one ONNX graph from a raw accelerometer window to class probabilities.

    accelerometer (B, L, 3) float32, in g, L = export.window samples
      -> GAF of each axis, resized to image_size x image_size  (vskd.gaf, as torch ops)
      -> ResNet18 student -> softmax -> probabilities (B, classes) float32

The GAF stage of training (:func:`vskd.gaf.accelerometer_to_gaf`) builds the n x n field of
a whole trial and shrinks it with an antialiased bilinear resize. That resize is separable
and linear: image = R G R^T with R the (S x n) resize matrix. GASF is G = c c^T - s s^T
(c = the min-max scaled axis, s = sqrt(1 - c^2)), so

    image = (R c)(R c)^T - (R s)(R s)^T          (GADF: (R s)(R c)^T - (R c)(R s)^T)

a rank-2 product the graph computes from two (S x L) matrix products, without ever forming
the L x L field. R is a constant of the graph, so the input length L is fixed: a clip of any
length is first resampled to L samples (:func:`vskd.datasets.resample.resample_to_length`,
linear interpolation, end points kept). A clip of exactly L samples gives the same image as
``vskd.gaf`` to float32 rounding.

The export stage (:func:`run_export`) writes the graphs and metrics that every machine
reproduces; ``python -m vskd.export DATASET`` (:func:`main`) prints the cost table with the
CPU latencies, which no machine reproduces and so are kept out of the DVC outputs.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from vskd.datasets.resample import resample_to_length
from vskd.choices import GAF_METHODS, GAF_SCALES
from vskd.gaf import CONSTANT_RANGE, MINMAX_SCALES, TANH_SCALE_G, resize_matrix

INPUT_NAME = "accelerometer"
OUTPUT_NAME = "probabilities"


class GAFLayer(nn.Module):
    """``vskd.gaf.accelerometer_to_gaf`` for fixed-length windows, in torch ops that export to ONNX.

    (B, window, 3) accelerometer -> (B, 3, image_size, image_size), channels x, y, z.
    """

    def __init__(self, window: int, image_size: int, method: str = "summation", scale: str = "axis"):
        super().__init__()
        if method not in GAF_METHODS:
            raise ValueError(f"method must be one of {GAF_METHODS}, got {method!r}")
        if scale not in GAF_SCALES:
            raise ValueError(f"scale must be one of {GAF_SCALES}, got {scale!r}")
        self.window, self.image_size, self.method, self.scale = int(window), int(image_size), method, scale
        r = torch.from_numpy(resize_matrix(self.window, self.image_size).copy()).float()
        self.register_buffer("resize_t", r.T.contiguous())  # (window, image_size)

    def forward(self, acc: torch.Tensor) -> torch.Tensor:
        x = acc.transpose(1, 2)                              # (B, 3, L)
        cos = self._minmax(x) if self.scale in MINMAX_SCALES else torch.tanh(x / TANH_SCALE_G)
        if self.scale == "sigmoid":                          # (1 + tanh) / 2, as vskd.gaf
            cos = 0.5 * (1.0 + cos)
        sin = torch.sqrt((1.0 - cos * cos).clamp(min=0.0))
        u = torch.matmul(cos, self.resize_t)                 # (B, 3, S): R cos
        v = torch.matmul(sin, self.resize_t)                 # (B, 3, S): R sin
        if self.method == "summation":
            image = u.unsqueeze(-1) * u.unsqueeze(-2) - v.unsqueeze(-1) * v.unsqueeze(-2)
        else:
            image = v.unsqueeze(-1) * u.unsqueeze(-2) - u.unsqueeze(-1) * v.unsqueeze(-2)
        return image.clamp(-1.0, 1.0)

    def _minmax(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, L) -> per-window min-max scaled to [-1, 1], as ``vskd.gaf.scale_minmax``."""
        over = (-2, -1) if self.scale == "joint" else -1       # gaf.scale, as vskd.gaf
        lo = x.amin(dim=over, keepdim=True)
        hi = x.amax(dim=over, keepdim=True)
        span = hi - lo
        constant = span < CONSTANT_RANGE                     # constant axis -> 0, as vskd.gaf
        one = torch.ones_like(span)
        cos = 2.0 * (x - lo) / torch.where(constant, one, span) - 1.0
        return torch.where(constant, torch.zeros_like(cos), cos).clamp(-1.0, 1.0)

    def macs(self, inputs, output) -> int:
        """Multiply-accumulates of one forward (vskd.cost counts it): 2 resizes + 2 outer products."""
        b = inputs[0].shape[0]
        s = self.image_size
        return b * 3 * (2 * self.window * s + 2 * s * s)


class GAFStudentPipeline(nn.Module):
    """Accelerometer window (B, window, 3) in g -> class probabilities (B, classes)."""

    def __init__(self, student: nn.Module, window: int, image_size: int, method: str = "summation",
                 scale: str = "axis"):
        super().__init__()
        self.gaf = GAFLayer(window, image_size, method, scale)
        self.student = student

    def forward(self, acc: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.student(self.gaf(acc)), dim=1)


def load_student(path, stage: str = "distill"):
    """A GAF student checkpoint -> (GAFStudent in eval mode, checkpoint dict)."""
    from vskd.models.student import GAFStudent
    from vskd.checkpoints import load_checkpoint

    ckpt = load_checkpoint(path, stage)
    if ckpt.get("kind") != "gaf_student":
        raise ValueError(f"{path}: not a GAF student checkpoint (kind {ckpt.get('kind')!r})")
    model = GAFStudent(**ckpt["config"])
    model.load_state_dict(ckpt["state_dict"])
    return model.eval(), ckpt


def export_onnx(pipeline: GAFStudentPipeline, path, *, opset: int = 17, metadata: dict | None = None) -> Path:
    """Write ``pipeline`` as one ONNX graph (dynamic batch) with ``metadata`` in metadata_props.

    Uses torch's TorchScript-based exporter (``dynamo=False``): torch's default before 2.9 and
    still available (used here with torch 2.14); the newer dynamo exporter would add the
    onnxscript dependency.
    """
    import onnx

    from vskd.h5store import atomic_path

    pipeline = pipeline.eval()
    dummy = torch.rand(2, pipeline.gaf.window, 3) * 2.0 - 1.0
    kwargs = {}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False
    path = Path(path)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice, tracer notes
        torch.onnx.export(pipeline, (dummy,), str(tmp), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                          opset_version=opset, do_constant_folding=True, **kwargs)
        model = onnx.load(str(tmp))
        onnx.helper.set_model_props(model, {k: str(v) for k, v in (metadata or {}).items()})
        onnx.checker.check_model(model)
        onnx.save(model, str(tmp))
    return path


class _quiet_root_logger:
    """onnxruntime's quantizer logs an advisory warning through the root logger; hide it."""

    def __enter__(self):
        self.level = logging.root.manager.disable
        logging.disable(logging.WARNING)

    def __exit__(self, *exc):
        logging.disable(self.level)


def quantize_int8(onnx_path, out_path) -> Path:
    """Dynamic int8 quantization (onnxruntime) of the student: its convolutions and fc0, fc1.

    Weights are stored as 8-bit integers; activations are quantized on the fly per tensor.
    The GAF's two resize products stay float: quantizing the resize matrix would change the
    image the student was trained on, for no measurable gain (under 0.1 % of the MACs).
    Weights are uint8: onnxruntime's CPU ConvInteger runs about 3x faster with them than with
    int8 weights (measured 7.5 against 20.6 ms per sample on one thread, onnxruntime 1.32).
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from vskd.h5store import atomic_path

    model = onnx.load(str(onnx_path))
    resize = {init.name for init in model.graph.initializer
              if len(init.dims) == 2 and "resize" in init.name}
    exclude = [node.name for node in model.graph.node if node.op_type == "MatMul" and resize & set(node.input)]
    with atomic_path(out_path) as tmp, _quiet_root_logger():
        quantize_dynamic(str(onnx_path), str(tmp), weight_type=QuantType.QUInt8, nodes_to_exclude=exclude)
        quantized = onnx.load(str(tmp))
        del quantized.metadata_props[:]
        onnx.helper.set_model_props(quantized, {p.key: p.value for p in model.metadata_props})
        onnx.save(quantized, str(tmp))
    return Path(out_path)


def onnx_metadata(session) -> dict:
    """The ``metadata_props`` of an onnxruntime session, with the vskd values decoded."""
    raw = dict(session.get_modelmeta().custom_metadata_map)
    if "class_names" not in raw or "window" not in raw:
        raise ValueError("the ONNX model has no vskd metadata (class_names, window); "
                         "export it with `python stages/export.py DATASET`")
    meta = dict(raw)
    meta["class_names"] = json.loads(raw["class_names"])
    meta["window"] = int(raw["window"])
    for key in ("sample_rate", "clip_seconds"):
        if key in raw:
            meta[key] = float(raw[key])
    return meta


def run_onnx(session, windows: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Probabilities (N, classes) of (N, window, 3) windows through an onnxruntime session."""
    windows = np.asarray(windows, dtype=np.float32)
    out = [session.run([OUTPUT_NAME], {INPUT_NAME: windows[i:i + batch_size]})[0]
           for i in range(0, len(windows), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


@torch.no_grad()
def run_torch(pipeline: nn.Module, windows: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Probabilities (N, classes) of (N, window, 3) windows through the torch pipeline."""
    pipeline.eval()
    windows = torch.from_numpy(np.asarray(windows, dtype=np.float32))
    return torch.cat([pipeline(windows[i:i + batch_size]) for i in range(0, len(windows), batch_size)]).numpy()


# --- The export stage ----------------------------------------------------------------------

TOLERANCE = 1e-4  # largest |onnxruntime - torch| probability difference the stage accepts
DEFAULT_LATENCY_RUNS = 20  # `python -m vskd.export` runs per latency without export.latency_runs


def check_params(cfg, path="params.yaml") -> dict:
    """The ``export`` block of params.yaml, validated; errors name the key."""
    from vskd.params import ParamsError

    if not isinstance(cfg, dict):
        raise ParamsError(f"{path}: missing block 'export:'")

    def need(key, ok, what):
        if key not in cfg:
            raise ParamsError(f"{path}: missing key 'export.{key}'")
        value = cfg[key]
        if isinstance(value, bool) != (what == "a boolean") or not ok(value):
            raise ParamsError(f"{path}: 'export.{key}' must be {what}, got {value!r}")
        return value

    return {
        "window": need("window", lambda v: isinstance(v, int) and v >= 2, "an integer >= 2"),
        "sample_rate": float(need("sample_rate", lambda v: isinstance(v, (int, float)) and v > 0, "a number > 0")),
        "opset": need("opset", lambda v: isinstance(v, int) and 13 <= v <= 20, "an integer in 13..20"),
        "quantize": need("quantize", lambda v: isinstance(v, bool), "a boolean"),
        # read by `python -m vskd.export` only (latencies are not stage metrics); optional
        "latency_runs": (need("latency_runs", lambda v: isinstance(v, int) and v >= 1, "an integer >= 1")
                         if "latency_runs" in cfg else DEFAULT_LATENCY_RUNS),
    }


def training_rate(block: dict, cfg: dict) -> float:
    """Sampling rate (Hz) of the recordings the student was trained on: the dataset's
    ``sensor.rate_hz`` when it resamples onto a fixed rate, else ``export.sample_rate``."""
    sensor = block.get("sensor")
    rate = sensor.get("rate_hz") if isinstance(sensor, dict) else None
    return float(rate) if rate else float(cfg["sample_rate"])


def _entry(params, macs, file_path=None, latency_s=None, **extra) -> dict:
    out = {"params": int(params), "macs": int(macs)}
    if latency_s is not None:
        out["latency_ms"] = round(latency_s * 1e3, 3)
    if file_path is not None:
        out["file_bytes"] = os.path.getsize(file_path)
    out.update(extra)
    return out


def cost_report(pipeline: GAFStudentPipeline, student_path, teacher_path, onnx_path, int8_path,
                runs: int | None = None, paper_scale: bool = True) -> dict:
    """Parameters, MACs and file size of teacher and student; with ``runs``, CPU latency too.

    teacher: TRN on BN-Inception over all segments at its trained input size; teacher_paper:
    the same network at the paper's 224 px and 8 segments. student: GAF + ResNet18 (+ softmax)
    on one window at the trained image size; student_paper: at the paper's 224 px GAF. onnx and
    onnx_int8: the exported graphs in onnxruntime (same MACs as student: the same computation).
    ``paper_scale=False`` leaves out the two 224 px rows (for quick tests).

    ``runs=None`` (the export stage) reports only what is the same on every machine, so that
    the stage's metrics file, a DVC output, does not change from one ``dvc repro`` to the next.
    With ``runs`` (``python -m vskd.export DATASET``) each row also gets ``latency_ms``: the
    median of ``runs`` single-sample runs on one thread (the teacher's exclude decoding the
    video). Everything runs on one thread (MAC counting too: on a busy CPU two threads can be
    20x slower).
    """
    from vskd.cost import torch_threads

    with torch_threads(1):
        return _cost_report(pipeline, student_path, teacher_path, onnx_path, int8_path, runs, paper_scale)


def _cost_models(pipeline, teacher_path, paper_scale) -> dict:
    """name -> (torch module in eval mode, its one-sample input, the input in words) of each torch row."""
    from vskd.models.student import GAFStudent
    from vskd.models.trn import TRNTeacher
    from vskd.checkpoints import load_checkpoint

    window, size = pipeline.gaf.window, pipeline.gaf.image_size
    acc = torch.rand(1, window, 3) * 2.0 - 1.0
    models = {"student": (pipeline, (acc,), f"{window} x 3 accelerometer -> 3 x {size} x {size} GAF")}
    student = pipeline.student
    if paper_scale:
        paper = GAFStudentPipeline(GAFStudent(student.num_classes, student.feature_dim,
                                              arch=getattr(student, "arch", "resnet18"),
                                              input_norm=getattr(student, "input_norm", "none")), window, 224,
                                   pipeline.gaf.method).eval()
        models["student_paper"] = (paper, (acc,), f"{window} x 3 accelerometer -> 3 x 224 x 224 GAF")
    ckpt = load_checkpoint(teacher_path, "teacher")
    config = dict(ckpt["config"])
    teacher = TRNTeacher(**config)
    teacher.load_state_dict(ckpt["state_dict"])
    segments, side = config["num_segments"], int(ckpt["input_size"])
    models["teacher"] = (teacher.eval(), (torch.rand(1, segments, 3, side, side) * 255.0,),
                         f"{segments} x 3 x {side} x {side} frames")
    if paper_scale:
        config["num_segments"] = 8
        models["teacher_paper"] = (TRNTeacher(**config).eval(), (torch.rand(1, 8, 3, 224, 224) * 255.0,),
                                   "8 x 3 x 224 x 224 frames")
    return models


def _cost_report(pipeline, student_path, teacher_path, onnx_path, int8_path, runs, paper_scale) -> dict:
    from vskd.cost import count_macs, count_params, onnx_latency, torch_latency

    models = _cost_models(pipeline, teacher_path, paper_scale)
    files = {"student": student_path, "teacher": teacher_path}
    report = {}
    for name, (model, inputs, described) in models.items():
        latency = None if runs is None else torch_latency(model, inputs, runs)
        extra = {"gaf_macs": pipeline.gaf.macs(inputs, None)} if name == "student" else {}
        report[name] = _entry(count_params(model), count_macs(model, *inputs), files.get(name), latency,
                              **extra, input=described)
    feed = {INPUT_NAME: models["student"][1][0].numpy()}
    for name, path in (("onnx", onnx_path), ("onnx_int8", int8_path)):
        if path is not None:
            latency = None if runs is None else onnx_latency(path, feed, runs)
            report[name] = _entry(report["student"]["params"], report["student"]["macs"], path, latency)
    ratio = {"trained": report["teacher"]["macs"] / report["student"]["macs"]}
    if paper_scale:
        ratio["paper"] = report["teacher_paper"]["macs"] / report["student_paper"]["macs"]
    order = ("student", "student_paper", "onnx", "onnx_int8", "teacher", "teacher_paper")
    return {"cost": {k: report[k] for k in order if k in report},
            "mac_ratio": {k: round(v, 3) for k, v in ratio.items()}}


def _graph_metadata(dataset, window, rate, class_names, image_size, method, student_path, selection) -> dict:
    """The metadata_props of the exported graph: all ``predict`` needs to run it, and its contract."""
    return {
        "class_names": json.dumps(class_names), "window": window, "sample_rate": rate,
        "clip_seconds": window / rate, "gaf_method": method, "gaf_image_size": image_size, "dataset": dataset,
        "source": str(student_path), "selection": selection,
        "contract": (f"input '{INPUT_NAME}': float32 (batch, {window}, 3), acceleration x, y, z in g; "
                     f"a clip of any length is resampled to {window} samples (linear interpolation, "
                     f"end points kept). output '{OUTPUT_NAME}': float32 (batch, {len(class_names)}), "
                     "softmax over class_names"),
    }


def _scores(y, store_pred, preds: dict) -> tuple[dict, dict]:
    """(accuracy, agreement) of the predictions by name (torch, onnx, int8) and the stored-GAF ones."""
    accuracy = {"gaf_store": float(np.mean(store_pred == y))}
    accuracy.update({name: float(np.mean(p == y)) for name, p in preds.items()})
    agreement = {"onnx_torch": float(np.mean(preds["onnx"] == preds["torch"])),
                 "torch_gaf_store": float(np.mean(preds["torch"] == store_pred))}
    if "int8" in preds:
        accuracy["int8_change"] = round(accuracy["int8"] - accuracy["onnx"], 6)
        agreement["int8_onnx"] = float(np.mean(preds["int8"] == preds["onnx"]))
    return accuracy, agreement


def _fresh_outputs(out_dir) -> tuple[Path, Path]:
    """(vskd.onnx, vskd.int8.onnx) in ``out_dir``, created, with the graphs of an earlier run removed
    (so that a run with ``quantize: false`` leaves no int8 model behind)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = out_dir / "vskd.onnx", out_dir / "vskd.int8.onnx"
    for stale in paths:
        stale.unlink(missing_ok=True)
    return paths


def run_export(dataset: str, *, raw_dir, block: dict, gaf_path, teacher_path, student_path, out_dir,
               metrics_path, cfg: dict, split_cfg: dict, seed: int, paper_scale: bool = True) -> dict:
    """Export the distilled student, verify it against torch, measure accuracy and cost.

    Writes ``out_dir/vskd.onnx`` (and ``vskd.int8.onnx`` with ``quantize``) and the metrics JSON.
    The metrics hold only what every machine reproduces (accuracies, differences, parameters,
    MACs, file sizes): the file is a DVC output, and a latency in it would change its hash
    in dvc.lock on every ``dvc repro``. Latencies: ``python -m vskd.export DATASET``.
    Runs on one thread throughout: predictable on a shared CPU.
    """
    from vskd.cost import torch_threads

    with torch_threads(1):
        return _run_export(dataset, raw_dir, block, gaf_path, teacher_path, student_path, out_dir, metrics_path,
                           cfg, split_cfg, seed, paper_scale)


def _run_export(dataset, raw_dir, block, gaf_path, teacher_path, student_path, out_dir, metrics_path, cfg,
                split_cfg, seed, paper_scale) -> dict:
    from vskd.cost import onnx_session
    from vskd.evaluate import student_predictions
    from vskd.h5store import atomic_path, get_meta, open_store, read_index
    from vskd.index import make_split
    from vskd.minirocket import read_recordings

    cfg = check_params(cfg)
    with open_store(gaf_path, "gaf") as h5:
        index = read_index(h5)
        class_names = get_meta(h5, "class_names")
        image_size, method = int(get_meta(h5, "image_size")), get_meta(h5, "method")
        scale = get_meta(h5, "scale") if "scale" in h5.attrs else "axis"
    test = make_split(index["subjects"], index["trials"], index["labels"], split_cfg, seed)["test"]
    y = index["labels"][test]
    windows = np.stack([resample_to_length(a, cfg["window"])
                        for a in read_recordings(dataset, raw_dir, block, index["ids"][test])])

    model, ckpt = load_student(student_path)
    if model.num_classes != len(class_names):
        raise ValueError(f"{student_path}: {model.num_classes} classes, but {gaf_path} has {len(class_names)}")
    pipeline = GAFStudentPipeline(model, cfg["window"], image_size, method, scale).eval()
    rate = training_rate(block, cfg)
    window_s = cfg["window"] / rate
    metadata = {**_graph_metadata(dataset, cfg["window"], rate, class_names, image_size, method, student_path,
                                  ckpt.get("selection", "")), "gaf_scale": scale}
    onnx_path, int8_path = _fresh_outputs(out_dir)
    export_onnx(pipeline, onnx_path, opset=cfg["opset"], metadata=metadata)
    p_torch = run_torch(pipeline, windows)
    p_onnx = run_onnx(onnx_session(onnx_path), windows)
    diff = float(np.abs(p_onnx - p_torch).max())
    if not diff <= TOLERANCE:
        raise ValueError(f"{onnx_path}: onnxruntime and torch differ by {diff:.3g} > {TOLERANCE} on the test windows")
    store_pred, _ = student_predictions(student_path, "distill", gaf_path, test)
    preds = {"torch": p_torch.argmax(1), "onnx": p_onnx.argmax(1)}
    if cfg["quantize"]:
        quantize_int8(onnx_path, int8_path)
        p_int8 = run_onnx(onnx_session(int8_path), windows)
        preds["int8"] = p_int8.argmax(1)
    else:
        int8_path = None

    accuracy, agreement = _scores(y, store_pred, preds)
    metrics = {
        "dataset": dataset,
        "test": len(test),
        "onnx": {"max_abs_diff": diff, "opset": cfg["opset"], "window": cfg["window"], "sample_rate": rate,
                 "window_s": window_s, "image_size": image_size, "method": method},
        "accuracy": accuracy,
        "agreement": agreement,
    }
    if int8_path is not None:
        metrics["onnx"]["int8_max_abs_diff"] = float(np.abs(p_int8 - p_torch).max())
    metrics.update(cost_report(pipeline, student_path, teacher_path, onnx_path, int8_path, paper_scale=paper_scale))
    with atomic_path(metrics_path) as tmp:
        Path(tmp).write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


# --- Latencies: `python -m vskd.export DATASET` --------------------------------------------------

def measure_cost(models_dir, runs: int, paper_scale: bool = True) -> dict:
    """The cost report of an exported student, latencies included (see :func:`cost_report`).

    Reads what the export stage leaves in ``models_dir`` (``models/<ds>``): ``vskd.pt``,
    ``teacher.pt``, ``onnx/vskd.onnx`` and, if present, ``onnx/vskd.int8.onnx``; the window and
    GAF settings come from the ONNX graph's metadata, so the torch rows time the same pipeline.
    Latencies differ from machine to machine and run to run, which is why they are measured
    here, on demand, and not by the stage into its DVC-tracked metrics.
    """
    from vskd.cost import onnx_session

    models_dir = Path(models_dir)
    onnx_path, int8_path = models_dir / "onnx" / "vskd.onnx", models_dir / "onnx" / "vskd.int8.onnx"
    for path in (models_dir / "vskd.pt", models_dir / "teacher.pt", onnx_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: not found; run `dvc repro export@{models_dir.name}` first")
    meta = onnx_metadata(onnx_session(onnx_path))
    model, _ = load_student(models_dir / "vskd.pt")
    pipeline = GAFStudentPipeline(model, meta["window"], int(meta["gaf_image_size"]), meta["gaf_method"],
                                  meta.get("gaf_scale", "axis")).eval()
    return cost_report(pipeline, models_dir / "vskd.pt", models_dir / "teacher.pt", onnx_path,
                       int8_path if int8_path.is_file() else None, runs=runs, paper_scale=paper_scale)


def format_cost(report: dict, runs: int) -> str:
    """The cost report as a text table, one row per model, latencies in ms."""
    rows = [("model", "input", "params", "MACs", "latency", "file")]
    for name, e in report["cost"].items():
        latency = f"{e['latency_ms']:.1f} ms" if "latency_ms" in e else ""
        size = f"{e['file_bytes'] / 1e6:.1f} MB" if "file_bytes" in e else ""
        rows.append((name, e.get("input", ""), f"{e['params'] / 1e6:.2f} M", f"{e['macs'] / 1e6:.1f} M", latency, size))
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    ratios = ", ".join(f"{k} {v:g}x" for k, v in report["mac_ratio"].items())
    lines.append(f"teacher / student MACs: {ratios}; latency: median of {runs} single-sample runs, one thread")
    return "\n".join(lines)


def main(argv=None) -> int:
    """``python -m vskd.export DATASET``: print the cost table of models/DATASET with CPU latencies."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m vskd.export", description=(
        "Parameters, MACs, file sizes and one-thread CPU latency per sample of the teacher and the "
        "exported student of DATASET (what `dvc repro export@DATASET` left in models/DATASET). "
        "Nothing is written: latencies depend on the machine, so they are no pipeline output."))
    parser.add_argument("dataset")
    parser.add_argument("--models", metavar="DIR", help="the models folder (default: models/DATASET)")
    parser.add_argument("--runs", type=int, metavar="N", help="runs per latency (default: params.yaml "
                        f"export.latency_runs if set, else {DEFAULT_LATENCY_RUNS})")
    parser.add_argument("--params", default="params.yaml", help="params file (default ./params.yaml)")
    parser.add_argument("--no-paper-scale", action="store_true", help="leave out the two 224 px rows")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    runs = args.runs
    if runs is None and Path(args.params).is_file():
        import yaml

        runs = ((yaml.safe_load(Path(args.params).read_text()) or {}).get("export") or {}).get("latency_runs")
    runs = int(runs or DEFAULT_LATENCY_RUNS)
    if runs < 1:
        parser.error(f"--runs must be >= 1, got {runs}")
    try:
        report = measure_cost(args.models or Path("models") / args.dataset, runs, not args.no_paper_scale)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        print(f"export: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({**report, "latency_runs": runs}, indent=2) if args.json else format_cost(report, runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
