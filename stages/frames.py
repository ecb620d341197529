"""frames@DATASET: decode every video with PyAV into data/DATASET/frames.h5."""

from pathlib import Path

from vskd.datasets import get_adapter
from vskd.frames import build_frames_store
from vskd.stage import run
from vskd.training import progress


def body(name, params, block):
    adapter = get_adapter(name)
    samples = adapter.scan(Path("data") / name / "raw", block)
    return build_frames_store(samples, Path("data") / name / "frames.h5", params["frames"]["short_side"],
                              adapter.class_names(block), name, progress=progress)


if __name__ == "__main__":
    run("frames", body)
