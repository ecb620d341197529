"""The optimiser step alone on the teacher's and the student's parameters: PyTorch's
single-tensor Adam (its CPU default), ``foreach`` and ``fused`` (what :func:`vskd.loop.make_adam`
picks), on this machine.

    python -m benchmarks.optimiser_step               # torch's default thread count

Gradients are filled once with random values; the variants then step interleaved, round by
round, and each reports its median milliseconds per step. The optimiser is the stages' own:
AdamW for the teacher (TRN on BN-Inception), Adam for the student (ResNet18 with fc0).
"""

from __future__ import annotations

import statistics

import torch

from benchmarks.common import interleave_per_call, step_benchmark_args, write_step_results
from benchmarks.memory_format import models_and_batches

VARIANTS = ("single_tensor", "foreach", "fused")
OPTIMISERS = {"teacher": torch.optim.AdamW, "student": torch.optim.Adam}


def make_optimiser(params, kind, variant: str) -> torch.optim.Optimizer:
    flags = {"single_tensor": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}
    return kind(params, lr=1e-3, weight_decay=5e-4, **flags[variant])


def bench(rounds: int, steps: int) -> dict:
    results = {}
    for name, (model, _, _) in models_and_batches().items():
        params = [p for p in model.parameters() if p.requires_grad]
        for p in params:
            p.grad = torch.randn_like(p) * 1e-3
        opts = {v: make_optimiser(params, OPTIMISERS[name], v) for v in VARIANTS}
        for opt in opts.values():
            opt.step()                              # warm-up: the moment buffers exist
        times = interleave_per_call({v: opt.step for v, opt in opts.items()}, rounds, steps)
        results[name] = {"parameters": sum(p.numel() for p in params), "tensors": len(params),
                         "ms_per_step": {v: 1e3 * statistics.median(times[v]) for v in VARIANTS}}
    return results


def main(argv=None) -> None:
    args = step_benchmark_args(__doc__.splitlines()[0], 10, argv)
    results = bench(args.rounds, args.steps)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
          f"CPU {torch.backends.cpu.get_cpu_capability()}")
    print("| model | parameters | tensors | " + " | ".join(f"{v} ms" for v in VARIANTS) + " |")
    print("|---|---|---|" + "---|" * len(VARIANTS))
    for name, r in results.items():
        ms = " | ".join(f"{r['ms_per_step'][v]:.1f}" for v in VARIANTS)
        print(f"| {name} | {r['parameters']:,} | {r['tensors']} | {ms} |")
    if args.out:
        write_step_results(args.out, results)


if __name__ == "__main__":
    main()
