"""Command line:

* ``python -m vskd predict MODEL FILE [--window S] [--stride S] [--rate HZ] [--json]``
* ``python -m vskd report [--from-json FILE] [--out FILE] [--repo DIR]``: Tables 1-4 as Markdown
* ``python -m vskd dev [--folds ...] [--seeds ...] [-S KEY=VALUE]``: the development protocol
  (``--students-only``: its baseline students alone; ``--teachers-only``: its teachers alone;
  ``--against FILE``: compared with another
  run of the same kind, trial by trial)
* ``python -m vskd choose RUN.json RUN.json ... [--model vskd]``: a setting chosen on the
  development folds, with its honest (leave-one-fold-out) figure
* ``python -m vskd preset TABLE [-S KEY=VALUE] [--queue] [--dry-run]``: a paper table at its scale
"""

from __future__ import annotations

import argparse
import sys


# Each sub-command's one-line help and its description (python -m vskd COMMAND --help).
COMMANDS = {
    "predict": (
        "classify an accelerometer recording with the exported or a trained student",
        "Classify a .mat (UTD-MHAD d_iner) or .csv (x,y,z in g; optional t in s) recording. "
        "A recording no longer than the window gives one prediction; a longer one, one "
        "prediction per sliding window."),
    "report": (
        "render the paper's Tables 1-4 as Markdown from the DVC experiments",
        "Reads `dvc exp show --json` (the workspace and every finished experiment) and "
        "renders Tables 1-4 in the paper's shape, the paper's numbers beside ours, the "
        "MiniRocket reference row in each, n/a where no experiment has run."),
    "dev": (
        "the development protocol: leave-one-subject-out inside the development subjects",
        "For each development subject: train the teacher on the others, then the baseline "
        "and distilled students and MiniRocket per seed; print accuracy per fold, mean +- std "
        "over folds and the paired tests pooled over every held-out trial."),
    "choose": (
        "choose a setting among development-protocol runs, with its leave-one-fold-out figure",
        "Each RUN.json is one `python -m vskd dev` run of a candidate setting (same folds, seeds "
        "and trials). Prints each candidate's accuracy per fold, then the nested estimate: each "
        "fold scored by the candidate chosen on the other folds, with its paired bootstrap "
        "interval against the baseline student and against the first candidate (list the "
        "current default first: it wins ties)."),
    "preset": (
        "reproduce one of the paper's tables at its scale: dvc exp run per row family",
        "Builds the `dvc exp run -n NAME -S ...` commands of a committed preset "
        "(vskd/presets/<table>.yaml on top of paper.yaml), validates every run's params, "
        "then runs them in turn (or queues or prints them)."),
}


def _command(commands, name: str) -> argparse.ArgumentParser:
    help_text, description = COMMANDS[name]
    return commands.add_parser(name, help=help_text, description=description)


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vskd", description="VSKD tools")
    commands = parser.add_subparsers(dest="command", required=True)
    for add in (_add_predict, _add_report, _add_dev, _add_choose, _add_preset):
        add(commands)
    return parser


def _add_predict(commands) -> None:
    p = _command(commands, "predict")
    p.add_argument("model", help="the exported student (.onnx) or a GAF student checkpoint (.pt)")
    p.add_argument("file", help="recording: .mat (UTD-MHAD d_iner) or .csv")
    p.add_argument("--window", type=_positive, metavar="SECONDS",
                   help="sliding window length in seconds (default: the model's input length at its "
                        "training rate; 200 samples at 50 Hz = 4 s for the default export)")
    p.add_argument("--stride", type=_positive, metavar="SECONDS",
                   help="step between windows in seconds (default: half the window)")
    p.add_argument("--rate", type=_positive, metavar="HZ",
                   help="sampling rate of the recording (default: the CSV's time column, else the "
                        "model's training rate, 50 Hz)")
    p.add_argument("--top", type=int, default=3, help="probabilities shown per window in the table (default 3)")
    p.add_argument("--json", action="store_true", help="print JSON with every class probability")
    p.add_argument("--params", default="params.yaml",
                   help="params.yaml holding gaf.* for a .pt checkpoint (default: ./params.yaml)")


def _add_report(commands) -> None:
    r = _command(commands, "report")
    r.add_argument("--from-json", metavar="FILE",
                   help="read this saved `dvc exp show --json` output instead of running dvc")
    r.add_argument("--out", metavar="FILE", help="write the Markdown here (default: standard output)")
    r.add_argument("--repo", default=".", help="the DVC repository (default: the current folder)")
    r.add_argument("--num", type=int, default=1, metavar="N",
                   help="read the experiments of the last N commits (`dvc exp show -n N`; default 1: "
                        "HEAD's). Experiments queued before a later commit hang off the older one")


def _add_dev(commands) -> None:
    d = _command(commands, "dev")
    d.add_argument("--dataset", default="utd_mhad", help="a dataset block of params.yaml (default utd_mhad)")
    d.add_argument("--subjects", default="1,3,5,7",
                   help="the development subjects, one fold each (default 1,3,5,7: never 2/4/6/8, the "
                        "cross-subject test subjects)")
    d.add_argument("--folds", help="run only these held-out subjects (default: every subject)")
    d.add_argument("--seeds", help="training seeds, comma-separated (default: params.yaml seeds)")
    d.add_argument("--work", default="data/dev", help="stores and fold models go here (default data/dev)")
    d.add_argument("--out", default=None, help="metrics JSON (default metrics/dev/<dataset>.json, "
                                               "<dataset>_students.json with --students-only, "
                                               "<dataset>_teachers.json with --teachers-only)")
    d.add_argument("--students-only", action="store_true",
                   help="train and test the baseline students alone (no teacher): the cheap loop for a "
                        "student or GAF setting")
    d.add_argument("--teachers-only", action="store_true",
                   help="train and test each fold's teacher alone (no students): the loop for a teacher "
                        "or skeleton-drawing setting")
    d.add_argument("--preset", metavar="NAME",
                   help="apply a committed preset's settings first (vskd/presets/NAME.yaml, e.g. real_motion: "
                        "the measured real-motion recipe); -S overrides apply after them")
    d.add_argument("--against", default=None,
                   help="another run's JSON of the same kind (students- or teachers-only, or a protocol file with its "
                        "predictions) to compare with, trial by trial")
    _add_overrides(d, "override a params.yaml value for this run (as dvc exp run -S), repeatable")


def _add_choose(commands) -> None:
    c = _command(commands, "choose")
    c.add_argument("runs", nargs="+", metavar="RUN.json", help="dev-protocol metrics files, one per candidate")
    c.add_argument("--model", default="vskd", choices=("vskd", "student", "minirocket"),
                   help="whose accuracy chooses (default vskd; student for --students-only files)")
    c.add_argument("--seeds", help="use only these seeds of every run, comma-separated (default: all; "
                                   "the runs must then have the same seeds)")
    c.add_argument("--out", metavar="FILE", help="also write the result as JSON here")


def _add_overrides(parser, help_text: str) -> None:
    """``--params FILE`` and repeatable ``-S KEY=VALUE``, as dvc exp run takes them."""
    parser.add_argument("--params", default="params.yaml", help="params file (default ./params.yaml)")
    parser.add_argument("-S", "--set", action="append", default=[], metavar="KEY=VALUE", help=help_text)


def _add_preset(commands) -> None:
    from vskd.preset import table_presets

    p = _command(commands, "preset")
    p.add_argument("table", choices=table_presets(), help="the table to reproduce")
    _add_overrides(p, "a further override for every run (a dataset's local copy, a weights file, seeds), "
                      "repeatable")
    p.add_argument("--queue", action="store_true", help="queue the experiments (then: dvc queue start)")
    p.add_argument("--dry-run", action="store_true", help="check and print the commands, run nothing")


def _ints(text: str | None) -> list[int] | None:
    return None if text is None else [int(t) for t in text.split(",") if t.strip()]


def dev(args) -> int:
    from vskd.devprotocol import format_students, format_summary, run_dev, run_students, run_teachers
    from vskd.params import ParamsError
    from vskd.preset import preset_overrides

    only = "_students" if args.students_only else "_teachers" if args.teachers_only else ""
    out = args.out or f"metrics/dev/{args.dataset}{only}.json"
    try:
        overrides = preset_overrides(args.preset) + args.set
        common = dict(seeds=_ints(args.seeds), folds=_ints(args.folds), overrides=overrides)
        if args.students_only and args.teachers_only:
            raise ValueError("--students-only and --teachers-only exclude each other: drop one")
        if args.teachers_only:
            result = run_teachers(args.params, args.dataset, _ints(args.subjects), args.work, out,
                                  folds=common["folds"], overrides=overrides, against=args.against)
        elif args.students_only:
            result = run_students(args.params, args.dataset, _ints(args.subjects), args.work, out,
                                  against=args.against, **common)
        else:
            result = run_dev(args.params, args.dataset, _ints(args.subjects), args.work, out,
                             against=args.against, **common)
    except (ParamsError, ValueError, FileNotFoundError) as exc:
        print(f"dev: error: {exc}", file=sys.stderr)
        return 1
    print(format_students(result, "teacher") if args.teachers_only
          else format_students(result) if args.students_only else format_summary(result))
    print(f"dev: wrote {out}", file=sys.stderr)
    return 0


def report(args) -> int:
    from vskd.report import main as render_report

    try:
        text = render_report(args.from_json, args.out, args.repo, args.num)
    except (RuntimeError, FileNotFoundError, ValueError) as exc:
        print(f"report: error: {exc}", file=sys.stderr)
        return 1
    if args.out:
        print(f"report: wrote {args.out}", file=sys.stderr)
    else:
        print(text, end="" if text.endswith("\n") else "\n")
    return 0


def choose(args) -> int:
    from vskd.selection import format_selection, load_runs, nested_selection

    try:
        result = nested_selection(load_runs(args.runs, args.model, _ints(args.seeds)), args.model)
    except (ValueError, FileNotFoundError) as exc:
        print(f"choose: error: {exc}", file=sys.stderr)
        return 1
    print(format_selection(result))
    if args.out:
        from vskd.devprotocol import write_json

        write_json(args.out, result)
        print(f"choose: wrote {args.out}", file=sys.stderr)
    return 0


def preset(args) -> int:
    from vskd.params import ParamsError
    from vskd.preset import parse_overrides, run_preset

    try:
        return run_preset(args.table, parse_overrides(args.set), params_path=args.params, queue=args.queue, dry_run=args.dry_run)
    except ParamsError as exc:
        print(f"preset: error: {exc}", file=sys.stderr)
        return 1


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in ("report", "dev", "choose", "preset"):
        return {"report": report, "dev": dev, "choose": choose, "preset": preset}[args.command](args)
    from vskd.predict import format_table, load_predictor, predict_file, to_json

    try:
        predictor = load_predictor(args.model, args.params)
        result = predict_file(predictor, args.file, window_s=args.window, stride_s=args.stride, rate=args.rate)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"predict: error: {message}", file=sys.stderr)
        return 1
    try:
        print(to_json(result) if args.json else format_table(result, top=max(1, args.top)))
        sys.stdout.flush()
    except BrokenPipeError:  # `... | head`: the reader left; not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
