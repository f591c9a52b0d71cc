"""Commands: models (being written)."""
from cli.main import main  # noqa: F401
