"""evaluate@DATASET: test metrics of teacher, baseline and VSKD student -> metrics/DATASET.json."""

from vskd.evaluate import evaluate
from vskd.params import runtime_block
from vskd.stage import run
from vskd.training import resolve_device


def body(name, params, block):
    m = evaluate(name, f"data/{name}/gaf.h5", f"models/{name}/teacher_outputs.h5",
                 f"models/{name}/student.pt", f"models/{name}/vskd.pt", split_cfg=block["split"],
                 seed=params["seed"], metrics_path=f"metrics/{name}.json", plots_dir=f"metrics/{name}/plots",
                 device=resolve_device(runtime_block(params)))
    return {k: round(m[k]["accuracy"], 4) for k in ("teacher", "student", "vskd", "gain")}


if __name__ == "__main__":
    run("evaluate", body)
