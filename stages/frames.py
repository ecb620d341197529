"""frames@DATASET: decode every video (or frame folder) into data/DATASET/frames.h5."""

from vskd.datasets import get_adapter
from vskd.frames import build_frames_store
from vskd.params import runtime_block
from vskd.paths import stage_paths
from vskd.progress import progress
from vskd.stage import run


def body(name, params, block):
    adapter = get_adapter(name)
    p = stage_paths(name)
    raw = p.raw
    samples = adapter.scan(raw, block)
    summary = build_frames_store(samples, p.frames, params["frames"]["short_side"],
                                 adapter.class_names(raw, block), name, progress=progress,
                                 read_video=lambda path, side: adapter.read_video(path, side, block),
                                 on_bad_sample=runtime_block(params)["on_bad_sample"],
                                 skeletons=adapter.skeletons(raw, block))
    return {**summary, **adapter.census(raw, block, samples)}


if __name__ == "__main__":
    run("frames", body)
