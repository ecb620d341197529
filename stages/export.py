"""export@DATASET: the distilled student as one ONNX graph (accelerometer -> probabilities),
verified against torch, with its accuracy and the teacher/student cost report."""

from vskd.export import run_export
from vskd.paths import stage_paths
from vskd.stage import run


def body(name, params, block):
    p = stage_paths(name)
    m = run_export(
        name, raw_dir=p.raw, block=block, gaf_path=p.gaf, teacher_path=p.teacher, student_path=p.vskd,
        out_dir=p.onnx, metrics_path=p.export_metrics,
        cfg=params.get("export"), split_cfg=block["split"], seed=params["seed"],
    )
    summary = {"max_abs_diff": f"{m['onnx']['max_abs_diff']:.2g}"}
    summary.update({f"acc_{k}": round(v, 4) for k, v in m["accuracy"].items() if k != "int8_change"})
    summary["mac_ratio"] = m["mac_ratio"]["trained"]
    return summary


if __name__ == "__main__":
    run("export", body)
