"""distill@DATASET: the same student trained with the DASK loss (or distill.method's) against the stored teacher outputs."""

from vskd.losses import distill_loss
from vskd.params import runtime_block
from vskd.paths import stage_paths
from vskd.stage import run
from vskd.train_student import train_seeds


def body(name, params, block):
    loss = distill_loss(params)  # distill.method: dask (default), st, at or sp
    # One student per seed in `seeds`, all from the one teacher (trained with `seed`), as in
    # the paper: models/<ds>/vskd.pt is the first seed's, vskd_seeds/ holds the others.
    p = stage_paths(name)
    return train_seeds(
        p.gaf, p.vskd, p.live("distill"),
        seeds=params["seeds"], split_seed=params["seed"],
        cfg=params["student"], feature_dim=params["teacher"]["feature_dim"],
        split_cfg=block["split"], runtime=runtime_block(params), loss=loss,
        teacher_path=p.teacher_outputs,
    )


if __name__ == "__main__":
    run("distill", body, distributed=True)
