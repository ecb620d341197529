"""One training step of the teacher and the student: float32 or bfloat16 autocast, contiguous or
channels-last (``runtime.amp``, ``runtime.channels_last``), on this machine.

    python -m benchmarks.memory_format                 # torch's default thread count
    OMP_NUM_THREADS=1 python -m benchmarks.memory_format --threads 1

The step is the stages' own (:class:`vskd.runtime.Runtime` wraps the model and reorders the
inputs; :func:`vskd.loop.train_batch` runs it, under :class:`vskd.amp.Amp`), on random inputs of the dev protocol's sizes: the
teacher on 8 clips of 8 frames at 56 px, the student on 16 GAF images at 48 px. The four
variants run interleaved, round by round, and each reports its median seconds per step and
its speed-up over float32 contiguous. Bfloat16 is fast only on CPUs with bfloat16
instructions (AVX512_BF16, AMX) and on recent GPUs (vskd/amp.py warns elsewhere).
"""

from __future__ import annotations

import statistics

import torch

from benchmarks.common import interleave_per_call, step_benchmark_args, write_step_results
from vskd.amp import Amp
from vskd.runtime import Runtime

VARIANTS = ((False, False), (True, False), (False, True), (True, True))  # (amp, channels_last)


def models_and_batches(seed: int = 0) -> dict:
    """The teacher (TRN on BN-Inception) and the student (ResNet18 with its fc0 head), each with
    one random batch of the dev protocol's sizes."""
    from vskd.models.student import GAFStudent
    from vskd.models.trn import TRNTeacher

    torch.manual_seed(seed)
    return {"teacher": (TRNTeacher(27, 8, 256, 0.5), torch.rand(8, 8, 3, 56, 56) * 255, torch.randint(0, 27, (8,))),
            "student": (GAFStudent(27, 256), torch.rand(16, 3, 48, 48) * 2 - 1, torch.randint(0, 27, (16,)))}


def make_step(model, x, y, amp: bool, channels_last: bool):
    """A closure running one optimiser step of a copy of ``model`` (``step.net``) as the
    training loop does."""
    import copy

    from vskd.loop import make_adam, train_batch

    rt = Runtime(amp=amp, channels_last=channels_last)
    net = rt.wrap(copy.deepcopy(model))
    opt = make_adam(net.parameters(), 1e-3, 0.0, decoupled=True)  # the stages' optimiser
    autocast = Amp(rt.device) if amp else None
    net.train()

    def forward(batch):
        inputs, target = batch
        logits = net(inputs)
        return torch.nn.functional.cross_entropy(logits.float(), target), {}, logits, target

    def step():
        train_batch(net, forward, rt.inputs((x, y)), opt, None, autocast)
    step.net = net
    return step


def bench(rounds: int, steps: int) -> dict:
    results = {}
    for name, (model, x, y) in models_and_batches().items():
        runs = {v: make_step(model, x, y, *v) for v in VARIANTS}
        for run in runs.values():
            run()                                   # warm-up: allocations, oneDNN kernel choice
        times = interleave_per_call(runs, rounds, steps)
        base = statistics.median(times[(False, False)])
        results[name] = [{"amp": a, "channels_last": c, "seconds_per_step": statistics.median(times[(a, c)]),
                          "speedup": base / statistics.median(times[(a, c)])} for a, c in VARIANTS]
    return results


def main(argv=None) -> None:
    args = step_benchmark_args(__doc__.splitlines()[0], 3, argv)
    results = bench(args.rounds, args.steps)
    cpu = torch.backends.cpu.get_cpu_capability()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU {cpu}")
    print("| model | amp | channels_last | s / step | speed-up |\n|---|---|---|---|---|")
    for name, rows in results.items():
        for r in rows:
            print(f"| {name} | {r['amp']} | {r['channels_last']} | {r['seconds_per_step']:.3f} | {r['speedup']:.2f}x |")
    if args.out:
        write_step_results(args.out, results)


if __name__ == "__main__":
    main()
