"""Progress bars for long work (decoding, encoding, training epochs, downloads)."""

import os
import sys

from tqdm import tqdm


def progress(iterable, **kwargs):
    """tqdm that stays quiet when stderr is not a terminal and VSKD_PROGRESS is unset
    (logs of CI and `dvc repro` piped to a file), and shows bars otherwise."""
    disable = not (sys.stderr.isatty() or os.environ.get("VSKD_PROGRESS") == "1")
    if int(os.environ.get("RANK", "0")) != 0:
        disable = True  # under torchrun, rank 0 alone draws bars
    return tqdm(iterable, disable=disable, dynamic_ncols=True, leave=False, **kwargs)
