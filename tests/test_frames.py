import av
import h5py
import numpy as np
import pytest
import torch

from vskd.frames import (ClipDataset, VideoError, build_frames_store, center_crop_box, clip_to_tensor,
                         decode_video, multiscale_crop_box, resized_shape, segment_indices)
from vskd.index import Sample

COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255),
           (128, 128, 128), (255, 255, 255), (0, 0, 0), (200, 100, 50)]


def write_video(path, colours, width=64, height=48):
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=15)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"qscale": "2"}
        for colour in colours:
            frame = np.empty((height, width, 3), np.uint8)
            frame[:] = colour
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def test_eval_indices_are_segment_centres():
    np.testing.assert_array_equal(segment_indices(16, 8, train=False), [1, 3, 5, 7, 9, 11, 13, 15])
    np.testing.assert_array_equal(segment_indices(10, 4, train=False), [1, 3, 6, 8])  # int(1.25 + 2.5k)
    np.testing.assert_array_equal(segment_indices(3, 3, train=False), [0, 1, 2])


def test_train_indices_fall_in_their_segments():
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(200):
        idx = segment_indices(17, 8, train=True, rng=rng)   # segment length 17 // 8 = 2
        assert np.all(idx >= np.arange(8) * 2) and np.all(idx < np.arange(8) * 2 + 2)
        seen.add(tuple(idx))
    assert len(seen) > 50  # really random within segments


def test_short_video_is_an_error_not_padding():
    with pytest.raises(VideoError, match="7 frames, fewer than the 8 segments"):
        segment_indices(7, 8, train=False)


def test_multiscale_crop_boxes_follow_tsn():
    rng = np.random.default_rng(0)
    allowed = {int(64 * s) for s in (1, 0.875, 0.75, 0.66)} | {56}
    for _ in range(300):
        top, left, h, w = multiscale_crop_box(64, 85, 56, rng=rng)
        assert h in allowed and w in allowed
        assert 0 <= top and top + h <= 64 and 0 <= left and left + w <= 85
        scales = sorted(allowed, reverse=True)
        assert abs(scales.index(h) - scales.index(w)) <= 1   # max_distort 1
    assert center_crop_box(64, 85, 56) == (4, 14, 56, 56)


def test_clip_to_tensor_crop_resize_and_flip():
    frames = np.zeros((2, 8, 10, 3), np.uint8)
    frames[:, :, :5, 0] = 255                       # left half red
    clip = clip_to_tensor(frames, (0, 0, 8, 10), 8, flip=False)
    assert clip.shape == (2, 3, 8, 8) and clip.dtype == torch.float32
    assert float(clip[0, 0, :, 0].min()) == pytest.approx(255) and float(clip[0, 0, :, -1].max()) == 0
    flipped = clip_to_tensor(frames, (0, 1, 8, 8), 8, flip=True)   # no resize: exact pixels
    assert float(flipped[0, 0, :, -1].min()) == 255 and float(flipped[0, 0, :, 0].max()) == 0


def test_resized_shape_keeps_aspect():
    assert resized_shape(480, 640, 256) == (256, 341)
    assert resized_shape(640, 480, 64) == (85, 64)


def test_decode_resizes_every_frame(tmp_path):
    path = tmp_path / "a1_s1_t1_color.avi"
    write_video(path, COLOURS)
    frames = decode_video(path, 24)
    assert frames.shape == (10, 24, 32, 3) and frames.dtype == np.uint8
    for frame, colour in zip(frames, COLOURS):
        np.testing.assert_allclose(frame[12, 16], colour, atol=12)   # lossy codec, solid colours


@pytest.mark.parametrize("content", [b"", b"RIFF\x00\x00\x00\x00AVI LIST garbage" * 10])
def test_corrupt_video_names_the_file(tmp_path, content):
    path = tmp_path / "broken_color.avi"
    path.write_bytes(content)
    with pytest.raises(VideoError, match="broken_color.avi"):
        decode_video(path, 24)


def test_truncated_video_is_detected(tmp_path):
    path = tmp_path / "a1_s1_t1_color.avi"
    write_video(path, COLOURS * 3)
    data = path.read_bytes()
    path.write_bytes(data[:200])  # cut inside the first frame
    with pytest.raises(VideoError, match="a1_s1_t1_color.avi"):
        decode_video(path, 24)


def test_frames_store_and_clip_dataset(tmp_path):
    samples = []
    for i, n in enumerate((10, 16)):
        path = tmp_path / f"a{i + 1}_s1_t1_color.avi"
        write_video(path, (COLOURS * 2)[:n])
        samples.append(Sample(f"a{i + 1}_s1_t1", i, 1, 1, path, tmp_path / "unused.mat"))
    store = tmp_path / "frames.h5"
    summary = build_frames_store(samples, store, 24, ["one", "two"], "test")
    assert summary == {"videos": 2, "frames": 26, "min_frames": 10, "max_frames": 16}
    with h5py.File(store) as h5:
        assert h5["frames/a2_s1_t1"].shape == (16, 24, 32, 3)
        assert h5["frames/a2_s1_t1"].chunks == (1, 24, 32, 3)   # one chunk per frame
        np.testing.assert_array_equal(h5["lengths"][()], [10, 16])
    assert not list(tmp_path.glob(".frames.h5.tmp*"))

    evaluation = ClipDataset(store, np.array([0, 1]), 4, 16, train=False)
    clip, label, row = evaluation[1]
    assert clip.shape == (4, 3, 16, 16) and label == 1 and row == 1
    torch.testing.assert_close(evaluation[1][0], clip)        # deterministic
    training = ClipDataset(store, np.array([0, 1]), 4, 16, train=True, seed=3)
    first = training[0][0]
    torch.testing.assert_close(training[0][0], first)           # same (seed, epoch, row)
    assert first.shape == (4, 3, 16, 16)
    later = []
    for epoch in range(1, 6):
        training.set_epoch(epoch)
        later.append(training[1][0])
    assert any(not torch.equal(a, b) for a, b in zip(later, later[1:]))  # new crop/frames per epoch


def test_training_batches_do_not_depend_on_the_loader_workers(tmp_path):
    """teacher.num_workers is speed alone: the same batches with a worker process or without."""
    from vskd.loaders import make_loader, set_loader_epoch

    samples = []
    for i, n in enumerate((9, 12, 14)):
        path = tmp_path / f"a{i + 1}_s1_t1_color.avi"
        write_video(path, (COLOURS * 2)[i:i + n])
        samples.append(Sample(f"a{i + 1}_s1_t1", i % 2, 1, 1, path, tmp_path / "unused.mat"))
    store = tmp_path / "frames.h5"
    build_frames_store(samples, store, 24, ["one", "two"], "test")
    batches = {}
    for workers in (0, 1):
        clips = ClipDataset(store, np.arange(3), 4, 16, train=True, flip=True, seed=5)
        loader = make_loader(clips, 2, shuffle=True, seed=5, num_workers=workers)
        set_loader_epoch(loader, 5, 3)
        batches[workers] = list(loader)
    assert len(batches[0]) == 2
    for a, b in zip(batches[0], batches[1]):
        assert all(torch.equal(x, y) for x, y in zip(a, b))
        assert a[0].stride() == b[0].stride()  # the same memory layout: the same convolution kernel


def test_read_ahead_keeps_order_and_hands_back_errors():
    import threading
    import time

    from vskd.frames import _read_ahead

    seen_threads = set()

    def read(i):
        seen_threads.add(threading.current_thread().name)
        time.sleep(0.01 * (5 - i % 5))  # later items finish first: order must still hold
        if i == 3:
            raise ValueError("bad video 3")
        return i * 10

    out = list(_read_ahead(range(8), read, workers=2))
    assert [item for item, _ in out] == list(range(8))
    assert [r for _, r in out if not isinstance(r, Exception)] == [0, 10, 20, 40, 50, 60, 70]
    assert isinstance(out[3][1], ValueError) and "bad video 3" in str(out[3][1])
    assert all(name.startswith("decode") for name in seen_threads)
    # one worker: read in the caller's thread, same results
    assert [r if not isinstance(r, Exception) else "err" for _, r in _read_ahead(range(4), read, 1)] \
        == [0, 10, 20, "err"]


def test_read_ahead_bounds_how_far_it_reads():
    from vskd.frames import _read_ahead

    started = []
    gen = _read_ahead(range(100), lambda i: started.append(i) or i, workers=2)
    next(gen)
    assert len(started) <= 2 * 2 + 1  # the window of 4, plus at most the next submission
    gen.close()
