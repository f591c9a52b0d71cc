"""Rank-aware logging without launching processes: what `mmp` and distributed.setup do with torchrun's RANK."""
import logging

import pytest

from cli.main import configure_logging, torchrun_rank
from mmpmodel.distributed import env_rank, quiet_other_ranks


@pytest.fixture
def root_level():
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield root
    root.setLevel(level)
    root.handlers[:] = handlers


def test_mmp_logs_info_on_rank_0_only(monkeypatch, root_level, capsys):
    monkeypatch.setenv("RANK", "0")
    configure_logging(logging.INFO)
    logging.getLogger("x").info("hello from zero")
    assert "INFO x: hello from zero" in capsys.readouterr().err
    monkeypatch.setenv("RANK", "1")
    configure_logging(logging.INFO)
    logging.getLogger("x").info("hidden")
    logging.getLogger("x").warning("careful")
    err = capsys.readouterr().err
    assert "hidden" not in err and "WARNING [rank 1] x: careful" in err
    monkeypatch.delenv("RANK")
    assert torchrun_rank() == 0 == env_rank()


def test_setup_quiets_other_ranks_for_library_users(root_level):
    root_level.setLevel(logging.INFO)
    quiet_other_ranks(0)
    assert root_level.level == logging.INFO
    quiet_other_ranks(3)
    assert root_level.level == logging.WARNING
    root_level.setLevel(logging.ERROR)
    quiet_other_ranks(3)  # never makes a quieter setting louder
    assert root_level.level == logging.ERROR
