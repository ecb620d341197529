"""runtime.amp: training steps under autocast (bfloat16 on CPU), loss terms in float32,
parameters float32; with amp off the loop is the plain float32 one, bit for bit."""

import copy
import hashlib
import json
import math
import warnings

import pytest
import torch
import torch.nn.functional as F
import yaml

from tests.conftest import REPO
from vskd.amp import Amp, warn_if_cpu_lacks_bf16
from vskd.cost import torch_threads
from vskd.loaders import make_loader, set_loader_epoch
from vskd.loop import cross_entropy_step, fit
from vskd.losses import at_loss, dask_loss, distill_inputs
from vskd.models.student import GAFStudent
from vskd.params import ParamsError, validate
from vskd.resume import ResumeFile
from vskd.runtime import Runtime, start_runtime

CLASSES, DIM, SIZE = 3, 8, 16


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    with torch_threads(1):
        yield


def _data(n=8):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 3, SIZE, SIZE, generator=g) * 2 - 1
    return torch.utils.data.TensorDataset(x, torch.arange(n) % CLASSES, torch.randn(n, CLASSES, generator=g),
                                          torch.rand(n, DIM, generator=g), torch.rand(n, 2, 2, generator=g),
                                          torch.arange(n))


def _step(model, method, seen):
    """The student's, the DASK or the AT step of train_student, recording what autocast made."""
    ce = cross_entropy_step(model)
    loss = {"dask": dask_loss(0.5, 1.0, 1.0, 4.0), "at": at_loss(1000.0)}.get(method)

    def step(batch):
        x, y, t_logits, t_feature, t_map, row = batch
        if loss is None:
            out = ce((x, y, row))
        else:
            h, maps = model.features_and_maps(x)
            logits = model.head(h)
            total, terms = loss(distill_inputs(loss, student_logits=logits, student_feature=h,
                                               teacher_logits=t_logits, teacher_feature=t_feature, target=y,
                                               student_maps=maps[-1:], teacher_maps=[t_map]))
            out = (total, terms, logits.detach(), y)
        seen.append((out[2].dtype, out[0].dtype, {k: v.dtype for k, v in out[1].items()}))
        return out
    return step


@pytest.mark.parametrize("method", ["ce", "dask", "at"])
def test_amp_steps_on_cpu_are_bfloat16_inside_float32_outside(method):
    torch.manual_seed(0)
    model = GAFStudent(CLASSES, DIM)
    loader = make_loader(_data(), 4, shuffle=True, seed=0, drop_last=True)
    seen = []
    result = fit(model, _step(model, method, seen), lambda: {}, loader, torch.optim.Adam(model.parameters(), 1e-3),
                 2, None, runtime=Runtime(amp=True))
    assert len(seen) == 4                                           # 2 epochs x 2 batches
    for logits_dtype, loss_dtype, term_dtypes in seen:
        assert logits_dtype == torch.bfloat16                       # the forward ran under autocast
        assert loss_dtype == torch.float32                          # the loss did not
        assert set(term_dtypes.values()) == {torch.float32}
    for record in result.history:
        assert all(math.isfinite(v) for v in record.values())
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(v.dtype == torch.float32 for v in result.state_dict.values() if v.is_floating_point())


def test_loss_terms_under_autocast_are_the_float32_terms_exactly():
    """Under autocast each term runs on float32 copies of its inputs with autocast off: the
    same numbers as the float32 loss of those inputs, not a bfloat16 softmax or matmul."""
    g = torch.Generator().manual_seed(1)
    s_logits, t_logits = (torch.randn(6, CLASSES, generator=g).bfloat16() for _ in range(2))
    s_feature = torch.randn(6, DIM, generator=g).bfloat16()
    t_feature = torch.randn(6, DIM, generator=g)
    y = torch.arange(6) % CLASSES
    loss = dask_loss(0.5, 1.0, 1.0, 4.0)
    args = dict(student_logits=s_logits, student_feature=s_feature, teacher_logits=t_logits,
                teacher_feature=t_feature, target=y)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        total, terms = loss(distill_inputs(loss, **args))
    expected_total, expected = loss(distill_inputs(loss, **{k: v.float() if v.is_floating_point() else v
                                                            for k, v in args.items()}))
    assert total.dtype == torch.float32 and torch.equal(total, expected_total)
    assert all(torch.equal(terms[k], expected[k]) for k in expected)


def test_amp_off_is_the_plain_float32_loop_bit_for_bit():
    def run(use_fit):
        torch.manual_seed(0)
        model = GAFStudent(CLASSES, DIM)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        loader = make_loader(_data(), 4, shuffle=True, seed=0, drop_last=True)
        if use_fit:
            step = cross_entropy_step(model)
            fit(model, lambda b: step(b[:2] + b[-1:]), lambda: {}, loader, optimizer, 1, None,
                max_grad_norm=1.0, runtime=Runtime(amp=False))
            return model.state_dict()
        set_loader_epoch(loader, 0, 1)
        model.train()
        for x, y, *_ in loader:
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
        return model.state_dict()

    got, expected = run(True), run(False)
    assert all(torch.equal(got[k], expected[k]) for k in expected)


def test_amp_dtype_choice(monkeypatch):
    cpu = Amp(torch.device("cpu"))
    assert (cpu.dtype, cpu.scaler) == (torch.bfloat16, None)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert (Amp(torch.device("cuda")).dtype, Amp(torch.device("cuda")).scaler) == (torch.bfloat16, None)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    with warnings.catch_warnings():  # without CUDA, GradScaler warns that it disables itself
        warnings.simplefilter("ignore")
        old_gpu = Amp(torch.device("cuda"))
    assert old_gpu.dtype == torch.float16 and isinstance(old_gpu.scaler, torch.amp.GradScaler)


def test_scaled_step_clips_and_steps_on_the_true_gradients():
    """The float16 path (GradScaler, run here with a CPU scaler): unscaled before clipping,
    so with a power-of-two scale the step is exactly the unscaled one."""
    def one_step(scaler):
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 2)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        amp = Amp(torch.device("cpu"))
        amp.scaler = scaler
        loss = model(torch.ones(3, 4)).pow(2).sum() * 100
        amp.backward_and_step(loss, model, optimizer, max_grad_norm=0.5)
        return model.weight.detach().clone()

    assert torch.equal(one_step(torch.amp.GradScaler("cpu", init_scale=2.0 ** 10)), one_step(None))


def test_resume_fingerprint_unchanged_without_amp_and_changed_with_it():
    config = {"cfg": {"lr": 0.1}, "seed": 0}
    old = hashlib.sha256(json.dumps({**config, "stage": "student", "world_size": 1, "device": "cpu"},
                                    sort_keys=True, default=str).encode()).hexdigest()
    assert ResumeFile("m/student.pt", "student", config, Runtime(amp=False)).fingerprint == old
    assert ResumeFile("m/student.pt", "student", config, Runtime(amp=True)).fingerprint != old


def test_runtime_amp_is_read_and_validated():
    assert start_runtime({"device": "cpu", "amp": True}).amp is True
    assert start_runtime({"device": "cpu"}).amp is False
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    assert params["runtime"]["amp"] is False
    bad = copy.deepcopy(params)
    bad["runtime"]["amp"] = "yes"
    with pytest.raises(ParamsError, match="'runtime.amp' must be true .* or false, got 'yes'"):
        validate(bad, "params.yaml")


def test_amp_on_a_cpu_without_bfloat16_says_so():
    with pytest.warns(RuntimeWarning, match="instruction set is AVX2, without bfloat16"):
        warn_if_cpu_lacks_bf16("AVX2")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_cpu_lacks_bf16("AVX512")  # may have AVX512_BF16 or AMX: no warning
