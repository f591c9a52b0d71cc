"""PriorClips / VideoClips over hand-written mmp-h5 files: crops, alignment, augmentation, splits, lazy HDF5."""
import pickle

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from _mmph5 import write_mmp_h5
from mmpdata.datasets import PriorClips, Range, VideoClips, read_index, split_sequences
from mmpdata.errors import FormatError, InputError


@pytest.fixture
def data(tmp_path):
    return write_mmp_h5(tmp_path / "d.h5", {"a": (6, 24, 40, "train"), "b": (5, 24, 40, None),
                                            "c": (4, 24, 40, None), "t": (9, 24, 40, "test")})


def test_index_and_split(data):
    infos = read_index(data)
    assert [s.name for s in infos] == ["a", "b", "c", "t"]
    assert (infos[0].frames, infos[0].height, infos[0].width, infos[0].split) == (6, 24, 40, "train")
    sp = split_sequences(infos, val_fraction=0.3, seed=3)
    names = lambda rs: sorted(r.sequence for r in rs)  # noqa: E731
    assert "t" not in names(sp.train) + names(sp.val)  # never the test split
    assert len(sp.val) == 1 and sorted(names(sp.train) + names(sp.val)) == ["a", "b", "c"]
    assert split_sequences(infos, 0.3, seed=3) == sp  # deterministic
    marked = [s for s in infos]
    marked[2] = type(marked[2])(**{**marked[2].__dict__, "split": "valid"})
    sp2 = split_sequences(marked, 0.3, seed=3)
    assert names(sp2.val) == ["c"] and names(sp2.train) == ["a", "b"]


def test_single_sequence_splits_in_time(tmp_path):
    path = write_mmp_h5(tmp_path / "one.h5", {"only": (20, 16, 16, None)})
    sp = split_sequences(read_index(path), val_fraction=0.2, min_frames=5)
    assert sp.train == [Range("only", 0, 15)] and sp.val == [Range("only", 15, 20)]
    with pytest.raises(InputError, match="test split"):
        split_sequences(read_index(write_mmp_h5(tmp_path / "t.h5", {"x": (5, 8, 8, "test")})))


def test_prior_clips_crop_flip_alignment(data):
    ds = PriorClips(data, [Range("a", 0, 6), Range("b", 0, 5)], patch=16, seed=1)
    assert len(ds) == 11
    seen_hflip = seen_vflip = seen_plain = False
    for i in range(len(ds)):
        item = ds[i]
        blur, mmp = item["blur"], item["mmp"]
        assert blur.shape == (3, 16, 16) and mmp.shape == (1, 16, 16)
        rows = (blur[0] * 255).round()
        cols = (blur[1] * 255).round()
        # the stored MMP is row/16 (up to 23/16 > 1): it must follow the same crop/flip and be clipped to 1
        expected = torch.from_numpy((rows.numpy() / 16).astype(np.float16).astype(np.float32)).clamp(0, 1)
        assert torch.allclose(mmp[0], expected)
        assert float(mmp.max()) <= 1.0
        frame = int(round(float(blur[2, 0, 0]) * 255))
        assert frame == ds.items[i][1]
        dr, dc = float(rows[1, 0] - rows[0, 0]), float(cols[0, 1] - cols[0, 0])
        seen_vflip |= dr == -1
        seen_hflip |= dc == -1
        seen_plain |= dr == 1 and dc == 1
    assert seen_hflip and seen_vflip and seen_plain
    again = ds[3]
    assert torch.equal(again["blur"], ds[3]["blur"])  # same (seed, epoch, index) -> same sample
    crops = []
    for epoch in range(4):
        ds.set_epoch(epoch)
        crops.append(ds[3]["blur"])
    assert any(not torch.equal(crops[0], c) for c in crops[1:])


def test_video_clips_consecutive_and_rotated(data):
    ds = VideoClips(data, [Range("a", 0, 6), Range("b", 0, 5)], frames=5, patch=12, seed=0, with_mmp=True)
    assert ds.items == [("a", 0), ("a", 1), ("b", 0)]
    orientations = set()
    for epoch in range(12):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            item = ds[i]
            assert item["blur"].shape == (5, 3, 12, 12) and item["sharp"].shape == (5, 3, 12, 12)
            assert item["mmp"].shape == (5, 1, 12, 12)
            start = ds.items[i][1]
            frames = (item["blur"][:, 2, 0, 0] * 255).round().long().tolist()
            assert frames == list(range(start, start + 5))
            targets = (item["sharp"][:, 2, 0, 0] * 255).round().long().tolist()
            assert targets == [f + 100 for f in frames]
            # target and input share one crop/flip/rotation
            assert torch.equal(item["blur"][:, :2], item["sharp"][:, :2])
            rows = (item["blur"][0, 0] * 255).round()
            orientations.add((float(rows[1, 0] - rows[0, 0]), float(rows[0, 1] - rows[0, 0])))
    # rows running down, up, left-right and right-left: all four 90-degree orientations occur
    assert orientations == {(1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0)}


def test_video_clips_still_share(data):
    """Still clips: the sharp clip as input (channel 2 encodes frame+100 in the sharp set, frame in the blurry one)
    and zero MMP; the share of still items follows still_share; 0 leaves every item as it was."""
    ranges = [Range("a", 0, 6), Range("b", 0, 5)]
    plain = VideoClips(data, ranges, frames=3, patch=8, seed=4, with_mmp=True)
    none = VideoClips(data, ranges, frames=3, patch=8, seed=4, with_mmp=True, still_share=0.0)
    every = VideoClips(data, ranges, frames=3, patch=8, seed=4, with_mmp=True, still_share=1.0)
    half = VideoClips(data, ranges, frames=3, patch=8, seed=4, with_mmp=True, still_share=0.5)
    stills = 0
    for epoch in range(20):
        for ds in (plain, none, every, half):
            ds.set_epoch(epoch)
        for i in range(len(plain)):
            a, b = plain[i], none[i]
            assert all(torch.equal(a[k], b[k]) for k in a)
            s = every[i]
            assert torch.equal(s["blur"], s["sharp"]) and torch.equal(s["sharp"], a["sharp"])
            assert float(s["mmp"].abs().max()) == 0.0 and float(a["mmp"].max()) > 0
            h = half[i]
            still = torch.equal(h["blur"], h["sharp"])
            assert still or torch.equal(h["blur"], a["blur"])
            stills += still
    total = 20 * len(plain)
    assert 0.3 * total < stills < 0.7 * total
    with pytest.raises(ValueError, match="still_share"):
        VideoClips(data, ranges, frames=3, still_share=1.5)


def test_video_clips_time_flip_plays_half_the_clips_backwards(data):
    """Channel 2 of the blurry frames is the frame index: a flipped clip counts down; MMP and sharp flip alike, and
    without the option every item is what it was."""
    ranges = [Range("a", 0, 6), Range("b", 0, 5)]
    plain = VideoClips(data, ranges, frames=3, patch=8, seed=4, with_mmp=True)
    flip = VideoClips(data, ranges, frames=3, patch=8, seed=4, with_mmp=True, time_flip=True)
    flipped = 0
    for epoch in range(10):
        plain.set_epoch(epoch)
        flip.set_epoch(epoch)
        for i in range(len(plain)):
            a, b = plain[i], flip[i]
            order = [int(round(float(f[2].flatten()[0]) * 255)) for f in b["blur"]]
            if order[0] > order[-1]:
                flipped += 1
                assert all(torch.equal(b[k], a[k].flip(0)) for k in a)
            else:
                assert all(torch.equal(b[k], a[k]) for k in a)
    assert 0.3 * 10 * len(plain) < flipped < 0.7 * 10 * len(plain)


def test_lazy_handle_and_workers(data):
    ds = PriorClips(data, [Range("a", 0, 6)], patch=8, seed=2)
    assert ds._h5 is None
    ds[0]
    assert ds._h5 is not None
    clone = pickle.loads(pickle.dumps(ds))  # what a worker receives: no open handle
    assert clone._h5 is None
    single = [b["blur"] for b in DataLoader(ds, batch_size=3, num_workers=0)]
    multi = [b["blur"] for b in DataLoader(ds, batch_size=3, num_workers=2)]
    assert all(torch.equal(a, b) for a, b in zip(single, multi))


def test_bad_files(tmp_path, data):
    text = tmp_path / "notes.h5"
    text.write_text("hello")
    with pytest.raises(FormatError, match="notes.h5: not an HDF5 file"):
        read_index(text)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(FormatError, match="other.h5"):
        read_index(other)
    imported = write_mmp_h5(tmp_path / "imp.h5", {"s": (5, 8, 8, None)}, with_mmp=False)
    with pytest.raises(InputError, match="no 'mmp'"):
        PriorClips(imported, [Range("s", 0, 5)], patch=8)
    with pytest.raises(InputError, match="fewer --frames"):
        VideoClips(imported, [Range("s", 0, 5)], frames=7, patch=8)


def test_prior_clips_scale_augmentation_scales_the_mmp_with_the_picture(data):
    """Shrinking a crop by s shrinks motion by s: the MMP (pixels per frame / K) must be multiplied by s too."""
    ds = PriorClips(data, [Range("a", 0, 6), Range("b", 0, 5)], patch=12, seed=4, scale=(0.5, 1.0))
    factors = []
    for i in range(len(ds)):
        item = ds[i]
        assert item["blur"].shape == (3, 12, 12) and item["mmp"].shape == (1, 12, 12)
        rows, mmp = (item["blur"][0] * 255).numpy(), item["mmp"][0].numpy()
        ok = (rows >= 16) & (mmp < 0.99)  # away from uint8 rounding and from the clip at 1
        s = mmp[ok] / (rows[ok] / 16)      # stored MMP is row / 16 before shrinking
        if s.size < 10:
            continue  # a crop of the top rows only: nothing exact to compare
        assert np.ptp(s) < 0.07 * np.median(s)  # one factor for the whole crop
        factors.append(float(np.median(s)))
    assert len(factors) >= 5 and 0.48 < min(factors) < 0.8 and max(factors) <= 1.02  # crops really shrink, never grow
    plain = PriorClips(data, [Range("a", 0, 6)], patch=12, seed=4, scale=(1.0, 1.0), rotate=True, photometric=True)
    for i in range(len(plain)):
        item = plain[i]
        m = item["mmp"][0].numpy()
        # rotation keeps the map a ramp of row/16 along one axis (steps of 1/16), colour jitter leaves it alone
        steps = {round(float(v), 3) for v in np.concatenate([np.diff(m, axis=0).ravel(), np.diff(m, axis=1).ravel()])}
        assert steps <= {0.0, 0.062, -0.062}
    with pytest.raises(InputError, match="scale"):
        PriorClips(data, [Range("a", 0, 6)], patch=12, scale=(0.5, 1.5))


def test_prior_clips_with_context_stack_the_neighbouring_exposures(tmp_path):
    # Channel 2 of the coded frames is the stored frame index: the stack must be [t-1, t, t+1] with the ends
    # mirrored, cropped, flipped and jittered alike, and the middle frame exactly what context=0 gives.
    path = write_mmp_h5(tmp_path / "c.h5", {"a": (6, 24, 40, None), "b": (5, 24, 40, None)})
    ranges = [Range("a", 0, 6), Range("b", 1, 5)]
    full = PriorClips(path, ranges, patch=None, augment=False, context=1)
    for i, (name, t) in enumerate(full.items):
        blur = full[i]["blur"]
        assert blur.shape == (9, 24, 40)
        start, stop = (0, 6) if name == "a" else (1, 5)
        expected = [t - 1 if t > start else t + 1, t, t + 1 if t < stop - 1 else t - 1]
        assert [int(round(float(blur[3 * k + 2, 0, 0]) * 255)) for k in range(3)] == expected
    single = PriorClips(path, ranges, patch=12, seed=3, scale=(0.5, 1.0), rotate=True, photometric=True)
    stacked = PriorClips(path, ranges, patch=12, seed=3, scale=(0.5, 1.0), rotate=True, photometric=True, context=1)
    for i in range(len(single)):
        a, b = single[i], stacked[i]
        assert torch.equal(b["blur"][3:6], a["blur"]) and torch.equal(b["mmp"], a["mmp"])
