"""Is a difference between two classifiers real? Paired statistics on test predictions.

Both models are scored on the same test samples, so their comparison is paired:

* :func:`mcnemar_exact`: the exact McNemar test. Only the discordant samples carry
  information: ``b`` = samples model A gets right and model B wrong, ``c`` = the reverse.
  Under the null hypothesis (equal accuracy) each discordant sample falls either way with
  probability 1/2, so ``b ~ Binomial(b + c, 1/2)``; the p-value is the two-sided binomial
  test, ``min(1, 2 * P(X <= min(b, c)))``, computed exactly with integers.
* :func:`paired_bootstrap_ci`: a percentile confidence interval on the accuracy difference
  B - A, resampling test samples with replacement (the same resample for both models, which
  keeps the pairing), from a fixed seed: the same inputs give the same interval.
* :func:`seed_summary`: mean and sample standard deviation over training seeds.

Several seeds: McNemar is run per seed (each seed's two models on the same samples). The
bootstrap pools the seeds per sample: each sample's correctness is averaged over the seeds
first (``correct`` arrays of shape (seeds, samples)), and test samples are resampled. The
interval is then about the expected gain of the training protocol (averaged over seeds) on
a new test set from the same population; the spread between seeds is reported separately
(the per-seed differences and their standard deviation), not folded into the interval.
"""

from __future__ import annotations

from fractions import Fraction
from math import comb

import numpy as np

BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0


def discordant_counts(correct_a, correct_b) -> tuple[int, int]:
    """(b, c): samples only A gets right, samples only B gets right."""
    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"expected two 1-d correctness arrays of one shape, got {a.shape} and {b.shape}")
    return int(np.sum(a & ~b)), int(np.sum(~a & b))


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for ``b`` and ``c`` discordant samples.

    ``mcnemar_exact(0, 5)`` = 2 * (1/2)^5 = 0.0625; no discordant sample gives 1.
    """
    if b < 0 or c < 0 or int(b) != b or int(c) != c:
        raise ValueError(f"discordant counts must be integers >= 0, got b={b!r}, c={c!r}")
    b, c = int(b), int(c)
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = Fraction(sum(comb(n, i) for i in range(k + 1)), 2 ** n)
    return float(min(Fraction(1), 2 * tail))


def mcnemar(y_true, pred_a, pred_b) -> dict:
    """McNemar of model B against model A on the same samples: b, c and the exact p-value."""
    y = np.asarray(y_true)
    b, c = discordant_counts(np.asarray(pred_a) == y, np.asarray(pred_b) == y)
    return {"b": b, "c": c, "p_value": mcnemar_exact(b, c)}


def paired_bootstrap_ci(correct_a, correct_b, *, resamples: int = BOOTSTRAP_RESAMPLES,
                        seed: int = BOOTSTRAP_SEED, confidence: float = 0.95) -> dict:
    """Percentile bootstrap interval of accuracy(B) - accuracy(A).

    ``correct_a``, ``correct_b``: (samples,) or (seeds, samples) correctness (bool or 0/1)
    on the same test samples in the same order; with seeds, each sample's correctness is
    first averaged over the seeds (module docstring). Returns the observed difference, the
    interval and how it was computed.
    """
    a = np.asarray(correct_a, dtype=np.float64)
    b = np.asarray(correct_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim not in (1, 2) or a.shape[-1] == 0:
        raise ValueError(f"expected two (samples,) or (seeds, samples) arrays of one shape, got "
                         f"{a.shape} and {b.shape}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    seeds = 1 if a.ndim == 1 else a.shape[0]
    diff = (b - a) if a.ndim == 1 else (b - a).mean(axis=0)   # per test sample
    n = len(diff)
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    chunk = max(1, 2_000_000 // n)
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = diff[idx].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return {"accuracy_diff": float(diff.mean()), "ci_low": float(low), "ci_high": float(high),
            "confidence": confidence, "resamples": int(resamples), "seed": int(seed),
            "samples": int(n), "seeds_pooled": int(seeds)}


def seed_summary(values) -> dict:
    """Mean and sample standard deviation (ddof=1) over seeds; std is None for one seed."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or len(v) == 0:
        raise ValueError(f"expected a non-empty 1-d list of per-seed values, got shape {v.shape}")
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else None}
