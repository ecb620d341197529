"""teacher@DATASET: train the multi-scale TRN teacher; store its outputs for every sample."""

from vskd.params import runtime_block
from vskd.stage import run
from vskd.train_teacher import train_teacher


def body(name, params, block):
    return train_teacher(
        f"data/{name}/frames.h5", f"models/{name}/teacher.pt", f"models/{name}/teacher_outputs.h5",
        f"metrics/{name}/train/teacher", cfg=params["teacher"], segments=block["segments"],
        split_cfg=block["split"], seed=params["seed"], runtime=runtime_block(params),
    )


if __name__ == "__main__":
    run("teacher", body, distributed=True)
