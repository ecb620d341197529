"""download@DATASET: put the raw recordings in data/DATASET/raw in the dataset's native layout."""

from vskd.datasets import get_adapter
from vskd.h5store import atomic_path
from vskd.paths import stage_paths
from vskd.stage import run


def body(name, params, block):
    adapter = get_adapter(name)
    out = stage_paths(name).raw
    with atomic_path(out) as tmp:
        summary = adapter.prepare_raw(block, tmp)
        samples = adapter.scan(tmp, block)  # a layout the readers cannot use fails here, not later
        counts = adapter.census(tmp, block, samples)
    scalars = {k: v for k, v in summary.items() if isinstance(v, (int, float, str)) and k != "out_dir"}
    return {**scalars, "recordings": len(samples), **counts}


if __name__ == "__main__":
    run("download", body)
