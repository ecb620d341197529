"""minirocket@DATASET: aeon's MiniRocket on the raw accelerometer, the same split as the
students, one classifier per seed in ``seeds`` -> models/DATASET/minirocket.json (test
predictions), scored by evaluate@DATASET."""

from pathlib import Path

from vskd.minirocket import train_minirocket
from vskd.stage import run


def body(name, params, block):
    return train_minirocket(name, f"data/{name}/gaf.h5", Path("data") / name / "raw", block,
                            f"models/{name}/minirocket.json", cfg=params["minirocket"],
                            split_seed=params["seed"], seeds=params["seeds"])


if __name__ == "__main__":
    run("minirocket", body)
