"""What a stage does with a sample it cannot use: ``runtime.on_bad_sample`` in params.yaml.

* ``error`` (default): stop at the first bad sample with one message naming the sample, the
  file, what is wrong and what to do;
* ``skip``: leave the sample out, print one warning line for it, count and name it in the
  stage's summary line (``skipped=N (ids)``) and record it in the stage's output store
  (attribute ``skipped``: id -> reason), so later stages tell a skipped sample from a
  store built from another index.
"""

from __future__ import annotations

import sys

from vskd.choices import ON_BAD_SAMPLE
from vskd.index import id_listing

SKIP_HINT = ("or set 'runtime.on_bad_sample: skip' in params.yaml to leave such samples out "
             "(counted in the stage's summary line)")


class BadSampleError(ValueError):
    """A sample that cannot be used, with on_bad_sample: error."""


class BadSamples:
    def __init__(self, mode: str = "error"):
        if mode not in ON_BAD_SAMPLE:
            raise ValueError(f"on_bad_sample must be one of {ON_BAD_SAMPLE}, got {mode!r}")
        self.mode = mode
        self.skipped: dict[str, str] = {}

    def handle(self, sample_id: str, path, problem: str) -> None:
        """Raise (error) or record and report (skip) one bad sample."""
        where = f"sample {sample_id}"
        if path is not None and str(path) not in problem:
            where += f" ({path})"
        message = f"{where}: {problem.rstrip().rstrip('.')}"
        if self.mode == "error":
            raise BadSampleError(f"{message}; {SKIP_HINT}.")
        self.skipped[sample_id] = problem
        print(f"warning: skipped {message}", file=sys.stderr)

    def summary(self) -> dict:
        """``{"skipped": "N (ids)"}`` in skip mode (also when N is 0), nothing in error mode."""
        return {"skipped": id_listing(list(self.skipped))} if self.mode == "skip" else {}
