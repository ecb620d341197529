"""Make tests/data/exp_show_tiny.json: real `dvc exp show --json` output of tiny experiments.

    python tests/data/make_exp_show.py [WORKDIR]

Copies the repository (tracked and untracked, not ignored, files) into WORKDIR (default: a
temporary folder), applies the tiny configuration of the end-to-end tests with two training
seeds, commits, runs `dvc repro`, then queues a few Table 4 rows with the README's
`dvc exp run --queue` form, runs the queue, queues three more that are left unrun (a Hydra
sweep of `distill.method` and the VGG16 student) and saves `dvc exp show --json`. About 5 minutes
on 2 cores. tests/test_report.py renders the tables from the saved file.
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.test_pipeline_e2e import copy_tiny_repo  # noqa: E402
from vskd.params import TINY_OVERRIDES  # noqa: E402

EXPERIMENTS = {  # name: -S overrides (Table 4 rows)
    "t4-st": ["distill.method=st"],
    "t4-no-d": ["distill.distance_weight=0"],
    "t4-no-s": ["gamma=0"],
}


def run(cmd, cwd):
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    print("+", " ".join(cmd), flush=True)
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def main(workdir: Path) -> None:
    root = copy_tiny_repo(workdir / "repo", {**TINY_OVERRIDES, "seeds": [0, 1]})
    run(["git", "init", "-q"], root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "tiny"], root)
    run(["dvc", "repro"], root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "tiny run"], root)
    for name, sets in EXPERIMENTS.items():
        run(["dvc", "exp", "run", "--queue", "-n", name, *[a for s in sets for a in ("-S", s)]], root)
    run(["dvc", "queue", "start", "-j", "1"], root)
    run(["dvc", "queue", "logs", list(EXPERIMENTS)[-1], "--follow"], root)
    for _ in range(600):
        status = run(["dvc", "queue", "status"], root)
        if not any(word in status for word in ("Queued", "Running")):
            break
        import time
        time.sleep(2)
    # Queued and never run: the report must leave them out (no metrics yet).
    run(["dvc", "exp", "run", "--queue", "-S", "seeds=[0,1,2]", "-S", "distill.method=at,sp"], root)
    run(["dvc", "exp", "run", "--queue", "-S", "seeds=[0,1,2]", "-S", "student.arch=vgg16"], root)
    records = json.loads(run(["dvc", "exp", "show", "--json"], root))
    out = REPO / "tests" / "data" / "exp_show_tiny.json"
    out.write_text(json.dumps(records) + "\n")
    print(f"wrote {out} ({len(records)} baseline record(s))")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="vskd-exp-")))
