"""Peak memory and step time of one training step of each stage at the paper's sizes.

    python -m benchmarks.paper_scale                  # 224 px frames and GAF, 8 segments, batch 2
    python -m benchmarks.paper_scale --amp            # the same under runtime.amp (bfloat16 on CPU)
    python -m benchmarks.paper_scale --size 64        # a smaller frame crop and GAF
    python -m benchmarks.paper_scale --device cuda --steps 5

What a paper-scale run needs before it is started (issue 13): the default pipeline trains at
56 px frames and 48 px GAF on a CPU budget, the paper at 224 px (frames cropped from 256,
GAF resized to 224) with 8 TSN segments. Each stage is built by the project's own code
(``vskd.train_teacher.build_teacher`` and the teacher stage's optimiser,
``vskd.train_student.build_student``, ``vskd.losses.distill_loss`` of params.yaml's
``distill.method``) and trained by ``vskd.loop.fit`` with ``runtime.amp`` as ``--amp``
says, on a fake in-memory dataset (random frames 0..255, random GAF in [-1, 1], random stored
teacher outputs): ``--steps`` batches of ``--batch`` samples.

Figures, per stage:

* ``step_s``: wall time of each training step (data, forward, loss, backward, optimiser);
  the first includes one-off allocations and kernel selection, so ``--steps 3`` shows the
  steady state too.
* ``peak_rss_mib``: the process's peak resident memory (``ru_maxrss``) at the end of the
  steps; ``build_rss_mib``: the peak once imports, model, optimiser and data exist; their
  difference ``step_rss_mib`` is what the training step itself adds (activations kept for
  backward, gradients, optimiser state). On CUDA also ``cuda_peak_mib``
  (``torch.cuda.max_memory_allocated``).

Every stage runs in a fresh Python process, so one stage's high-water mark does not hide the
next one's (``--in-process`` runs them in this process: quicker, but then a later stage's
``ru_maxrss`` figures include what the earlier ones reached).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python benchmarks/paper_scale.py` as well as `-m benchmarks.paper_scale`
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402

STAGES = ("teacher", "student", "distill")


def rss_mib() -> float:
    """Peak resident memory of this process so far, MiB (Linux reports ru_maxrss in KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def stage_params(params_path: Path) -> dict:
    """params.yaml, validated, with ``student.pretrained`` off: random weights cost the same
    memory and time as ImageNet ones, and need no download."""
    from vskd.params import load_params

    params = load_params(params_path)
    params["student"] = {**params["student"], "pretrained": ""}
    return params


def _teacher(args, params):
    from vskd.train_teacher import _optimizer, build_teacher  # the teacher stage's own optimiser
    from vskd.loop import cross_entropy_step

    cfg = params["teacher"]
    model = build_teacher(args.classes, args.segments, cfg, seed=0)
    n = args.batch * args.steps
    data = (torch.rand(n, args.segments, 3, args.size, args.size) * 255.0,)  # RGB frames 0..255
    return model, cross_entropy_step, _optimizer(model, cfg), cfg.get("clip_grad_norm"), data


def _student(args, params):
    from vskd.train_student import build_student
    from vskd.loop import cross_entropy_step, make_adam  # the student stage's own optimiser

    cfg = params["student"]
    model = build_student(args.classes, params["teacher"]["feature_dim"], cfg, verbose=False)
    data = (torch.rand(args.batch * args.steps, 3, args.size, args.size) * 2.0 - 1.0,)  # GAF in [-1, 1]
    optimizer = make_adam(model.parameters(), cfg["lr"], cfg["weight_decay"], decoupled=False)
    return model, cross_entropy_step, optimizer, None, data


def _distill(args, params):
    """The student against stored teacher outputs (logits, features, and for AT the maps at
    output strides 8, 16, 32), with distill.method's loss, as the distill stage's step."""
    from vskd.losses import distill_inputs, distill_loss

    model, _, optimizer, _, (gaf,) = _student(args, params)
    loss = distill_loss(params)
    n, maps = len(gaf), "at" in loss.terms
    teacher = (torch.randn(n, args.classes), torch.rand(n, params["teacher"]["feature_dim"]))
    if maps:
        teacher += tuple(torch.rand(n, args.size // s, args.size // s) for s in (8, 16, 32))

    def make_step(net):
        def step(batch):
            x, y, t_logits, t_feature, *t_maps, _ = batch
            h, s_maps = net.features_and_maps(x) if maps else (net.features(x), [])
            logits = net.head(h)
            total, terms = loss(distill_inputs(loss, student_logits=logits, student_feature=h,
                                               teacher_logits=t_logits, teacher_feature=t_feature, target=y,
                                               student_maps=s_maps, teacher_maps=t_maps))
            return total, terms, logits.detach(), y
        return step

    return model, make_step, optimizer, None, (gaf, *teacher)


BUILDERS = {"teacher": _teacher, "student": _student, "distill": _distill}


def measure(stage: str, args, params: dict) -> dict:
    """Build ``stage`` and train it for ``args.steps`` steps with ``vskd.loop.fit``."""
    from vskd.cost import count_params
    from vskd.loaders import make_loader
    from vskd.loop import fit
    from vskd.runtime import Runtime, resolve_device

    device = resolve_device({"device": args.device})
    rt = Runtime(device=device, amp=args.amp, resume=False)
    start_rss = rss_mib()
    torch.manual_seed(0)
    model, make_step, optimizer, clip, inputs = BUILDERS[stage](args, params)
    n = len(inputs[0])
    labels, rows = torch.arange(n) % args.classes, torch.arange(n)
    data = torch.utils.data.TensorDataset(inputs[0], labels, *inputs[1:], rows)  # (x, y, ..., row)
    loader = make_loader(data, args.batch, shuffle=True, seed=0, drop_last=True, runtime=rt)
    net = rt.wrap(model)
    step, marks, end = make_step(net), [], {}

    def timed_step(batch):
        _sync(device)
        marks.append(time.perf_counter())
        return step(batch)

    def after_steps():  # fit calls it once the epoch's steps are done, before anything else
        _sync(device)
        end.update(time=time.perf_counter(), rss=rss_mib(),
                   cuda=torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None)
        return {}

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    build_rss = rss_mib()
    result = fit(model, timed_step, after_steps, loader, optimizer, 1, None, max_grad_norm=clip,
                 desc=stage, runtime=rt)
    times = [b - a for a, b in zip(marks, marks[1:] + [end["time"]])]
    out = {"stage": stage, "size": args.size, "segments": args.segments if stage == "teacher" else None,
           "batch": args.batch, "amp": args.amp, "device": str(device), "params_m": round(count_params(model) / 1e6, 2),
           "loss": round(result.history[0]["train/loss"], 4), "step_s": [round(t, 3) for t in times],
           "start_rss_mib": round(start_rss), "build_rss_mib": round(build_rss), "peak_rss_mib": round(end["rss"]),
           "step_rss_mib": round(end["rss"]) - round(build_rss)}  # the printed columns' difference
    if end["cuda"] is not None:
        out["cuda_peak_mib"] = round(end["cuda"])
    return out


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _isolated(stage: str, argv: list[str]) -> dict:
    """``measure`` in a fresh process (its own ru_maxrss); its JSON line back."""
    cmd = [sys.executable, "-m", "benchmarks.paper_scale", *argv, "--only", stage]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"paper_scale: {stage} failed ({' '.join(cmd)}):\n{done.stderr.strip()}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def format_table(results: list[dict]) -> str:
    cuda = any("cuda_peak_mib" in r for r in results)
    head = ["stage", "px", "segments", "batch", "amp", "device", "params M", "step s", "peak RSS MiB",
            "step adds MiB"] + (["CUDA peak MiB"] if cuda else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        cells = [r["stage"], r["size"], r["segments"] or "-", r["batch"], "on" if r["amp"] else "off", r["device"],
                 r["params_m"], " / ".join(f"{t:.2f}" for t in r["step_s"]), r["peak_rss_mib"], r["step_rss_mib"]]
        lines.append("| " + " | ".join(str(c) for c in cells + ([r.get("cuda_peak_mib", "-")] if cuda else [])) + " |")
    return "\n".join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.paper_scale", description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=224, help="frame crop and GAF side, px (paper: 224)")
    p.add_argument("--segments", type=int, default=8, help="TSN segments of the teacher (paper: 8)")
    p.add_argument("--batch", type=int, default=2, help="samples per step (default 2)")
    p.add_argument("--steps", type=int, default=1, help="training steps per stage (default 1)")
    p.add_argument("--classes", type=int, default=27, help="classes (UTD-MHAD: 27)")
    p.add_argument("--amp", action="store_true", help="runtime.amp: autocast (bfloat16 on CPU)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"), help="as runtime.device (default cpu)")
    p.add_argument("--stages", default=",".join(STAGES), help="comma-separated, of teacher, student, distill")
    p.add_argument("--params", type=Path, default=REPO / "params.yaml", help="the blocks the builders read")
    p.add_argument("--in-process", action="store_true", help="every stage in this process (see the docstring)")
    p.add_argument("--json", action="store_true", help="print the results as JSON, not a table")
    p.add_argument("--only", choices=STAGES, help=argparse.SUPPRESS)  # one stage, one JSON line (child)
    args = p.parse_args(argv)
    args.stages = [s for s in args.stages.split(",") if s]
    unknown = sorted(set(args.stages) - set(STAGES))
    if unknown or args.size < 32 or args.batch < 2 or args.steps < 1:
        p.error(f"--stages: unknown {unknown}" if unknown else "needs --size >= 32, --batch >= 2, --steps >= 1")
    return args


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    params = stage_params(args.params)
    if args.only:
        print(json.dumps(measure(args.only, args, params)))
        return 0
    results = [measure(s, args, params) if args.in_process else _isolated(s, argv) for s in args.stages]
    print(json.dumps(results, indent=1) if args.json else format_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
