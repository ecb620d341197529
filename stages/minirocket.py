"""minirocket@DATASET: aeon's MiniRocket on the raw accelerometer, the same split as the
students, one classifier per seed in ``seeds`` -> models/DATASET/minirocket.json (test
predictions), scored by evaluate@DATASET."""

from vskd.minirocket import train_minirocket
from vskd.paths import stage_paths
from vskd.stage import run


def body(name, params, block):
    p = stage_paths(name)
    return train_minirocket(name, p.gaf, p.raw, block, p.minirocket, cfg=params["minirocket"],
                            split_seed=params["seed"], seeds=params["seeds"])


if __name__ == "__main__":
    run("minirocket", body)
