"""evaluate@DATASET: test metrics of the teacher, the baseline and VSKD students (every seed in
``seeds``) and MiniRocket, with paired tests -> metrics/DATASET.json."""

from vskd.checkpoints import seed_checkpoints
from vskd.evaluate import evaluate
from vskd.params import runtime_block
from vskd.paths import stage_paths
from vskd.runtime import resolve_device
from vskd.stage import run


def body(name, params, block):
    seeds = params["seeds"]
    p = stage_paths(name)
    m = evaluate(name, p.gaf, p.teacher_outputs, seed_checkpoints(p.student, seeds),
                 seed_checkpoints(p.vskd, seeds), p.minirocket, split_cfg=block["split"], seed=params["seed"],
                 metrics_path=p.metrics, plots_dir=p.plots, device=resolve_device(runtime_block(params)))
    summary = {k: round(m[k]["accuracy"], 4) for k in ("teacher", "student", "vskd", "minirocket", "gain")}
    ci = m["paired"]["vskd_vs_student"]["bootstrap"]
    summary["gain_ci95"] = f"[{ci['ci_low']:.4f}, {ci['ci_high']:.4f}]"
    summary["seeds"] = len(seeds)
    return summary


if __name__ == "__main__":
    run("evaluate", body)
