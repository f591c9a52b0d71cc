"""Window planning: lengths, strides, centres and determinism."""
import pytest

from mmpdata.errors import InputError
from mmpdata.windows import Window, parse_frames, plan_windows


def test_parse_frames():
    assert parse_frames("9") == (9, 9)
    assert parse_frames("7-13") == (7, 13)
    assert parse_frames(" 7 - 11 ") == (7, 11)


@pytest.mark.parametrize("spec", ["", "a", "13-7", "1", "7-", "7..13", "-3"])
def test_parse_frames_rejects(spec):
    with pytest.raises(InputError, match="--frames"):
        parse_frames(spec)


def test_centre_is_middle_frame():
    assert Window(10, 16).centre == 13  # N = 7: a + (7 - 1) // 2
    assert Window(0, 7).centre == 3  # N = 8: the earlier of the two middle frames
    assert Window(5, 5 + 12).n == 13


def test_fixed_length_default_stride_tiles_the_sequence():
    ws = plan_windows(40, (7, 7), None, 0, "s")
    assert [(w.first, w.last) for w in ws] == [(0, 6), (7, 13), (14, 20), (21, 27), (28, 34)]


def test_stride_one_is_dense():
    ws = plan_windows(12, (7, 7), 1, 0, "s")
    assert [w.first for w in ws] == [0, 1, 2, 3, 4, 5]
    assert all(w.n == 7 for w in ws)


def test_variable_lengths_consecutive_and_in_range():
    ws = plan_windows(500, (7, 13), None, 3, "GOPR0372_07_00")
    assert {w.n for w in ws} <= set(range(7, 14)) and len({w.n for w in ws}) > 3
    assert ws[0].first == 0
    assert all(b.first == a.last + 1 for a, b in zip(ws, ws[1:]))
    assert ws[-1].last < 500


def test_plan_depends_only_on_seed_and_name():
    a = plan_windows(300, (7, 13), None, 1, "x")
    assert a == plan_windows(300, (7, 13), None, 1, "x")
    assert a != plan_windows(300, (7, 13), None, 2, "x")
    assert a != plan_windows(300, (7, 13), None, 1, "y")


def test_short_sequence_gives_no_window():
    assert plan_windows(6, (7, 7), None, 0, "s") == []


def test_bad_stride():
    with pytest.raises(InputError, match="--stride"):
        plan_windows(20, (7, 7), 0, 0, "s")
