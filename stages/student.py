"""student@DATASET: the baseline GAF student, cross-entropy only, one per seed in ``seeds``."""

from vskd.params import runtime_block
from vskd.paths import stage_paths
from vskd.stage import run
from vskd.train_student import train_seeds


def body(name, params, block):
    p = stage_paths(name)
    return train_seeds(
        p.gaf, p.student, p.live("student"),
        seeds=params["seeds"], split_seed=params["seed"],
        cfg=params["student"], feature_dim=params["teacher"]["feature_dim"],
        split_cfg=block["split"], runtime=runtime_block(params),
    )


if __name__ == "__main__":
    run("student", body, distributed=True)
