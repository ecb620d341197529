"""Video decoding: the frames stage's decoding against the ffmpeg command line."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.common import Row, interleave, judge, med, median_ratio, not_measured, r3
from benchmarks.stage_runs import Context

PER_VIDEO_FIGURE = ("frames stage decoding / one ffmpeg command per video "
                    "(`ffmpeg -threads 0 -i VIDEO -vf scale=... -f null -`)")


def ffmpeg_exe() -> tuple[str | None, str]:
    exe = shutil.which("ffmpeg")
    if exe:
        return exe, "ffmpeg on PATH"
    try:
        import imageio_ffmpeg
    except ImportError:
        return None, "no ffmpeg on PATH and imageio-ffmpeg is not installed (pip install -e '.[bench]')"
    return imageio_ffmpeg.get_ffmpeg_exe(), f"imageio-ffmpeg's bundled ffmpeg {imageio_ffmpeg.get_ffmpeg_version()}"


def decode_only(path) -> int:
    """PyAV decoding with vskd's thread settings, no resize or conversion: the decoder's share."""
    import av

    n = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for _ in container.decode(stream):
            n += 1
    return n


def bench_decode(ctx: Context, rounds: int, per_video: bool = True) -> tuple[list[Row], list[Row]]:
    figure = "frames stage decoding: vskd time / ffmpeg command-line time, same videos"
    exe, source = ffmpeg_exe()
    if exe is None:
        return [not_measured("decode_vs_ffmpeg", figure, source, "<= 1.25"),
                not_measured("decode_vs_ffmpeg_per_video", PER_VIDEO_FIGURE, source)], []
    from vskd.datasets import get_adapter
    from vskd.frames import _read_ahead, decode_video

    ws = ctx.ws
    side = int(ws.params["frames"]["short_side"])
    adapter = get_adapter(ws.name)
    videos = [s.video for s in adapter.scan(ws.paths.raw, ws.block) if s.video is not None]
    if adapter.read_video.__name__ != "_decode_video" or Path(videos[0]).is_dir():
        why = f"{ws.name} is not read from video files"
        return [not_measured("decode_vs_ffmpeg", figure, why, "<= 1.25"),
                not_measured("decode_vs_ffmpeg_per_video", PER_VIDEO_FIGURE, why)], []
    tmp = Path(tempfile.mkdtemp(prefix="vskd-bench-"))
    listing = tmp / "videos.txt"
    listing.write_text("".join(f"file '{Path(v).resolve()}'\n" for v in videos))
    # vskd.frames.resized_shape: short side -> side, long side -> round(long * side / short)
    scale = (f"scale=w='if(lte(ih,iw),round(iw*{side}/ih),{side})':h='if(lte(ih,iw),{side},round(ih*{side}/iw))'"
             ":flags=area,format=rgb24")
    base = [exe, "-nostdin", "-hide_banner", "-v", "error", "-threads", "0"]
    concat = base + ["-f", "concat", "-safe", "0", "-i", str(listing)]

    def ff(cmd):
        return lambda: subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)

    def ff_each():
        for v in videos:
            subprocess.run(base + ["-i", str(v), "-vf", scale, "-f", "null", "-"], check=True,
                           stdout=subprocess.DEVNULL)

    def read(v):
        return adapter.read_video(Path(v), side, ws.block)

    def run_vskd():  # the frames stage's decoding: videos read ahead in threads, in order
        return [frames for _, frames in _read_ahead(videos, read, None)]

    def run_one_at_a_time():
        return [read(v) for v in videos]

    # Same work: ffmpeg's frames, as rgb24 at the stored size, against vskd's, on the first video.
    first = decode_video(videos[0], side)
    raw = subprocess.run(base + ["-i", str(videos[0]), "-vf", scale, "-f", "rawvideo", "-"], check=True,
                         capture_output=True).stdout
    ff_frames = np.frombuffer(raw, np.uint8).reshape(-1, *first.shape[1:])
    pixel_diff = pixel_mean = None
    if ff_frames.shape == first.shape:
        d = np.abs(ff_frames.astype(int) - first.astype(int))
        pixel_diff, pixel_mean = int(d.max()), float(d.mean())
    fns = {"vskd": run_vskd, "ffmpeg": ff(concat + ["-vf", scale, "-f", "null", "-"]),
           "ffmpeg_decode_only": ff(concat + ["-f", "null", "-"]),
           "pyav_decode_only": lambda: [decode_only(v) for v in videos],
           "one_at_a_time": run_one_at_a_time}
    if per_video:
        fns["ffmpeg_per_video"] = ff_each
    ff(concat + ["-vf", scale, "-f", "null", "-"])()  # warm the page cache
    try:
        times = interleave(fns, rounds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    frames = int(sum(len(f) for f in run_vskd())) if len(videos) <= 64 else None
    ratio = median_ratio(times["vskd"], times["ffmpeg"])
    ratio_seq = median_ratio(times["one_at_a_time"], times["ffmpeg"])
    details = {"videos": len(videos), "frames": frames, "first_video_shape": list(first.shape),
               "short_side": side, "ffmpeg": source, "ffmpeg_scale_filter": scale,
               "ffmpeg_vs_vskd_first_video": {"frames_ffmpeg": int(len(ff_frames)), "frames_vskd": int(len(first)),
                                              "max_abs_pixel_diff": pixel_diff,
                                              "mean_abs_pixel_diff": pixel_mean},
               **{f"{k}_s": [r3(t) for t in v] for k, v in times.items()}}
    row = judge(Row("decode_vs_ffmpeg", figure + f" (decode + area resize to short side {side} + rgb24)",
                    r3(ratio), details=details), "<=", 1.25)
    row.note = (f"{len(videos)} videos; the frames stage's decoding (decode_video, 2 videos at a time in "
                f"threads, order kept; without its HDF5 writes) "
                f"{med(times['vskd']):.2f} s vs one ffmpeg process over all of them (concat demuxer, "
                f"-threads 0 as PyAV's default, -vf scale=...:flags=area,format=rgb24 -f null) "
                f"{med(times['ffmpeg']):.2f} s")
    if pixel_mean is not None:
        row.note += (f". Same frames: ffmpeg's rgb24 output of the first video differs from decode_video's "
                     f"by {pixel_mean:.2f} grey levels on average ({pixel_diff} at most)")
    if row.met is False:
        row.note += (f". Missed: PyAV's decoding alone takes {med(times['pyav_decode_only']):.2f} s "
                     f"(ffmpeg decoding to null: {med(times['ffmpeg_decode_only']):.2f} s); the rest is the "
                     "area resize and rgb24 conversion run one frame at a time from Python, where ffmpeg "
                     "pipelines them in C")
    rows = [row]
    if per_video:
        ratio_each = median_ratio(times["vskd"], times["ffmpeg_per_video"])
        rows.append(Row("decode_vs_ffmpeg_per_video", PER_VIDEO_FIGURE, r3(ratio_each),
                        note=f"{med(times['ffmpeg_per_video']):.2f} s, mostly the start-up of "
                             f"{len(videos)} processes"))
    else:
        rows.append(not_measured("decode_vs_ffmpeg_per_video", PER_VIDEO_FIGURE, "skipped (--no-per-video)"))
    candidates = [Row("decode_one_at_a_time_vs_ffmpeg",
                      "decode_video one video after another (the stage before its thread pool) / ffmpeg",
                      r3(ratio_seq), note=f"{med(times['one_at_a_time']):.2f} s")]
    return rows, candidates

