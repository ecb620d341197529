"""Choosing a setting on the development folds, and what that choice is worth.

The input is several runs of the development protocol (``python -m vskd dev``), one per
candidate setting (say three DASK weightings), over the same folds, seeds and held-out trials.
Taking the candidate with the best mean over the folds and quoting that mean is optimistic:
the folds that chose it also score it, and with a handful of candidates and 400 trials the
winner's luck is a point or two. The honest figure is nested, leave one fold out: for each
fold, the candidate is chosen on the other folds alone (pooled accuracy over their trials and
the seeds; a tie goes to the earlier-listed candidate, so list the current default first) and
scored on this fold. Its paired tests against the baseline student, and against the first
candidate, use the same trials and seeds, fold by fold.

The setting to commit is the one chosen on every fold; its figure on those folds is reported
too, labelled as the optimistic one.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vskd.stats import paired_bootstrap_ci, seed_summary


def load_runs(paths: list[str | Path], model: str, seeds: list[int] | None = None) -> dict[str, dict]:
    """``{name: predictions per fold}`` for dev-protocol files; the name is the file's stem.
    Every file must hold ``model``'s predictions for the same folds, trials and seeds
    (``seeds``: keep only these, so a three-seed run can stand beside one-seed runs)."""
    runs = {}
    for path in map(Path, paths):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: not found; give the JSON files `python -m vskd dev --out` wrote")
        predictions = json.loads(path.read_text()).get("predictions")
        if not isinstance(predictions, dict) or not predictions:
            raise ValueError(f"{path}: no per-fold predictions; rerun it with this version of `python -m vskd dev`")
        if path.stem in runs:
            raise ValueError(f"{path}: two candidates named {path.stem!r}; rename one file")
        runs[path.stem] = predictions if seeds is None else _only_seeds(predictions, seeds, path)
    if len(runs) < 2:
        raise ValueError("give at least two runs to choose between")
    _check_aligned(runs, model)
    return runs


def _only_seeds(predictions: dict, seeds: list[int], path: Path) -> dict:
    out = {}
    for fold, found in predictions.items():
        out[fold] = dict(found)
        for model, value in found.items():
            if isinstance(value, dict):
                missing = [s for s in seeds if str(s) not in value]
                if missing:
                    raise ValueError(f"{path}: fold {fold} has no {model} seed {missing[0]}")
                out[fold][model] = {str(s): value[str(s)] for s in seeds}
    return out


def _check_aligned(runs: dict[str, dict], model: str) -> None:
    first_name, first = next(iter(runs.items()))
    for name, run in runs.items():
        if sorted(run) != sorted(first):
            raise ValueError(f"{name}: folds {sorted(run)}, but {first_name} has {sorted(first)}")
        for fold, found in run.items():
            if model not in found:
                raise ValueError(f"{name}: fold {fold} has no {model!r} predictions (a students-only "
                                 f"file has 'student' alone: pass --model student)")
            if found["test_ids"] != first[fold]["test_ids"] or found["y_true"] != first[fold]["y_true"]:
                raise ValueError(f"{name}: fold {fold} holds other test trials than {first_name}")
            if sorted(found[model]) != sorted(first[fold][model]):
                raise ValueError(f"{name}: fold {fold} seeds {sorted(found[model])}, {first_name} "
                                 f"{sorted(first[fold][model])}; run every candidate with the same --seeds")


def correct(found: dict, model: str) -> np.ndarray:
    """(seeds, trials) booleans: is ``model``'s prediction right, per seed (sorted)?"""
    y = np.asarray(found["y_true"])
    return np.stack([np.asarray(found[model][s]) == y for s in sorted(found[model], key=int)])


def choose(runs: dict[str, dict], model: str, folds: list[str]) -> str:
    """The candidate with the best accuracy pooled over ``folds``' trials and the seeds."""
    def pooled(run):
        return float(np.concatenate([correct(run[f], model) for f in folds], axis=1).mean())

    scores = {name: pooled(run) for name, run in runs.items()}
    return max(scores, key=lambda name: (scores[name], -list(runs).index(name)))


def fold_table(runs: dict[str, dict], model: str) -> dict[str, dict[str, float]]:
    """``{candidate: {fold: accuracy (mean over seeds)}}``."""
    return {name: {fold: float(correct(found, model).mean()) for fold, found in run.items()}
            for name, run in runs.items()}


def nested_selection(runs: dict[str, dict], model: str = "vskd", baseline: str = "student") -> dict:
    """Leave-one-fold-out choice (module docstring): per fold the candidate chosen on the others
    and its accuracy there; pooled paired tests of the chosen predictions against ``baseline``
    (where the runs hold it and it is not ``model``) and against the first candidate."""
    folds = sorted(next(iter(runs.values())), key=lambda f: int(f.lstrip("s")))
    first = next(iter(runs))
    picked, per_fold, rows = {}, {}, {"chosen": [], "first": [], "baseline": []}
    for fold in folds:
        picked[fold] = choose(runs, model, [f for f in folds if f != fold])
        chosen = runs[picked[fold]][fold]
        rows["chosen"].append(correct(chosen, model))
        rows["first"].append(correct(runs[first][fold], model))
        per_fold[fold] = float(rows["chosen"][-1].mean())
        if baseline != model and baseline in chosen:
            rows["baseline"].append(correct(chosen, baseline))
    pooled = {name: np.concatenate(rows[name], axis=1) for name in ("chosen", "first", "baseline") if rows[name]}
    result = {"model": model, "candidates": list(runs), "table": fold_table(runs, model),
              "nested": {"chosen": picked, "per_fold": per_fold,
                         "across_folds": seed_summary(list(per_fold.values())),
                         "pooled_accuracy": float(pooled["chosen"].mean()),
                         "minus_first": paired_bootstrap_ci(pooled["first"], pooled["chosen"])},
              "chosen_on_all_folds": choose(runs, model, folds)}
    if "baseline" in pooled:
        result["nested"]["minus_baseline"] = paired_bootstrap_ci(pooled["baseline"], pooled["chosen"])
        result["nested"]["baseline_pooled_accuracy"] = float(pooled["baseline"].mean())
    return result


def _ci(block: dict) -> str:
    return (f"{100 * block['accuracy_diff']:+.1f} points, 95 % CI [{100 * block['ci_low']:+.1f}, "
            f"{100 * block['ci_high']:+.1f}]")


def format_selection(result: dict) -> str:
    """The candidates' per-fold table, then the nested choice and its paired tests."""
    table, nested = result["table"], result["nested"]
    folds = list(nested["per_fold"])
    width = max(len(n) for n in table) + 2
    lines = [f"{result['model']} accuracy (%), mean over seeds".ljust(width) + "".join(f"{f:>8}" for f in folds)
             + "    mean over folds"]
    for name, row in table.items():
        values = [100 * row[f] for f in folds]
        lines.append(name.ljust(width) + "".join(f"{v:8.1f}" for v in values) + f"    {np.mean(values):.1f}")
    lines.append("chosen on the other folds".ljust(width)
                 + "".join(f"{100 * nested['per_fold'][f]:8.1f}" for f in folds)
                 + f"    {100 * nested['across_folds']['mean']:.1f}")
    lines.append("  (chosen: " + ", ".join(f"{f} {nested['chosen'][f]}" for f in folds) + ")")
    lines.append(f"nested choice minus {result['candidates'][0]}: {_ci(nested['minus_first'])}")
    if "minus_baseline" in nested:
        lines.append(f"nested choice minus the baseline student: {_ci(nested['minus_baseline'])}")
    best = result["chosen_on_all_folds"]
    lines.append(f"chosen on all folds: {best} ({100 * np.mean(list(table[best].values())):.1f} % on the "
                 f"folds that chose it: optimistic; the nested figure above is the estimate)")
    return "\n".join(lines)
