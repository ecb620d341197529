"""dvc.yaml and vskd/paths.py name the same files (the stage scripts take theirs from paths.py)."""

from pathlib import Path

import yaml

from tests.conftest import REPO
from vskd.checkpoints import seeds_folder
from vskd.paths import stage_paths

TRACKED = ("data/", "models/", "metrics/")


def dvc_paths() -> dict[str, set[str]]:
    """stage -> every data/, models/ and metrics/ path in its deps, outs, metrics and plots."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    out = {}
    for name, stage in stages.items():
        body = stage.get("do", stage)
        entries = [e if isinstance(e, str) else next(iter(e))
                   for key in ("deps", "outs", "metrics", "plots") for e in body.get(key, [])]
        out[name] = {e.replace("${item}", "DS") for e in entries if e.startswith(TRACKED)}
    return out


def known_paths() -> set[str]:
    p = stage_paths("DS")
    named = {str(v) for k, v in vars(p).items() if k != "train_logs"}
    named |= {str(seeds_folder(p.student)), str(seeds_folder(p.vskd))}
    named |= {f"{p.live(s)}/{leaf}" for s in ("teacher", "student", "distill") for leaf in ("metrics.json", "plots/metrics")}
    return named


def _under(path: str, named: set[str]) -> bool:
    return path in named or any(Path(n) in Path(path).parents for n in named)


def test_every_path_in_dvc_yaml_is_named_by_stage_paths():
    named = known_paths()
    unknown = {stage: sorted(p for p in paths if not _under(p, named)) for stage, paths in dvc_paths().items()}
    assert {k: v for k, v in unknown.items() if v} == {}


def test_a_renamed_output_is_caught():
    named = known_paths() - {"models/DS/minirocket.json"}
    assert not _under("models/DS/minirocket.json", named)
    assert _under("metrics/DS/plots/confusion_vskd.png", named)


def test_paths_relative_to_a_root(tmp_path):
    p = stage_paths("utd_mhad", tmp_path)
    assert p.gaf == tmp_path / "data" / "utd_mhad" / "gaf.h5"
    assert p.live("distill") == tmp_path / "metrics" / "utd_mhad" / "train" / "distill"
