"""The development protocol: leave-one-subject-out inside the development subjects.

``python -m vskd dev`` runs, for each fold (one held-out subject, the others training), the
whole chain the DVC stages run (teacher once per fold; baseline student, distilled student
and MiniRocket once per seed) and writes one metrics JSON with every fold, the mean and std
over folds, and paired tests pooled over every held-out trial. Settings are chosen on these
folds, never on the project's cross-subject test subjects. ``--students-only``
(:func:`run_students`) trains the baseline students alone and keeps their predictions, so
two student or GAF settings can be compared trial by trial (:func:`compare_students`);
``--teachers-only`` (:func:`run_teachers`) does the same for the teacher.

The raw folder, frames and GAF stores do not depend on the fold, so they are built once
under ``<work>/<dataset>/``; each fold's models go to ``<work>/<dataset>/fold_s<S>/``.

A rerun rebuilds exactly what a changed setting affects (as DVC does for the stages) and
reuses the rest: every product gets a ``<product>.key.json`` beside it holding the settings it depends on:

* ``raw/``: the dataset block's source, download, video and sensor settings;
* ``frames.h5``: raw's, plus ``frames``;
* ``gaf.h5``: raw's less ``download.skeleton_video`` (the drawing; the GAF reads the
  inertial files), plus ``gaf``;
* a fold's teacher (``teacher.pt`` + ``teacher_outputs.h5``): frames', plus ``teacher``, the
  segments, ``seed``, the fold's split and ``runtime``;
* each baseline student of a fold (``student.pt``, the first seed's, and the other seeds' in
  ``student_seeds/``): gaf's, plus ``student``, its own training seed (``seeds: [<seed>]``),
  the teacher's ``feature_dim`` (fc0's width), ``seed``, the split and ``runtime``; adding a
  seed trains that seed alone;
* each distilled student (``vskd.pt`` and ``vskd_seeds/``): its baseline's key, plus the
  teacher's and the distillation settings (``alpha``, ``beta``, ``gamma``, ``temperature``,
  ``distill``); adding a seed, again, trains that seed alone.

A student or distillation setting therefore never retrains a teacher, and a distillation
setting (``alpha``, ``beta``, ``gamma``, ``distill.*``) retrains the distilled students alone.

A product without a key file (built before keys existed, or interrupted) counts as stale.
"""

from __future__ import annotations

import json
import time
from functools import partial
from pathlib import Path

import numpy as np

from vskd.h5store import atomic_path, get_meta, open_store
from vskd.params import dataset_block, load_params, runtime_block

FOLD_MODELS = ("teacher", "student", "vskd", "minirocket")


# --- What each product was built from (module docstring) --------------------------

RAW_KEYS = ("source", "download", "video", "sensor")


def product_keys(params: dict, block: dict, split: dict | None = None) -> dict:
    """The settings each product depends on (module docstring); a fold's (``teacher``,
    ``student``) only with its ``split``."""
    raw = _without_legacy_drawing({k: block.get(k) for k in RAW_KEYS})
    keys = {"raw": raw, "frames": {"raw": raw, "frames": params["frames"]},
            "gaf": {"raw": _without_drawing(raw), "gaf": params["gaf"]}}
    if split is not None:
        fold = {"seed": params["seed"], "split": split, "runtime": _results_runtime(params)}
        keys["teacher"] = {"frames": keys["frames"], "teacher": _section_settings(params, "teacher"),
                           "segments": block["segments"], **fold}
        keys["student"] = {"gaf": keys["gaf"], "student": _section_settings(params, "student"), "seeds": params["seeds"],
                           "feature_dim": params["teacher"]["feature_dim"], **fold}
    return keys


def _results_runtime(params: dict) -> dict:
    """The ``runtime`` block without ``resume_every_s``: how often a resume file is written
    changes no result, so it must not retrain a fold's models."""
    return {k: v for k, v in (params.get("runtime") or {}).items() if k != "resume_every_s"}


# Settings added after work folders were built, with the value that builds as before: while
# at it a setting is left out of the product's key, so the folders built before it stay
# current (``view_jitter`` 0 and 0 draws the stored frames, ``mixup`` 0 mixes nothing, the
# augmentation's ``gain`` 0 scales nothing, the drawing's ``hip_at`` and ``lead_s`` there draw
# the video as it was).
AS_BEFORE = {"teacher": {"view_jitter": {"yaw_deg": 0, "pitch_deg": 0}, "mixup": 0},
             "student": {"mixup": 0, "augment": {"gain": 0}},
             "skeleton_video": {"hip_at": [0.5, 0.58], "lead_s": 0}}


def _without_as_before(settings: dict, section: str) -> dict:
    """``settings`` less those of :data:`AS_BEFORE` ``[section]`` at their earlier value."""
    return _without_earlier(settings, AS_BEFORE[section])


def _without_earlier(settings: dict, before: dict) -> dict:
    """``settings`` less each key whose value is ``before``'s; inside a mapping that ``before``
    names key by key (a dict that is not a whole earlier value), the same one level down."""
    out = {}
    for k, v in settings.items():
        if k in before and _same_numbers(v) == _same_numbers(before[k]):
            continue
        if isinstance(before.get(k), dict) and isinstance(v, dict) and set(before[k]) < set(v):
            v = _without_earlier(v, before[k])
        out[k] = v
    return out


# Settings that change no result (loader processes: the same batches either way,
# tests/test_frames.py), written into a product's key at the value the existing work folders
# were built with, so changing them retrains nothing.
NO_RESULT = {"teacher": {"num_workers": 1}, "student": {"num_workers": 0}}


def _section_settings(params: dict, section: str) -> dict:
    return {**_without_as_before(params[section], section), **NO_RESULT.get(section, {})}


def _without_legacy_drawing(raw: dict) -> dict:
    drawing = (raw.get("download") or {}).get("skeleton_video")
    if not isinstance(drawing, dict):
        return raw
    return {**raw, "download": {**raw["download"], "skeleton_video": _without_as_before(drawing, "skeleton_video")}}


def _without_drawing(raw: dict) -> dict:
    """raw's settings less how the skeleton is drawn: pixels the GAF store never reads, so
    redrawing the teacher's video keeps the GAF store and the baseline students."""
    download = dict(raw.get("download") or {})
    download.pop("skeleton_video", None)
    return {**raw, "download": download}


def key_path(product: Path) -> Path:
    return product.with_name(product.name + ".key.json")


def _same_numbers(value):
    """Integral floats as ints, all the way down: ``-S x=10`` (YAML reads an int) and
    ``x: 10.0`` in params.yaml are one setting and must give one key."""
    if isinstance(value, dict):
        return {k: _same_numbers(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_same_numbers(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _canonical(key: dict) -> str:
    return json.dumps(_same_numbers(key), sort_keys=True, default=str)


def is_current(product: Path, key: dict, *also: Path) -> bool:
    """``product`` (and every path in ``also``) exists and was built from ``key``."""
    record = key_path(product)
    if not product.exists() or not record.is_file() or not all(p.exists() for p in also):
        return False
    saved = json.loads(record.read_text())
    return _canonical(saved.get("key")) == _canonical(key)


def record_key(product: Path, key: dict, **extra) -> None:
    """Say that ``product`` was built from ``key`` (after it is complete); ``extra`` is kept
    beside the key (the teacher's training summary)."""
    with atomic_path(key_path(product)) as tmp:
        tmp.write_text(json.dumps({"key": json.loads(_canonical(key)), **extra}, indent=1, sort_keys=True,
                                  default=_number) + "\n")


def _number(value):
    """numpy scalars in a training summary, as JSON numbers."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON: {type(value)}")


def saved_extra(product: Path, name: str):
    return json.loads(key_path(product).read_text()).get(name)


# --- The protocol ----------------------------------------------------------------


def fold_split(block_split: dict, subjects: list[int], held_out: int) -> dict:
    """The cross-subject split training on ``subjects`` but ``held_out``, testing on it alone."""
    return {**block_split, "name": "cross_subject",
            "train_subjects": [s for s in subjects if s != held_out], "test_subjects": [held_out]}


def build_shared_stores(name: str, params: dict, block: dict, work: Path) -> dict:
    """raw/, frames.h5 and gaf.h5 as the download, frames and gaf stages build them; each is
    rebuilt when a setting it depends on changed (:func:`product_keys`), else reused.
    Returns the seconds each took to build (those of the run that built it, if reused)."""
    from vskd.datasets import get_adapter
    from vskd.frames import build_frames_store
    from vskd.gaf import build_gaf_store
    from vskd.progress import progress

    adapter, raw, keys = get_adapter(name), work / "raw", product_keys(params, block)
    on_bad = runtime_block(params)["on_bad_sample"]
    seconds = {}

    def make_raw():
        with atomic_path(raw) as tmp:
            adapter.prepare_raw(block, tmp)

    # frames' and gaf's keys contain raw's, so a changed raw/ rebuilds them too
    _, seconds["raw"] = reuse_or_run(raw, keys["raw"], [], make_raw, "raw/")
    samples = adapter.scan(raw, block)
    classes = adapter.class_names(raw, block)
    _, seconds["frames"] = reuse_or_run(work / "frames.h5", keys["frames"], [], lambda: build_frames_store(
        samples, work / "frames.h5", params["frames"]["short_side"], classes, name, progress=progress,
        on_bad_sample=on_bad, read_video=lambda path, side: adapter.read_video(path, side, block),
        skeletons=adapter.skeletons(raw, block)), "frames.h5")
    _, seconds["gaf"] = reuse_or_run(work / "gaf.h5", keys["gaf"], [], lambda: build_gaf_store(
        [s for s in samples if s.sensor is not None], lambda path: adapter.read_accelerometer(path, block),
        work / "gaf.h5", params["gaf"]["image_size"], params["gaf"]["method"], classes, name,
        progress=progress, on_bad_sample=on_bad, scale=params["gaf"]["scale"]), "gaf.h5")
    return seconds


def reuse_or_run(product: Path, key: dict, also: list[Path], job, label: str) -> tuple[dict, float]:
    """``job()`` (which writes ``product`` and ``also``), or nothing when they exist and were
    built from ``key``. Returns the job's summary and the seconds it took (those of the run
    that built it, if reused)."""
    if is_current(product, key, *also):
        print(f"dev: {label} reused ({product}: its settings are unchanged)", flush=True)
        return saved_extra(product, "summary"), saved_extra(product, "seconds")
    start = time.perf_counter()
    summary = job()
    seconds = round(time.perf_counter() - start, 1)
    record_key(product, key, summary=summary, seconds=seconds)
    print(f"dev: {label} done in {seconds} s ({summary})", flush=True)
    return summary, seconds


def fold_teacher(params: dict, block: dict, work: Path, split: dict, fold_dir: Path) -> tuple[dict, float]:
    """The fold's teacher and its outputs, trained or reused (:func:`reuse_or_run`): a student
    or distillation setting never retrains it."""
    from vskd.train_teacher import train_teacher

    model, outputs = fold_dir / "teacher.pt", fold_dir / "teacher_outputs.h5"
    return reuse_or_run(model, product_keys(params, block, split)["teacher"], [outputs], lambda: train_teacher(
        work / "frames.h5", model, outputs, fold_dir / "train" / "teacher", cfg=params["teacher"],
        segments=block["segments"], split_cfg=split, seed=params["seed"], runtime=runtime_block(params)),
        f"{fold_dir.name} teacher")


def fold_baseline(params: dict, block: dict, work: Path, split: dict, fold_dir: Path) -> tuple[dict, float]:
    """The fold's baseline students, each seed trained or reused on its own key
    (:func:`students_per_seed`): a run with one more seed trains that seed alone, and a
    distillation setting never retrains them. Returns the first seed's summary and the seconds of all."""
    key = product_keys(params, block, split)["student"]
    return students_per_seed(params, work, split, fold_dir / "student.pt", ("student", "student"), key)


DISTILL_KEYS = ("alpha", "beta", "gamma", "temperature", "distill")


def fold_distilled(params: dict, block: dict, work: Path, split: dict, fold_dir: Path) -> tuple[dict, float]:
    """The fold's distilled students, each seed trained or reused on its own key (the
    baseline's, the teacher's and the distillation settings), as :func:`fold_baseline` does
    for the baselines. Returns the first seed's summary and the seconds of all."""
    from vskd.losses import distill_loss

    keys = product_keys(params, block, split)
    key = {**keys["student"], "teacher": keys["teacher"], "distill": {k: params[k] for k in DISTILL_KEYS}}
    return students_per_seed(params, work, split, fold_dir / "vskd.pt", ("distill", "distilled"), key,
                             loss=distill_loss(params), teacher_path=fold_dir / "teacher_outputs.h5")


def students_per_seed(params: dict, work: Path, split: dict, model_path: Path, names: tuple[str, str],
                      key: dict, **train_kw) -> tuple[dict, float]:
    """One student per seed of ``params["seeds"]`` (the first at ``model_path``, the others in
    its seeds folder), each trained or reused on ``key`` plus its own seed (:func:`reuse_or_run`).
    ``names``: the resume files' stage name and the printed label. Returns the first seed's
    summary and the seconds of all (those of the run that built a reused one)."""
    from vskd.checkpoints import seed_checkpoints
    from vskd.train_student import train_student

    kwargs = {**student_kwargs(params, split), **train_kw}
    split_seed, (stage, label) = kwargs.pop("split_seed"), names
    first, seconds = None, 0.0
    for i, (seed, path) in enumerate(seed_checkpoints(model_path, kwargs.pop("seeds")).items()):
        path.parent.mkdir(parents=True, exist_ok=True)
        train = partial(train_student, work / "gaf.h5", path, None, seed=seed, split_seed=split_seed,
                        resume_name=(model_path, stage if i == 0 else f"{stage}_s{seed}"), **kwargs)
        summary, took = reuse_or_run(path, {**key, "seeds": [seed]}, [], train,
                                     f"{model_path.parent.name} {label} seed {seed}")
        first = summary if i == 0 else first
        seconds += took
    return first, round(seconds, 1)


def student_kwargs(params: dict, split: dict) -> dict:
    """:func:`vskd.train_student.train_seeds`'s settings for a fold's baseline or distilled students."""
    return dict(seeds=params["seeds"], split_seed=params["seed"], cfg=params["student"],
                runtime=runtime_block(params), split_cfg=split, feature_dim=params["teacher"]["feature_dim"])


def run_fold(name: str, params: dict, block: dict, work: Path, split: dict, fold_dir: Path) -> dict:
    """Teacher, students, distilled students, MiniRocket and their test predictions, one fold;
    the teacher and the baseline students are reused when their settings are unchanged."""
    from vskd.checkpoints import seed_checkpoints
    from vskd.evaluate import test_predictions
    from vskd.minirocket import train_minirocket
    from vskd.runtime import resolve_device

    rt, seeds, seed = runtime_block(params), params["seeds"], params["seed"]
    gaf, teacher_out = work / "gaf.h5", fold_dir / "teacher_outputs.h5"
    students = seed_checkpoints(fold_dir / "student.pt", seeds)
    summaries, seconds = {}, {}
    summaries["teacher"], seconds["teacher"] = fold_teacher(params, block, work, split, fold_dir)
    summaries["student"], seconds["student"] = fold_baseline(params, block, work, split, fold_dir)
    summaries["distill"], seconds["distill"] = fold_distilled(params, block, work, split, fold_dir)
    start = time.perf_counter()
    summaries["minirocket"] = train_minirocket(name, gaf, work / "raw", {**block, "split": split},
                                               fold_dir / "minirocket.json", cfg=params["minirocket"],
                                               split_seed=seed, seeds=seeds)
    seconds["minirocket"] = round(time.perf_counter() - start, 1)
    print(f"dev: {fold_dir.name} minirocket done in {seconds['minirocket']} s ({summaries['minirocket']})", flush=True)
    found = test_predictions(gaf, teacher_out, students, seed_checkpoints(fold_dir / "vskd.pt", seeds),
                             fold_dir / "minirocket.json", split_cfg=split, seed=seed, device=resolve_device(rt))
    return {"found": found, "seconds": seconds, "teacher_summary": summaries["teacher"],
            "distill_summary": summaries["distill"]}


def cached_fold(name: str, params: dict, block: dict, work: Path, split: dict, fold_dir: Path) -> dict:
    """:func:`run_fold`, its result kept in ``fold_dir/fold.pkl`` with the params it ran with:
    a rerun with the same params (an interrupted protocol) reuses finished folds, and the
    teacher stage resumes a fold it left mid-training (its resume file)."""
    import pickle

    record, key = fold_dir / "fold.pkl", _canonical({"params": params, "split": split})
    if record.is_file():
        saved = pickle.loads(record.read_bytes())
        if saved["key"] == key:
            print(f"dev: {fold_dir.name} reused from {record}", flush=True)
            return saved["result"]
    result = run_fold(name, params, block, work, split, fold_dir)
    with atomic_path(record) as tmp:
        tmp.write_bytes(pickle.dumps({"key": key, "result": result}))
    return result


def pool_folds(folds: dict[int, dict]) -> dict:
    """One prediction set over every held-out trial of every fold (for the pooled tests)."""
    first = next(iter(folds.values()))["found"]
    pooled = {"y_true": np.concatenate([f["found"]["y_true"] for f in folds.values()]),
              "seeds": first["seeds"], "selection": first["selection"], "skipped": 0,
              "split": {"name": "leave_one_subject_out", "folds": len(folds)}, "predictions": {}}
    pooled["predictions"]["teacher"] = np.concatenate([f["found"]["predictions"]["teacher"] for f in folds.values()])
    for model in ("student", "vskd", "minirocket"):
        pooled["predictions"][model] = {s: np.concatenate([f["found"]["predictions"][model][s]
                                                           for f in folds.values()]) for s in first["seeds"]}
    pooled["split"]["test"] = int(len(pooled["y_true"]))
    return pooled


def summarise(name: str, folds: dict[int, dict], num_classes: int) -> dict:
    """Per fold scores; mean and std over folds of each model's seed-mean; pooled paired tests."""
    from vskd.evaluate import score_predictions
    from vskd.stats import seed_summary

    per_fold = {f"s{s}": {**score_predictions(name, f["found"], num_classes), "seconds": f["seconds"],
                          "teacher_train": f["teacher_summary"], "distill_train": f["distill_summary"]}
                for s, f in folds.items()}
    across = {}
    for model in FOLD_MODELS + ("gain",):
        values = [m[model]["accuracy"] for m in per_fold.values()]
        across[model] = {"accuracy": seed_summary(values)["mean"], "accuracy_std": seed_summary(values)["std"]}
    pooled_found = pool_folds(folds)
    pooled = score_predictions(name, pooled_found, num_classes)
    pooled["teacher_vs_student"] = complementarity(pooled_found)
    return {"dataset": name, "protocol": "leave-one-subject-out", "folds": per_fold,
            "across_folds": across, "pooled": pooled}


def fold_predictions(folds: dict[int, dict]) -> dict:
    """Every held-out prediction per fold, as lists (the students-only file's layout, so either
    file can be compared with another trial by trial: :func:`compare_students`)."""
    out = {}
    for held_out, f in folds.items():
        found = f["found"]
        fold = {"test_ids": [str(i) for i in found["test_ids"]], "y_true": np.asarray(found["y_true"]).tolist(),
                "teacher": np.asarray(found["predictions"]["teacher"]).tolist()}
        for model in ("student", "vskd", "minirocket"):
            fold[model] = {str(s): np.asarray(p).tolist() for s, p in found["predictions"][model].items()}
        out[f"s{held_out}"] = fold
    return out


def complementarity(found: dict) -> dict:
    """What the teacher could teach the baseline student: the share of held-out trials the
    teacher gets right and the student wrong (the most distillation could fix on them), and
    the reverse, per seed and their mean."""
    y, teacher = found["y_true"], found["predictions"]["teacher"] == found["y_true"]
    only_teacher, only_student = [], []
    for seed in found["seeds"]:
        student = found["predictions"]["student"][seed] == y
        only_teacher.append(float(np.mean(teacher & ~student)))
        only_student.append(float(np.mean(~teacher & student)))
    return {"teacher_right_student_wrong": float(np.mean(only_teacher)),
            "student_right_teacher_wrong": float(np.mean(only_student)),
            "per_seed": {"teacher_right_student_wrong": only_teacher, "student_right_teacher_wrong": only_student}}


def load_with_overrides(params_path, overrides: list[str]) -> dict:
    """params.yaml with ``KEY=VALUE`` overrides (VALUE read as YAML), validated after them."""
    from vskd.params import set_dotted, validate
    from vskd.preset import parse_overrides

    params = load_params(params_path)
    for key, value in parse_overrides(overrides).items():
        set_dotted(params, key, value)
    validate(params, params_path)
    return params


def _prepare(params_path, name: str, subjects: list[int], work_dir, seeds, folds, overrides) -> tuple:
    """params with the overrides, the dataset block, the work folder and the built stores' seconds."""
    params = load_with_overrides(params_path, list(overrides))
    if any(f not in subjects for f in folds or []):
        raise ValueError(f"--folds {folds}: every held-out subject must be one of {subjects}")
    if seeds is not None:
        params["seeds"] = list(seeds)
    block = dataset_block(params, name, params_path)
    work = Path(work_dir) / name
    work.mkdir(parents=True, exist_ok=True)
    return params, block, work, build_shared_stores(name, params, block, work)


def write_json(out_path, result: dict) -> None:
    """``result`` as indented JSON at ``out_path``, written whole or not at all (numpy values as plain)."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_path) as tmp:
        tmp.write_text(json.dumps(result, indent=2, default=_plain) + "\n")


def run_dev(params_path, name: str, subjects: list[int], work_dir, out_path, seeds=None,
            folds=None, overrides: list[str] = (), against=None) -> dict:
    """Every fold in ``folds`` (default: each of ``subjects`` held out in turn); ``against``:
    another protocol JSON, each model compared with its own (:func:`compare_runs`)."""
    params, block, work, shared_seconds = _prepare(params_path, name, subjects, work_dir, seeds, folds, overrides)
    with open_store(work / "gaf.h5", "gaf") as h5:
        num_classes = len(get_meta(h5, "class_names"))
    results = {}
    for held_out in folds or subjects:
        split = fold_split(block["split"], subjects, held_out)
        results[held_out] = cached_fold(name, params, block, work, split, work / f"fold_s{held_out}")
    result = summarise(name, results, num_classes)
    result.update({"subjects": list(subjects), "seeds": params["seeds"], "seed": params["seed"],
                   "overrides": list(overrides),
                   "shared_seconds": shared_seconds, "predictions": fold_predictions(results)})
    if against is not None:
        result["against"] = {"file": str(against), **compare_runs(result, json.loads(Path(against).read_text()))}
    write_json(out_path, result)
    return result


# --- Baseline students alone: the cheap loop for a student or GAF setting ---------------

def held_out(params: dict, work: Path, split: dict) -> tuple[dict, np.ndarray]:
    """The GAF store's index and the fold's test rows in it: the trials, and their order, that
    every dev file reports per fold."""
    from vskd.h5store import read_index
    from vskd.index import make_split

    with open_store(work / "gaf.h5", "gaf") as h5:
        index = read_index(h5)
    return index, make_split(index["subjects"], index["trials"], index["labels"], split, params["seed"])["test"]


def fold_students(params: dict, block: dict, work: Path, split: dict, fold_dir: Path) -> dict:
    """The fold's baseline students (:func:`fold_baseline`) and their test predictions."""
    from vskd.checkpoints import seed_checkpoints
    from vskd.evaluate import student_predictions
    from vskd.runtime import resolve_device

    _, seconds = fold_baseline(params, block, work, split, fold_dir)
    index, test = held_out(params, work, split)
    device = resolve_device(runtime_block(params))
    paths = seed_checkpoints(fold_dir / "student.pt", params["seeds"])
    predictions = {str(s): student_predictions(p, "student", work / "gaf.h5", test, device)[0].tolist()
                   for s, p in paths.items()}
    return {"test_ids": [str(i) for i in index["ids"][test]], "y_true": index["labels"][test].tolist(),
            "student": predictions, "seconds": seconds}


def fold_teacher_only(params: dict, block: dict, work: Path, split: dict, fold_dir: Path) -> dict:
    """The fold's teacher (:func:`fold_teacher`, trained or reused) and its held-out predictions,
    kept as seed ``"0"`` in the GAF store's test order, the order every dev file keeps."""
    from vskd.h5store import read_index

    summary, seconds = fold_teacher(params, block, work, split, fold_dir)
    index, test = held_out(params, work, split)
    with open_store(fold_dir / "teacher_outputs.h5", "teacher") as h5:
        row = {str(i): k for k, i in enumerate(read_index(h5)["ids"])}
        logits = h5["logits"][()]
    ids = [str(i) for i in index["ids"][test]]
    # a trial the teacher has no output for (on_bad_sample: skip) counts as wrong: -1
    predictions = [int(logits[row[i]].argmax()) if i in row else -1 for i in ids]
    return {"test_ids": ids, "y_true": index["labels"][test].tolist(), "teacher": {"0": predictions},
            "seconds": seconds, "train_accuracy": summary.get("train_accuracy")}


def run_teachers(params_path, name: str, subjects: list[int], work_dir, out_path, folds=None,
                 overrides: list[str] = (), against=None) -> dict:
    """Each fold's teacher alone (no students): the loop for a teacher or drawing setting. The
    teacher is one run per fold, kept as seed 0; ``against`` (a teachers-only or protocol JSON)
    is compared with it trial by trial."""
    params, block, work, _ = _prepare(params_path, name, subjects, work_dir, None, folds, overrides)
    found = {}
    for held_out in folds or subjects:
        split = fold_split(block["split"], subjects, held_out)
        found[f"s{held_out}"] = fold_teacher_only(params, block, work, split, work / f"fold_s{held_out}")
    result = {"dataset": name, "protocol": "leave-one-subject-out, teachers only", "subjects": list(subjects),
              "seeds": [0], "seed": params["seed"], "overrides": list(overrides),
              **students_summary(found, "teacher"), "predictions": found}
    if against is not None:
        result["against"] = {"file": str(against),
                             **compare_teachers(result, json.loads(Path(against).read_text()), against)}
    write_json(out_path, result)
    return result


def compare_teachers(result: dict, reference: dict, name) -> dict:
    """A teachers-only run against ``reference`` (teachers-only, or a protocol file whose one
    teacher per fold is a plain list), trial by trial: result - reference."""
    folds = reference.get("predictions") or {}
    if not folds or any("teacher" not in f for f in folds.values()):
        raise ValueError(f"{name}: no teacher predictions per fold (a teachers-only or protocol file is needed)")
    if not isinstance(next(iter(folds.values()))["teacher"], dict):
        reference = _teacher_as_seed(reference)
    return compare_students(result, reference, "teacher")


def students_summary(folds: dict[str, dict], model: str = "student") -> dict:
    """Accuracy per fold and seed, each fold's mean and std over seeds, mean and std over folds."""
    from vskd.stats import seed_summary

    per_fold = {}
    for fold, f in folds.items():
        y = np.asarray(f["y_true"])
        acc = {s: float(np.mean(np.asarray(p) == y)) for s, p in f[model].items()}
        per_fold[fold] = {"per_seed": acc, **seed_summary(list(acc.values())), "seconds": f["seconds"]}
    return {"folds": per_fold, "across_folds": seed_summary([m["mean"] for m in per_fold.values()])}


def compare_students(result: dict, reference: dict, model: str = "student") -> dict:
    """``result``'s students against ``reference``'s (another students-only or protocol JSON),
    paired on the same held-out trials and the seeds both ran, pooled over folds: result -
    reference. ``model``: student, vskd or minirocket (protocol files), or any entry kept per
    seed as they are."""
    from vskd.evaluate import paired_comparison

    folds, seeds = list(result["predictions"]), [s for s in result["seeds"] if s in reference["seeds"]]
    if list(reference["predictions"]) != folds or not seeds:
        raise ValueError(f"the reference has folds {list(reference['predictions'])} and seeds {reference['seeds']}; "
                         f"this run {folds} and {result['seeds']}: run both with the same --folds and a seed in common")
    for fold in folds:
        if reference["predictions"][fold]["test_ids"] != result["predictions"][fold]["test_ids"]:
            raise ValueError(f"fold {fold}: the reference was tested on other trials")

    def pooled(r):
        return {s: np.concatenate([r["predictions"][f][model][str(s)] for f in folds]) for s in seeds}
    y = np.concatenate([result["predictions"][f]["y_true"] for f in folds])
    return paired_comparison(y, pooled(reference), pooled(result))


def compare_runs(result: dict, reference: dict) -> dict:
    """Each model of a protocol run against the same model of ``reference`` (result - reference)."""
    if "predictions" not in reference:
        raise ValueError("the reference has no per-trial predictions (a protocol file written before "
                         "they were kept): rerun it, its folds are reused from their fold.pkl")
    compared = {"teacher": compare_students(_teacher_as_seed(result), _teacher_as_seed(reference), "teacher")}
    for model in FOLD_MODELS[1:]:
        compared[model] = compare_students(result, reference, model)
    return compared


def _teacher_as_seed(run: dict) -> dict:
    """A protocol run whose one teacher per fold reads as seed 0's, for :func:`compare_students`."""
    return {"seeds": [0], "predictions": {f: {**p, "teacher": {"0": p["teacher"]}} for f, p in run["predictions"].items()}}


def run_students(params_path, name: str, subjects: list[int], work_dir, out_path, seeds=None, folds=None,
                 overrides: list[str] = (), against=None) -> dict:
    """The baseline students of every fold alone (the shared stores are built as for the
    protocol; no teacher): per fold and seed accuracy, with the predictions, so that another run
    (``against``: its JSON) can be compared trial by trial."""
    params, block, work, _ = _prepare(params_path, name, subjects, work_dir, seeds, folds, overrides)
    found = {}
    for held_out in folds or subjects:
        split = fold_split(block["split"], subjects, held_out)
        found[f"s{held_out}"] = fold_students(params, block, work, split, work / f"fold_s{held_out}")
    result = {"dataset": name, "protocol": "leave-one-subject-out, baseline students only",
              "subjects": list(subjects), "seeds": params["seeds"], "seed": params["seed"],
              "overrides": list(overrides), **students_summary(found), "predictions": found}
    if against is not None:
        result["against"] = {"file": str(against),
                             **compare_students(result, json.loads(Path(against).read_text()))}
    write_json(out_path, result)
    return result


def format_students(result: dict, label: str = "baseline student") -> str:
    """Students- or teachers-only table: accuracy per fold (mean +- std over seeds), then over folds."""
    folds, a = result["folds"], result["across_folds"]
    lines = [f"| {label} | " + " | ".join(folds) + " | mean ± std over folds |", "|---" * (len(folds) + 2) + "|",
             "| accuracy | " + " | ".join(_mean_std(m) for m in folds.values()) + f" | {_mean_std(a)} |"]
    if "against" in result:
        ci = result["against"]["bootstrap"]
        bc = ", ".join(f"{t['b']}/{t['c']}" for t in result["against"]["mcnemar"].values())
        lines.append(f"\nThis run - {result['against']['file']}, pooled: {100 * ci['accuracy_diff']:+.1f} points, "
                     f"paired bootstrap 95 % CI [{100 * ci['ci_low']:+.1f}, {100 * ci['ci_high']:+.1f}]; "
                     f"McNemar b/c per seed {bc}")
    return "\n".join(lines)


def _mean_std(summary: dict) -> str:
    """"78.5 ± 2.5" in percent; the mean alone where one run has no spread."""
    spread = "" if summary["std"] is None else f" ± {100 * summary['std']:.1f}"
    return f"{100 * summary['mean']:.1f}{spread}"


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON: {type(value)}")


def format_summary(result: dict) -> str:
    """The protocol's table: accuracy per fold (mean over seeds), then mean +- std over folds."""
    header = "| model | " + " | ".join(result["folds"]) + " | mean ± std over folds |"
    lines = [header, "|---" * (len(result["folds"]) + 2) + "|"]
    for model in FOLD_MODELS + ("gain",):
        cells = [f"{100 * m[model]['accuracy']:.1f}" for m in result["folds"].values()]
        a = result["across_folds"][model]
        spread = "" if a["accuracy_std"] is None else f" ± {100 * a['accuracy_std']:.1f}"  # None: one fold
        lines.append(f"| {model} | " + " | ".join(cells) + f" | {100 * a['accuracy']:.1f}{spread} |")
    for key, label in (("vskd_vs_student", "VSKD - baseline"), ("vskd_vs_minirocket", "VSKD - MiniRocket")):
        ci = result["pooled"]["paired"][key]["bootstrap"]
        lines.append(f"\n{label}, pooled over {result['pooled']['split']['test']} held-out trials and "
                     f"{len(result['seeds'])} seed(s): {100 * ci['accuracy_diff']:+.1f} points, paired bootstrap 95 % CI "
                     f"[{100 * ci['ci_low']:+.1f}, {100 * ci['ci_high']:+.1f}]")
    for model, paired in result.get("against", {}).items():
        if model != "file":
            ci = paired["bootstrap"]
            lines.append(f"\n{model}, this run - {result['against']['file']}: {100 * ci['accuracy_diff']:+.1f} points, "
                         f"paired bootstrap 95 % CI [{100 * ci['ci_low']:+.1f}, {100 * ci['ci_high']:+.1f}]")
    c = result["pooled"].get("teacher_vs_student")
    if c:
        lines.append(f"\nHeld-out trials the teacher gets right and the baseline student wrong (the most "
                     f"distillation could fix): {100 * c['teacher_right_student_wrong']:.1f} %; the reverse: "
                     f"{100 * c['student_right_teacher_wrong']:.1f} % (mean over seeds)")
    return "\n".join(lines)
