"""teacher@DATASET: train the multi-scale TRN teacher; store its outputs for every sample."""

from vskd.params import runtime_block
from vskd.paths import stage_paths
from vskd.stage import run
from vskd.train_teacher import train_teacher


def body(name, params, block):
    p = stage_paths(name)
    return train_teacher(
        p.frames, p.teacher, p.teacher_outputs, p.live("teacher"), cfg=params["teacher"], segments=block["segments"],
        split_cfg=block["split"], seed=params["seed"], runtime=runtime_block(params),
    )


if __name__ == "__main__":
    run("teacher", body, distributed=True)
