"""vskd.minirocket: the reference classifier leaves the process's torch threads as it found them."""

import numpy as np
import torch

from vskd.minirocket import fit_predict, to_panel


def test_fit_predict_keeps_torch_thread_count():
    # aeon resets numba's OpenMP thread count after a fit, and torch shares that OpenMP
    # runtime: without the restore, a process run with one thread came back with two.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 3, 40))
    x[6:, 0] += np.sin(np.linspace(0, 6, 40))          # class 1 carries a wave on axis 0
    y = np.array([0] * 6 + [1] * 6)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        predictions = fit_predict(x, y, x, seed=0, n_kernels=84, max_dilations_per_kernel=8)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert predictions.dtype == np.int64 and (predictions == y).mean() == 1.0  # separable, refitted


def test_to_panel_resamples_every_recording_to_one_length():
    three_samples = np.array([[0.0, 0.0, 1.0], [2.0, 2.0, 3.0], [4.0, 4.0, 5.0]])   # (time, axes)
    panel = to_panel([three_samples, np.ones((5, 3))], 5)
    assert panel.shape == (2, 3, 5)
    np.testing.assert_allclose(panel[0, 0], [0, 1, 2, 3, 4])   # 0, 2, 4 stretched to 5 points
    np.testing.assert_allclose(panel[1], np.ones((3, 5)))
