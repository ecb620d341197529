"""Mixed precision, ``runtime.amp``: false (the default) trains in float32; true runs every
training step's forward and loss under autocast, the loss terms in float32; evaluation stays
float32. The training loop (:func:`vskd.loop.fit`) makes one :class:`Amp` per run.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn as nn

# Instruction sets of torch.backends.cpu.get_cpu_capability() below which a CPU has no
# bfloat16 arithmetic (AVX512_BF16 and AMX come only with AVX-512 CPUs).
NO_BF16_CAPABILITIES = ("DEFAULT", "VSX", "ZVECTOR", "AVX", "AVX2")


class Amp:
    """``runtime.amp``: the forward and loss of every training step under autocast.

    CPU: bfloat16, CPU autocast's own default (fast only where the CPU has bfloat16
    instructions, e.g. AVX-512 BF16 or AMX; elsewhere it can be slower than float32, and it
    still halves the activations kept for backward). CUDA: bfloat16 where the GPU has it
    (Ampere and later): it keeps float32's exponent range, so gradients need no loss scaling
    (no GradScaler, no skipped steps) and the small distillation terms (alpha = 0.01 KD,
    RKD) cannot underflow, at the speed of float16 on those GPUs; older GPUs get float16
    with a GradScaler. Parameters, optimiser state and evaluation stay float32, and the loss
    terms are computed in float32 (:func:`vskd.losses.float32_loss`).
    """

    def __init__(self, device: torch.device):
        self.device_type = device.type
        bf16 = device.type != "cuda" or torch.cuda.is_bf16_supported()
        self.dtype = torch.bfloat16 if bf16 else torch.float16
        self.scaler = None if bf16 else torch.amp.GradScaler("cuda")
        if device.type == "cpu":
            warn_if_cpu_lacks_bf16(torch.backends.cpu.get_cpu_capability())

    def autocast(self):
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward_and_step(self, loss, model: nn.Module, optimizer, max_grad_norm) -> None:
        """Backward, gradient clipping on the true (unscaled) gradients, optimiser step."""
        if self.scaler is None:
            loss.backward()
            if max_grad_norm:
                nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
            optimizer.step()
            return
        self.scaler.scale(loss).backward()
        if max_grad_norm:
            self.scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        self.scaler.step(optimizer)  # skipped when the scaled gradients overflowed
        self.scaler.update()


def warn_if_cpu_lacks_bf16(capability: str) -> None:
    """bfloat16 autocast on a CPU without bfloat16 instructions runs emulated kernels:
    measured on a 2-core AVX2 CPU, the default student's epochs took about 12x longer than
    float32's (docs/reproducing-tables.md)."""
    if capability in NO_BF16_CAPABILITIES:
        warnings.warn(f"runtime.amp: this CPU's instruction set is {capability}, without bfloat16 "
                      "arithmetic; bfloat16 autocast is emulated and much slower than float32 here "
                      "(about 12x measured on AVX2). Set runtime.amp: false on this machine.",
                      RuntimeWarning, stacklevel=3)
