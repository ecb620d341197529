"""gaf@DATASET: encode every accelerometer trial as a GAF image into data/DATASET/gaf.h5."""

from pathlib import Path

from vskd.datasets import get_adapter
from vskd.gaf import build_gaf_store
from vskd.stage import run
from vskd.training import progress


def body(name, params, block):
    adapter = get_adapter(name)
    samples = adapter.scan(Path("data") / name / "raw", block)
    cfg = params["gaf"]
    return build_gaf_store(samples, adapter.read_accelerometer, Path("data") / name / "gaf.h5",
                           cfg["image_size"], cfg["method"], adapter.class_names(block), name,
                           progress=progress)


if __name__ == "__main__":
    run("gaf", body)
