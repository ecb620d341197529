"""Training throughput on a GPU with mixed precision against without."""

from __future__ import annotations

import torch

from benchmarks.common import Row, clock, not_measured, r3


def gpu_throughput(device: torch.device, image_size: int = 224, segments: int = 8, teacher_batch: int = 16,
                   student_batch: int = 64, steps: int = 20, warmup: int = 5, num_classes: int = 10,
                   feature_dim: int = 256) -> list[dict]:
    """Training samples per second of teacher and student at ``image_size``, fp32 and AMP
    (autocast float16 with a GradScaler on CUDA; bfloat16 elsewhere), random inputs."""
    import torch.nn.functional as F

    from vskd.models.student import GAFStudent
    from vskd.models.trn import TRNTeacher

    out = []
    for name, batch in (("teacher", teacher_batch), ("student", student_batch)):
        for amp in (False, True):
            torch.manual_seed(0)
            if name == "teacher":
                model = TRNTeacher(num_classes, segments, img_feature_dim=feature_dim).to(device)
                x = torch.rand(batch, segments, 3, image_size, image_size, device=device) * 255
            else:
                model = GAFStudent(num_classes, feature_dim).to(device)
                x = torch.rand(batch, 3, image_size, image_size, device=device) * 2 - 1
            y = torch.randint(0, num_classes, (batch,), device=device)
            model.train()
            opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
            dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
            scaler = torch.amp.GradScaler(device.type, enabled=amp and device.type == "cuda")

            def one():
                with torch.autocast(device.type, dtype=dtype, enabled=amp):
                    loss = F.cross_entropy(model(x), y)
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()

            for _ in range(warmup):
                one()
            seconds = clock(lambda: [one() for _ in range(steps)])[0]
            out.append({"model": name, "amp": amp, "batch": batch, "image_size": image_size,
                        "segments": segments if name == "teacher" else None,
                        "samples_per_s": batch * steps / seconds})
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return out


def gpu_rows(args) -> list[Row]:
    figure = "{}: training throughput with mixed precision / without, on GPU at {} px{}"
    shapes = (("teacher", ", 8 segments, batch 16"), ("student", ", batch 64"))
    if not torch.cuda.is_available():
        return [not_measured(f"gpu_{m}_amp", figure.format(m, 224, s), "no GPU") for m, s in shapes]
    results = gpu_throughput(torch.device("cuda"), args.gpu_image_size, args.gpu_segments, args.gpu_teacher_batch,
                             args.gpu_student_batch)
    rows = []
    for model in ("teacher", "student"):
        fp32, amp = (next(r for r in results if r["model"] == model and r["amp"] == a) for a in (False, True))
        shape = (f", {args.gpu_segments} segments, batch {args.gpu_teacher_batch}" if model == "teacher"
                 else f", batch {args.gpu_student_batch}")
        rows.append(Row(f"gpu_{model}_amp", figure.format(model, args.gpu_image_size, shape),
                        r3(amp["samples_per_s"] / fp32["samples_per_s"]),
                        note=f"{fp32['samples_per_s']:.0f} samples/s fp32, {amp['samples_per_s']:.0f} with AMP "
                             f"({torch.cuda.get_device_name()})",
                        details={"fp32": fp32, "amp": amp}))
    return rows

