"""student@DATASET: the baseline ResNet18 GAF student, cross-entropy only."""

from vskd.params import runtime_block
from vskd.stage import run
from vskd.train_student import train_student


def body(name, params, block):
    return train_student(
        f"data/{name}/gaf.h5", f"models/{name}/student.pt", f"metrics/{name}/train/student",
        cfg=params["student"], feature_dim=params["teacher"]["feature_dim"],
        split_cfg=block["split"], seed=params["seed"], runtime=runtime_block(params),
    )


if __name__ == "__main__":
    run("student", body, distributed=True)
