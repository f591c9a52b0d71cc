"""Neighbours of a stored frame for an MMP-Net with temporal context: the next exposures, mirrored at the ends."""
import numpy as np
import pytest

from mmpdata.neighbours import neighbour_indices, read_stacks, stream_neighbours


def test_plain_video_takes_adjacent_frames_and_mirrors_at_the_ends():
    np.testing.assert_array_equal(neighbour_indices(5, 1), [[1, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 3]])
    np.testing.assert_array_equal(neighbour_indices(5, 0), [[0], [1], [2], [3], [4]])
    np.testing.assert_array_equal(neighbour_indices(1, 1), [[0, 0, 0]])  # nothing else to see
    # two on each side: the missing ones are the same distance the other way
    np.testing.assert_array_equal(neighbour_indices(5, 2)[0], [2, 1, 0, 1, 2])
    np.testing.assert_array_equal(neighbour_indices(5, 2)[3], [1, 2, 3, 4, 1])
    with pytest.raises(ValueError):
        neighbour_indices(0, 1)


def test_overlapping_windows_take_the_next_exposure_not_the_next_stored_window():
    # --stride 4 with windows of 10 raw frames: window t is [4t, 4t + 9]; the first window starting after 4t + 9 is
    # t + 3 (it starts at 4t + 12), the last ending before 4t is t - 3 (it ends at 4t - 3).
    windows = np.stack([np.arange(8) * 4, np.arange(8) * 4 + 9], 1)
    rows = neighbour_indices(8, 1, windows)
    np.testing.assert_array_equal(rows[3], [0, 3, 6])
    np.testing.assert_array_equal(rows[0], [3, 0, 3])  # no earlier exposure: mirrored
    np.testing.assert_array_equal(rows[6], [3, 6, 3])  # window 9 would be the next; it does not exist
    # non-overlapping windows of varying length (the default stride): consecutive stored windows
    lengths = np.array([7, 13, 9, 11])
    ends = np.cumsum(lengths) - 1
    windows = np.stack([ends - lengths + 1, ends], 1)
    np.testing.assert_array_equal(neighbour_indices(4, 1, windows), neighbour_indices(4, 1))


def test_a_stream_gets_the_same_neighbours_holding_few_frames():
    class Frames:  # counts how many frames were read ahead of the one yielded
        def __init__(self, n):
            self.n, self.read = n, 0

        def __iter__(self):
            for t in range(self.n):
                self.read = t + 1
                yield f"frame{t}"

    for n in (1, 2, 5, 9):
        for context in (0, 1, 2):
            src = Frames(n)
            got = []
            for t, frame, stack in stream_neighbours(src, context):
                assert frame == f"frame{t}" and src.read <= t + context + 1  # never more than c frames ahead
                got.append([int(f[5:]) for f in stack])
            np.testing.assert_array_equal(got, neighbour_indices(n, context))


def test_read_stacks_reads_each_frame_once_in_order():
    reads = []

    def read(j):
        reads.append(j)
        return f"frame{j}"

    rows = neighbour_indices(6, 1)
    stacks = list(read_stacks(rows, read))
    assert stacks == [[f"frame{j}" for j in row] for row in rows]
    assert sorted(reads) == list(range(6))
