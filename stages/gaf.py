"""gaf@DATASET: encode every accelerometer trial as a GAF image into data/DATASET/gaf.h5.

Recordings without a usable file for the chosen sensor are left out (the video teacher still
has them) and counted in the summary line.
"""

from vskd.datasets import get_adapter
from vskd.gaf import build_gaf_store
from vskd.params import runtime_block
from vskd.paths import stage_paths
from vskd.progress import progress
from vskd.stage import run


def body(name, params, block):
    adapter = get_adapter(name)
    p = stage_paths(name)
    raw = p.raw
    samples = adapter.scan(raw, block)
    usable = [s for s in samples if s.sensor is not None]
    if not usable:
        raise FileNotFoundError(f"{raw}: none of the {len(samples)} recordings has a file for the "
                                f"sensor chosen by '{name}.sensor' ({block.get('sensor')}). Add that "
                                "sensor's data to the source and rerun the download stage, or choose another.")
    cfg = params["gaf"]
    summary = build_gaf_store(usable, lambda path: adapter.read_accelerometer(path, block),
                              p.gaf, cfg["image_size"], cfg["method"],
                              adapter.class_names(raw, block), name, progress=progress,
                              on_bad_sample=runtime_block(params)["on_bad_sample"], scale=cfg["scale"])
    return {**summary, **adapter.census(raw, block, samples)}


if __name__ == "__main__":
    run("gaf", body)
