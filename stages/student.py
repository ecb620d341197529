"""student@DATASET: the baseline GAF student, cross-entropy only, one per seed in ``seeds``."""

from vskd.params import runtime_block
from vskd.stage import run
from vskd.train_student import train_seeds


def body(name, params, block):
    return train_seeds(
        f"data/{name}/gaf.h5", f"models/{name}/student.pt", f"metrics/{name}/train/student",
        seeds=params["seeds"], split_seed=params["seed"],
        cfg=params["student"], feature_dim=params["teacher"]["feature_dim"],
        split_cfg=block["split"], runtime=runtime_block(params),
    )


if __name__ == "__main__":
    run("student", body, distributed=True)
