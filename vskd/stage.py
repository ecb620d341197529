"""What every stage script shares: argv parsing, params loading, clean error reporting."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable

from vskd.params import ParamsError, dataset_block, load_params


def run(stage: str, body: Callable[[str, dict, dict], dict | None]) -> None:
    """``python stages/<stage>.py DATASET``: validate params, run ``body(name, params, block)``.

    Expected failures (bad params, bad input files) print one clear line and exit 1;
    anything else keeps its traceback, since that is a bug to report.
    """
    parser = argparse.ArgumentParser(prog=f"stages/{stage}.py", description=f"DVC stage {stage}@DATASET")
    parser.add_argument("dataset", help="a dataset name listed under 'datasets' in params.yaml")
    parser.add_argument("--params", default="params.yaml", type=Path)
    args = parser.parse_args()
    start = time.perf_counter()
    try:
        params = load_params(args.params)
        block = dataset_block(params, args.dataset, args.params)
        summary = body(args.dataset, params, block)
    except (ParamsError, ValueError, FileNotFoundError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"{stage}@{args.dataset}: error: {message}", file=sys.stderr)
        sys.exit(1)
    elapsed = time.perf_counter() - start
    details = ", ".join(f"{k}={v}" for k, v in (summary or {}).items())
    print(f"{stage}@{args.dataset}: done in {elapsed:.1f} s" + (f" ({details})" if details else ""))
