"""distill@DATASET: the same student trained with the DASK loss against the stored teacher outputs."""

from vskd.losses import dask_loss
from vskd.params import runtime_block
from vskd.stage import run
from vskd.train_student import train_student


def body(name, params, block):
    loss = dask_loss(params["alpha"], params["beta"], params["gamma"], params["temperature"],
                     params["distill"]["distance_weight"], params["distill"]["angle_weight"])
    return train_student(
        f"data/{name}/gaf.h5", f"models/{name}/vskd.pt", f"metrics/{name}/train/distill",
        cfg=params["student"], feature_dim=params["teacher"]["feature_dim"],
        split_cfg=block["split"], seed=params["seed"], runtime=runtime_block(params), loss=loss,
        teacher_path=f"models/{name}/teacher_outputs.h5",
    )


if __name__ == "__main__":
    run("distill", body, distributed=True)
