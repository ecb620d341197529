"""Video frames: PyAV decoding, TSN segment sampling, clip augmentation, the clip dataset.

The frames stage decodes every video once, resizes it so its short side is
``frames.short_side`` pixels, and stores all frames as uint8 in ``frames.h5`` (one dataset
per sample id, chunked per frame so a clip read touches only its S frames). Segment
sampling happens at load time, as in TSN (Wang et al., ECCV 2016):

* training: the video is cut into S equal segments and one random frame is taken in each;
  the whole clip gets one multi-scale crop (scales 1, .875, .75, .66 of the short side,
  neighbouring scales for width and height) resized to the input size, optionally a
  horizontal flip, and optionally one random rotation and stretch (``vskd/clip_affine.py``);
  a drawn skeleton video's clip can instead be drawn again from the stored joints, the camera
  turned at random (``teacher.view_jitter``, ``vskd/datasets/skeleton_video.py``);
* evaluation: each segment's centre frame, centre crop. Deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable

import av
from av.video.reformatter import VideoReformatter
import h5py
import numpy as np
import torch
import torch.nn.functional as F

from vskd.clip_affine import apply_affine, draw_affine
from vskd.h5store import read_index

TSN_SCALES = (1.0, 0.875, 0.75, 0.66)


class VideoError(ValueError):
    """A video that cannot be used; the message names the file and what to do."""


def resized_shape(height: int, width: int, short_side: int) -> tuple[int, int]:
    if height <= width:
        return short_side, max(short_side, round(width * short_side / height))
    return max(short_side, round(height * short_side / width)), short_side


def decode_video(path: str | Path, short_side: int) -> np.ndarray:
    """All frames of a video as (T, H, W, 3) uint8 RGB, short side resized to ``short_side``.

    Resizing happens in libswscale (area averaging), inside the decode loop, so full-size
    frames are never held as numpy arrays.
    """
    path = Path(path)
    frames = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError(f"{path}: no video stream. Replace the file.")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"  # frame + slice threads; decoding is the hot path
            out_hw = None
            # One reformatter for the whole video: frame.reformat builds a new libswscale
            # context per frame, which cost most of the decode time (benchmarks/run.py).
            reformatter = VideoReformatter()
            for frame in container.decode(stream):
                if out_hw is None:
                    out_hw = resized_shape(frame.height, frame.width, short_side)
                rgb = reformatter.reformat(frame, width=out_hw[1], height=out_hw[0], format="rgb24",
                                           interpolation="AREA")
                frames.append(rgb.to_ndarray())
    except VideoError:
        raise
    except (av.error.FFmpegError, OSError) as exc:
        raise VideoError(f"{path}: cannot be decoded ({exc}). The file is corrupt or "
                         "truncated: download it again.") from exc
    if not frames:
        raise VideoError(f"{path}: decodes to 0 frames. The file is empty or corrupt: download it again.")
    return np.stack(frames)


def write_video(path: str | Path, frames: np.ndarray, fps: float, lossless: bool = False) -> None:
    """(T, H, W, 3) uint8 RGB -> an .avi at ``fps``.

    Default: MPEG-4, as UTD-MHAD ships its videos, the quantiser held at 2-4 (near lossless)
    so thin limbs survive. ``lossless``: FFV1 in RGB, decoded back bit for bit (drawn
    skeletons: MPEG-4's 4:2:0 chroma smears thin saturated lines by ~57 levels per channel).
    One encoder thread keeps the bitstream byte-identical from run to run."""
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), "w", format="avi") as container:
        stream = container.add_stream("ffv1" if lossless else "mpeg4", rate=rate)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        if lossless:
            stream.pix_fmt = "bgr0"
        else:
            stream.pix_fmt = "yuv420p"
            stream.bit_rate = 2_000_000
            stream.options = {"qmin": "2", "qmax": "4"}
        stream.codec_context.thread_count = 1
        for img in frames:
            for pkt in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(pkt)
        for pkt in stream.encode():
            container.mux(pkt)


def segment_indices(num_frames: int, num_segments: int, train: bool,
                    rng: np.random.Generator | None = None) -> np.ndarray:
    """TSN sampling: one frame index per segment, strictly increasing.

    Needs at least one frame per segment; TSN silently repeats frame 0 for short videos,
    which hides broken data, so a short video is an error here.
    """
    if num_frames < num_segments:
        raise VideoError(f"video has {num_frames} frames, fewer than the {num_segments} segments")
    if train:
        if rng is None:
            raise ValueError("training sampling needs an rng")
        length = num_frames // num_segments
        return np.arange(num_segments) * length + rng.integers(0, length, size=num_segments)
    tick = num_frames / num_segments
    return (tick / 2.0 + tick * np.arange(num_segments)).astype(np.int64)


def multiscale_crop_box(height: int, width: int, input_size: int, scales=TSN_SCALES,
                        rng: np.random.Generator | None = None, max_distort: int = 1):
    """TSN's GroupMultiScaleCrop box as (top, left, crop_h, crop_w).

    Crop sides are scale * short side (snapped to input_size within 3 px); width and height
    use scales at most ``max_distort`` apart; the offset is one of 13 fixed grid positions
    (corners, centre, edge midpoints, quarter points).
    """
    base = min(height, width)
    sizes = [int(base * s) for s in scales]
    snap = [input_size if abs(s - input_size) < 3 else s for s in sizes]
    pairs = [(h, w) for i, h in enumerate(snap) for j, w in enumerate(snap) if abs(i - j) <= max_distort]
    crop_h, crop_w = pairs[rng.integers(len(pairs))]
    h_step, w_step = (height - crop_h) // 4, (width - crop_w) // 4
    grid = [(0, 0), (0, 4), (4, 0), (4, 4), (2, 2), (2, 0), (2, 4), (4, 2), (0, 2),
            (1, 1), (1, 3), (3, 1), (3, 3)]
    gy, gx = grid[rng.integers(len(grid))]
    return gy * h_step, gx * w_step, crop_h, crop_w


def center_crop_box(height: int, width: int, size: int):
    return (height - size) // 2, (width - size) // 2, size, size


def clip_to_tensor(frames: np.ndarray, box, input_size: int, flip: bool) -> torch.Tensor:
    """(S, H, W, 3) uint8 -> (S, 3, input_size, input_size) float RGB in 0..255."""
    top, left, ch, cw = box
    clip = torch.from_numpy(np.ascontiguousarray(frames[:, top:top + ch, left:left + cw]))
    clip = clip.permute(0, 3, 1, 2).float()
    if (ch, cw) != (input_size, input_size):
        clip = F.interpolate(clip, size=(input_size, input_size), mode="bilinear",
                             align_corners=False, antialias=True)
    if flip:
        clip = clip.flip(-1)
    return clip


class ClipDataset(torch.utils.data.Dataset):
    """Clips of S frames from ``frames.h5`` for the rows given, with their labels.

    Randomness comes from ``(seed, epoch, row)`` alone, so a clip does not depend on the
    number of DataLoader workers or the order they run in; call ``set_epoch`` each epoch.
    """

    def __init__(self, path: str | Path, rows: np.ndarray, num_segments: int, input_size: int,
                 train: bool, scales=TSN_SCALES, flip: bool = False, seed: int = 0,
                 affine: dict | None = None, view_jitter: dict | None = None):
        self.path = Path(path)
        self.rows = np.asarray(rows)
        self.num_segments, self.input_size = num_segments, input_size
        self.train, self.scales, self.flip, self.seed = train, tuple(scales), flip, seed
        affine, view_jitter = affine or {}, view_jitter or {}
        self.rotate_deg, self.stretch = float(affine.get("rotate_deg", 0)), float(affine.get("stretch", 0))
        self.yaw_jitter, self.pitch_jitter = float(view_jitter.get("yaw_deg", 0)), float(view_jitter.get("pitch_deg", 0))
        self.epoch = 0
        with h5py.File(self.path, "r") as h5:
            index = read_index(h5)
            self.lengths = h5["lengths"][()].astype(np.int64)
            self.drawing = _drawing(h5, self.path) if train and self.redraws else None
        self.ids, self.labels = index["ids"], index["labels"]
        self._h5 = None  # opened lazily: an h5py handle must not cross a fork

    @property
    def redraws(self) -> bool:
        return self.yaw_jitter > 0 or self.pitch_jitter > 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int):
        if self._h5 is None:
            self._h5 = h5py.File(self.path, "r")
        row = int(self.rows[i])
        sample_id = self.ids[row]
        rng = np.random.default_rng((self.seed, self.epoch, row)) if self.train else None
        try:
            idx = segment_indices(int(self.lengths[row]), self.num_segments, self.train, rng)
        except VideoError as exc:
            raise VideoError(f"{self.path} sample {sample_id}: {exc}") from None
        video = self._h5["frames"][sample_id]
        h, w = video.shape[1:3]
        affine = view = None
        if self.train:
            box = multiscale_crop_box(h, w, self.input_size, self.scales, rng)
            flip = self.flip and bool(rng.integers(2))
            # drawn in this order, each only when on: turning one on leaves the others' draws as they were
            if self.rotate_deg > 0 or self.stretch > 0:
                affine = draw_affine(rng, self.rotate_deg, self.stretch)
            if self.redraws:
                view = rng.uniform(-1, 1, 2) * (self.yaw_jitter, self.pitch_jitter)
        else:
            box, flip = center_crop_box(h, w, self.input_size), False
        if view is None:
            # One read per frame: h5py's fancy indexing (ds[idx]) is about 25x slower per clip.
            frames = np.stack([video[int(t)] for t in idx])
        else:
            frames = self._redraw(sample_id, idx, view, (h, w))
        clip = clip_to_tensor(frames, box, self.input_size, flip)
        if affine is not None:
            clip = apply_affine(clip, *affine)
        # Contiguous, as a loader worker's batch is (it is collated into fresh shared memory):
        # the permuted frames' strides would send the first convolution down another kernel,
        # which rounds differently, and the teacher would depend on teacher.num_workers.
        return clip.contiguous(), int(self.labels[row]), row

    def _redraw(self, sample_id: str, idx, view, out_hw) -> np.ndarray:
        """The clip's frames drawn again from the trial's joints, the camera turned by ``view``
        (yaw, pitch degrees): ``teacher.view_jitter``."""
        from vskd.datasets.skeleton_video import redraw_clip

        joints = self._h5["skeleton"][sample_id]
        return redraw_clip(joints[()], float(joints.attrs["fps"]), self.drawing, idx, float(view[0]),
                           float(view[1]), out_hw)


def _drawing(h5: h5py.File, path: Path) -> dict:
    """The drawing settings stored beside the joints, or an error saying how to get them."""
    import json

    if "skeleton" not in h5:
        raise VideoError(f"{path}: teacher.view_jitter draws training clips again from the Kinect "
                         "joints, and this store holds none. It needs utd_mhad.video.source: skeleton "
                         "and a frames store built since the joints are kept: delete the store and its "
                         "raw/ folder and rebuild them, or set teacher.view_jitter to 0.")
    return json.loads(h5["skeleton"].attrs["drawing"])


def _read_ahead(items, read, workers: int | None):
    """Yield ``(item, read(item))`` in order, reading up to ``2 * workers`` items ahead in
    threads. A ValueError/OSError from ``read`` is yielded in place of the result, so the
    caller decides (stop or skip) exactly as if it had read the item itself."""
    import os
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    workers = workers or min(2, os.cpu_count() or 1)

    def guarded(item):
        try:
            return read(item)
        except (ValueError, OSError) as exc:
            return exc

    if workers <= 1:
        for item in items:
            yield item, guarded(item)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="decode") as pool:
        pending = deque()
        for item in items:
            pending.append((item, pool.submit(guarded, item)))
            if len(pending) >= 2 * workers:
                first, fut = pending.popleft()
                yield first, fut.result()
        while pending:
            first, fut = pending.popleft()
            yield first, fut.result()


@dataclass(frozen=True)
class SkeletonSource:
    """Where a drawn video's joints come from: ``read(sample) -> ((T, 20, 3) joints, fps)``,
    and the settings they were drawn with (``SkeletonVideo/drawing.json``)."""
    read: Callable
    drawing: dict


def _store_skeleton(h5: h5py.File, sample, skeletons: SkeletonSource) -> None:
    import json

    if "skeleton" not in h5:
        h5.create_group("skeleton").attrs["drawing"] = json.dumps(skeletons.drawing, sort_keys=True)
    joints, fps = skeletons.read(sample)
    h5["skeleton"].create_dataset(sample.id, data=np.asarray(joints, np.float64)).attrs["fps"] = float(fps)


def build_frames_store(samples, out_path: str | Path, short_side: int, class_names: list[str],
                       dataset: str, progress=lambda it, **kw: it, read_video=decode_video,
                       on_bad_sample: str = "error", workers: int | None = None,
                       skeletons: SkeletonSource | None = None) -> dict:
    """Decode every sample's video into ``out_path`` (atomically). Returns a summary.

    ``workers`` videos are decoded at once in threads (PyAV releases the GIL while it
    decodes and scales; default: 2, or 1 on a one-core machine), at most ``2 * workers``
    ahead of the writer, in order, so memory stays a few videos whatever the data set.

    ``read_video(path, short_side)`` gives (T, H, W, 3) uint8 frames: ``decode_video`` for
    video files; a dataset adapter passes its own reader (Berkeley-MHAD's PGM folders).
    A video that cannot be read stops the stage, or with ``on_bad_sample="skip"`` is left
    out, counted (``skipped``) and recorded in the store's ``skipped`` attribute.

    ``skeletons`` (a drawn skeleton video): each sample's joints are stored too, under
    ``skeleton/<id>`` with the drawing's settings, so a training clip can be drawn again from
    another camera (``teacher.view_jitter``, :func:`vskd.datasets.skeleton_video.redraw_clip`).
    """
    from vskd.badsamples import BadSampleError, BadSamples
    from vskd.h5store import atomic_path, set_meta, write_index
    from vskd.index import index_columns

    bad = BadSamples(on_bad_sample)
    lengths, kept = [], []
    with atomic_path(out_path) as tmp, h5py.File(tmp, "w") as h5:
        group = h5.create_group("frames")
        decoded = _read_ahead(samples, lambda smp: read_video(smp.video, short_side), workers)
        for sample, frames in progress(decoded, desc="decode video", unit="video", total=len(samples)):
            if isinstance(frames, (ValueError, OSError)):  # VideoError, an adapter's LayoutError, I/O
                bad.handle(sample.id, sample.video, str(frames))
                continue
            if len(frames) == 0:
                bad.handle(sample.id, sample.video, "no frames. Replace the recording")
                continue
            group.create_dataset(sample.id, data=frames, chunks=(1, *frames.shape[1:]))
            if skeletons is not None:
                _store_skeleton(h5, sample, skeletons)
            lengths.append(len(frames))
            kept.append(sample)
        if not kept:
            raise BadSampleError(f"{out_path}: none of the {len(samples)} videos could be read "
                                 f"({len(bad.skipped)} skipped); nothing to train on")
        write_index(h5, index_columns(kept))
        h5.create_dataset("lengths", data=np.array(lengths, dtype=np.int64))
        set_meta(h5, class_names=class_names, dataset=dataset, short_side=short_side,
                 skipped=bad.skipped)
    return {"videos": len(kept), "frames": int(sum(lengths)),
            "min_frames": int(min(lengths)), "max_frames": int(max(lengths)), **bad.summary()}
