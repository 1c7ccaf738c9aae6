"""Where the models' published data sets are (see data/README.md)."""

from pathlib import Path

DATA = Path(__file__).parent / "data"
