#!/bin/bash
# The loops benchmark on real motion: a workspace of links to the dev protocol's stores
# (data/dev/utd_mhad/, built by the README's `python -m vskd dev` command) and fold s1's
# teacher, with the dev command's settings and fold s1's split (train 3/5/7, test 1).
set -e
REPO=$(cd "$(dirname "$0")/../.." && pwd)
export W=${BENCH_WS:-/tmp/vskd-bench-real} D=$REPO/data/dev/utd_mhad REPO
for f in raw frames.h5 gaf.h5 fold_s1/teacher.pt fold_s1/teacher_outputs.h5; do
  [ -e "$D/$f" ] || { echo "missing $D/$f: run the README's python -m vskd dev command first" >&2; exit 1; }
done
rm -rf "$W"; mkdir -p "$W/data/utd_mhad" "$W/models/utd_mhad"
for f in raw frames.h5 gaf.h5; do ln -s "$D/$f" "$W/data/utd_mhad/$f"; done
for f in teacher.pt teacher_outputs.h5; do ln -s "$D/fold_s1/$f" "$W/models/utd_mhad/$f"; done
python - <<'PY'
import os, yaml
from vskd.devprotocol import fold_split, load_with_overrides
repo, ws = os.environ["REPO"], os.environ["W"]
p = load_with_overrides(f"{repo}/params.yaml", [
    "datasets=[utd_mhad]", f"utd_mhad.source={repo}/../shared/data/utd_mhad_odd_subjects",
    "utd_mhad.video.source=skeleton", "teacher.epochs=16", "teacher.schedule=cosine", "student.epochs=20"])
p["utd_mhad"]["split"] = fold_split(p["utd_mhad"]["split"], [1, 3, 5, 7], 1)
with open(f"{ws}/params.yaml", "w") as f:
    yaml.safe_dump(p, f, sort_keys=False)
PY
cd "$REPO" && python -m benchmarks.run --sections loops --root "$W" --params "$W/params.yaml" --out-dir "$W/out" --fresh
