"""GPU hours per paper table, estimated from counted work, not measured on a GPU.

    python -m benchmarks.gpu_estimate                  # at 50 TFLOP/s sustained
    python -m benchmarks.gpu_estimate --tflops 25 --seeds 3

How: the MACs of one forward pass at the paper's sizes are counted on the real models
(``vskd.cost.count_macs``: TRN on BN-Inception over 8 x 224 px frames, 3 for MMAct;
ResNet18 and VGG16 on a 224 px GAF). A training step costs about 3 forward passes (forward,
then backward through activations and weights), 2 FLOP per MAC. Each table's FLOPs are
then the training samples x epochs of its teachers and students (the preset's runs;
DVC reuses a teacher across runs that share it) plus one forward pass of the teacher over
every clip (its stored outputs). Divided by a sustained rate (``--tflops``), that is the
GPU time of the arithmetic alone; data loading, evaluation and start-up are left out, so
read it as a lower bound.

The same count checks itself against this machine's CPU: ``python -m benchmarks.paper_scale``
measured 2.40 s per teacher step and 0.30 s per student step at batch 2 (224 px), which this
model of the work turns into the CPU's sustained rate (printed), to be compared with the
rate assumed for the GPU.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import torch

from vskd.cost import count_macs, torch_threads

# Training recordings per run (REFERENCE facts on each dataset; MMAct's is an upper bound:
# 37 actions x 20 subjects x 4 scenes x 5 sessions for one camera, 80 % of it in training for
# either split) and every clip the teacher's stored outputs cover.
CPU_STEP_S = {"teacher": 2.40, "student": 0.30}   # python -m benchmarks.paper_scale, batch 2


@dataclass(frozen=True)
class Table:
    name: str
    train: int          # training recordings of one run
    clips: int          # every recording (the teacher's stored outputs)
    segments: int
    teachers: int       # distinct teachers (a new split retrains it; a new sensor does not)
    students: dict      # arch -> students trained per seed (baselines and distilled)


TABLES = (
    Table("Table 1, UTD-MHAD", 432, 861, 8, 1, {"resnet18": 2}),
    Table("Table 2, Berkeley-MHAD (6 accelerometers)", 385, 659, 8, 1, {"resnet18": 12}),
    Table("Table 3, MMAct (2 splits x 2 devices, upper bound)", 11840, 14800, 3, 2, {"resnet18": 8}),
    Table("Table 4, UTD-MHAD ablation (Table 1's teacher)", 432, 0, 8, 0, {"resnet18": 8, "vgg16": 2}),
)


def forward_macs() -> dict[str, int]:
    """MACs of one sample's forward pass at the paper's sizes (27 classes, D = 256)."""
    from vskd.models.student import GAFStudent
    from vskd.models.trn import TRNTeacher

    with torch_threads(1), torch.no_grad():
        teacher = TRNTeacher(num_classes=27, num_segments=8, img_feature_dim=256).eval()
        out = {"teacher_8": count_macs(teacher, torch.rand(1, 8, 3, 224, 224))}
        for arch in ("resnet18", "vgg16"):
            out[arch] = count_macs(GAFStudent(27, 256, arch=arch).eval(), torch.rand(1, 3, 224, 224))
    return out


def table_flops(table: Table, macs: dict, epochs: int, seeds: int) -> float:
    per_clip = macs["teacher_8"] * table.segments / 8  # the backbone dominates: per frame
    teacher = table.teachers * (3 * epochs * table.train + table.clips) * per_clip
    students = sum(3 * epochs * table.train * n * seeds * macs[arch] for arch, n in table.students.items())
    return 2.0 * (teacher + students)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tflops", type=float, default=50.0, help="sustained GPU rate, TFLOP/s (default 50)")
    parser.add_argument("--epochs", type=int, default=100, help="epochs of every training (paper: 100)")
    parser.add_argument("--seeds", type=int, default=1, help="student seeds per run (default 1)")
    args = parser.parse_args(argv)
    macs = forward_macs()
    print("forward GMAC per sample: " + ", ".join(f"{k} {v / 1e9:.2f}" for k, v in macs.items()))
    cpu = {stage: 2 * 3 * 2 * macs[key] / CPU_STEP_S[stage] for stage, key in (("teacher", "teacher_8"),
                                                                               ("student", "resnet18"))}
    for stage, rate in cpu.items():
        print(f"this CPU, {stage} step at batch 2: {rate / 1e9:.0f} GFLOP/s sustained")
    cpu_rate = min(cpu.values())
    print(f"\n| table | PFLOP | GPU hours at {args.tflops:g} TFLOP/s | this CPU at {cpu_rate / 1e9:.0f} GFLOP/s, "
          "days |\n|---|---|---|---|")
    for table in TABLES:
        flops = table_flops(table, macs, args.epochs, args.seeds)
        print(f"| {table.name} | {flops / 1e15:.1f} | {flops / (args.tflops * 1e12) / 3600:.2f} "
              f"| {flops / cpu_rate / 86400:.1f} |")


if __name__ == "__main__":
    main()
