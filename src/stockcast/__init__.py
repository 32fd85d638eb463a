"""stockcast: quantile demand forecasting and inventory optimization."""

from pathlib import Path

__version__ = "0.1.0"

#: Repository root (the folder holding ``conf/``), used to resolve default paths.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
