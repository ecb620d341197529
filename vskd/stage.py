"""What every stage script shares: argv parsing, params loading, clean error reporting, and
for the training stages the torchrun launch that ``runtime.distributed`` asks for."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from vskd.params import ParamsError, dataset_block, load_params, runtime_block


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def torchrun_command(nproc: int, argv: list[str], port: int | None = None) -> list[str]:
    """``python -m torch.distributed.run`` (torchrun) on this machine, ``nproc`` processes."""
    return [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", f"--nproc_per_node={nproc}",
            "--master_addr=127.0.0.1", f"--master_port={port or free_port()}", *argv]


def run(stage: str, body: Callable[[str, dict, dict], dict | None], *, distributed: bool = False) -> None:
    """``python stages/<stage>.py DATASET``: validate params, run ``body(name, params, block)``.

    Expected failures (bad params, bad input files) print one clear line and exit 1;
    anything else keeps its traceback, since that is a bug to report.

    ``distributed``: a training stage. Started by torchrun (``WORLD_SIZE`` set), it runs as
    one DDP process and only rank 0 prints the summary line; started plainly with
    ``runtime.distributed.nproc_per_node`` > 1, it starts itself again under torchrun.
    """
    parser = argparse.ArgumentParser(prog=f"stages/{stage}.py", description=f"DVC stage {stage}@DATASET")
    parser.add_argument("dataset", help="a dataset name listed under 'datasets' in params.yaml")
    parser.add_argument("--params", default="params.yaml", type=Path)
    args = parser.parse_args()
    start = time.perf_counter()
    rank = int(os.environ.get("RANK", "0"))
    try:
        params = load_params(args.params)
        block = dataset_block(params, args.dataset, args.params)
        nproc = runtime_block(params)["distributed"]["nproc_per_node"]
        if distributed and nproc > 1 and "WORLD_SIZE" not in os.environ:
            command = torchrun_command(nproc, [sys.argv[0], *sys.argv[1:]])
            print(f"{stage}@{args.dataset}: runtime.distributed.nproc_per_node={nproc}: "
                  + " ".join(command[1:]), file=sys.stderr)
            sys.exit(subprocess.call(command))
        summary = body(args.dataset, params, block)
    except (ParamsError, ValueError, FileNotFoundError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"{stage}@{args.dataset}: error: {message}", file=sys.stderr)
        sys.exit(1)
    if rank != 0:
        return
    elapsed = time.perf_counter() - start
    details = ", ".join(f"{k}={v}" for k, v in (summary or {}).items())
    print(f"{stage}@{args.dataset}: done in {elapsed:.1f} s" + (f" ({details})" if details else ""))
