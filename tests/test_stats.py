"""vskd.stats: exact McNemar on hand-computed cases, the paired bootstrap's interval."""

import numpy as np
import pytest
from scipy.stats import binomtest

from vskd.stats import (discordant_counts, mcnemar, mcnemar_exact, paired_bootstrap_ci,
                        seed_summary)


@pytest.mark.parametrize("b, c, expected", [
    (0, 5, 0.0625),          # 2 * (1/2)^5
    (5, 0, 0.0625),          # symmetric
    (1, 4, 0.375),           # 2 * (1 + 5) / 32
    (0, 1, 1.0),             # 2 * 1/2
    (2, 2, 1.0),             # 2 * 11/16, capped at 1
    (0, 0, 1.0),             # no discordant sample: no evidence
    (0, 10, 2 / 1024),
    (1, 9, 2 * 11 / 1024),   # 2 * (1 + 10) / 2^10
])
def test_mcnemar_exact_hand_computed(b, c, expected):
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("b, c", [(3, 10), (17, 30), (40, 41), (0, 60), (120, 95)])
def test_mcnemar_exact_is_the_two_sided_binomial_test(b, c):
    assert mcnemar_exact(b, c) == pytest.approx(binomtest(b, b + c, 0.5).pvalue, rel=1e-9)


def test_mcnemar_rejects_bad_counts():
    with pytest.raises(ValueError, match="discordant counts"):
        mcnemar_exact(-1, 3)
    with pytest.raises(ValueError, match="discordant counts"):
        mcnemar_exact(1.5, 3)


def test_mcnemar_counts_discordant_pairs_from_predictions():
    y = np.array([0, 1, 2, 0, 1, 2, 0])
    a = np.array([0, 1, 2, 1, 1, 0, 2])     # right on samples 0, 1, 2, 4
    b = np.array([0, 0, 2, 0, 1, 2, 1])     # right on samples 0, 2, 3, 4, 5
    assert discordant_counts(a == y, b == y) == (1, 2)
    assert mcnemar(y, a, b) == {"b": 1, "c": 2, "p_value": 1.0}


def test_bootstrap_ci_contains_the_true_difference_and_excludes_zero():
    # A population where B beats A by 0.10: P(only B right) = 0.2, P(only A right) = 0.1.
    rng = np.random.default_rng(123)
    n = 2000
    u = rng.random(n)
    a = (u < 0.5) | ((u >= 0.7) & (u < 0.8))          # both right 0.5, only A 0.1
    b = (u < 0.5) | ((u >= 0.5) & (u < 0.7))          # only B 0.2
    ci = paired_bootstrap_ci(a, b)
    assert ci["accuracy_diff"] == pytest.approx(b.mean() - a.mean())
    assert ci["ci_low"] < 0.10 < ci["ci_high"]
    assert ci["ci_low"] > 0                            # the gain is real at this size
    # the standard error of a paired difference is sqrt(var(d) / n): about 0.0123 here
    d = b.astype(float) - a
    se = d.std() / np.sqrt(n)
    assert ci["ci_high"] - ci["ci_low"] == pytest.approx(2 * 1.96 * se, rel=0.08)
    assert (ci["resamples"], ci["seed"], ci["samples"], ci["seeds_pooled"]) == (10_000, 0, n, 1)


def test_bootstrap_ci_is_deterministic_for_a_seed_and_moves_with_it():
    rng = np.random.default_rng(7)
    a, b = rng.random(150) < 0.6, rng.random(150) < 0.65
    first, again = paired_bootstrap_ci(a, b, seed=3), paired_bootstrap_ci(a, b, seed=3)
    assert first == again
    other = paired_bootstrap_ci(a, b, seed=4)
    assert (other["ci_low"], other["ci_high"]) != (first["ci_low"], first["ci_high"])
    assert other["accuracy_diff"] == first["accuracy_diff"]


def test_bootstrap_ci_covers_the_true_difference_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    hits, trials = 0, 200
    for t in range(trials):
        u = rng.random(120)
        a = u < 0.55
        b = (u < 0.45) | ((u >= 0.55) & (u < 0.70))   # true difference 0.60 - 0.55 = 0.05
        ci = paired_bootstrap_ci(a, b, resamples=2000, seed=t)
        hits += ci["ci_low"] <= 0.05 <= ci["ci_high"]
    assert 0.89 <= hits / trials <= 0.99


def test_bootstrap_pools_seeds_by_averaging_each_samples_correctness():
    a = np.array([[1, 0, 1, 0, 1, 1], [1, 1, 0, 0, 1, 0]], dtype=bool)
    b = np.array([[1, 1, 1, 0, 1, 1], [0, 1, 1, 1, 1, 0]], dtype=bool)
    pooled = paired_bootstrap_ci(a, b, resamples=500)
    per_sample = paired_bootstrap_ci(a.mean(0), b.mean(0), resamples=500)
    assert pooled["seeds_pooled"] == 2
    assert pooled["accuracy_diff"] == pytest.approx(b.mean() - a.mean())   # 9/12 - 7/12
    assert (pooled["ci_low"], pooled["ci_high"]) == (per_sample["ci_low"], per_sample["ci_high"])


def test_identical_models_give_a_zero_width_interval():
    a = np.array([1, 0, 1, 1, 0], dtype=bool)
    assert paired_bootstrap_ci(a, a.copy(), resamples=100) | {} == {
        "accuracy_diff": 0.0, "ci_low": 0.0, "ci_high": 0.0, "confidence": 0.95, "resamples": 100,
        "seed": 0, "samples": 5, "seeds_pooled": 1}


def test_bootstrap_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="of one shape"):
        paired_bootstrap_ci(np.ones(4, bool), np.ones(5, bool))


def test_seed_summary():
    assert seed_summary([0.5, 0.7, 0.6]) == pytest.approx({"mean": 0.6, "std": 0.1})
    assert seed_summary([0.7]) == {"mean": 0.7, "std": None}
    with pytest.raises(ValueError):
        seed_summary([])
