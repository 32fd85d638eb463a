"""Where a dataset's files are, generating them on demand, and reading them.

Relative paths in a data config resolve against the project root, or for generated data
(``source.generator``) against ``<cache_dir>/<name>-<hash of the generator config>/``,
where :func:`materialize` writes the generator's tables once. :func:`read_tables` reads
every table raw; :func:`read_source` joins the covariate tables onto the demand table
(:func:`stockcast.data.sources.join_tables`), the one-table source-schema form the model's
prediction input takes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow

from stockcast import PROJECT_ROOT
from stockcast.data.objects import build, locate
from stockcast.data.sources import DEMAND_TABLE, join_tables
from stockcast.data.spec import DatasetSpec
from stockcast.errors import DataValidationError, Issue

DEFAULT_CACHE_DIR = "data/generated"


# ---------------------------------------------------------------------------- generated data
def config_hash(generator: Mapping[str, Any]) -> str:
    """Short stable hash of a generator config (and the generator's ``GENERATOR_VERSION``)."""
    payload: dict[str, Any] = {"config": generator}
    target = generator.get("_target_")
    if target:
        obj = locate(str(target), "source.generator._target_")
        # the module the config names (e.g. the package stockcast.data.synthetic), else the
        # module defining the object
        module = sys.modules.get(str(target).rsplit(".", 1)[0]) or sys.modules.get(
            getattr(obj, "__module__", "")
        )
        payload["version"] = getattr(module, "GENERATOR_VERSION", None)
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def generated_dir(spec: DatasetSpec) -> Path:
    """``<cache_dir>/<name>-<hash>/`` where a generated dataset's tables live."""
    if spec.generator is None:
        raise ValueError(f"data config '{spec.name}': source.generator is not set")
    cache = Path(spec.source.get("cache_dir") or DEFAULT_CACHE_DIR)
    cache = cache if cache.is_absolute() else PROJECT_ROOT / cache
    return cache / f"{spec.name}-{config_hash(spec.generator)}"


def _needed_files(spec: DatasetSpec) -> list[Path]:
    return [source_path(spec), *(table_path(spec, name) for name in spec.tables)]


def materialize(spec: DatasetSpec) -> Path:
    """Generate the dataset's tables unless its cache folder already holds them all.

    The generator (``source.generator``: ``_target_`` plus keyword arguments, built by
    :func:`stockcast.data.objects.build`) must return
    an object with a ``write(folder)`` method (e.g. :class:`~stockcast.data.synthetic.
    SyntheticData`) or a mapping of table name -> DataFrame (written as ``<name>.parquet``).
    Tables are written into a temporary folder that is renamed into place, so concurrent
    processes (DDP ranks) never read a half-written dataset.

    Returns:
        The folder holding the generated tables.
    """
    target = generated_dir(spec)
    if all(p.exists() for p in _needed_files(spec)):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        data = build(spec.generator, f"data config '{spec.name}': source.generator")
        if hasattr(data, "write"):
            data.write(tmp)
        elif isinstance(data, Mapping):
            for name, frame in data.items():
                frame.to_parquet(tmp / f"{name}.parquet", index=False)
        else:
            raise TypeError(
                f"data config '{spec.name}': generator {spec.generator.get('_target_')} returned "
                f"{type(data).__name__}; expected an object with write(folder) or a dict of "
                "DataFrames"
            )
        if target.exists() and not all(p.exists() for p in _needed_files(spec)):
            shutil.rmtree(target)  # incomplete leftovers (e.g. a file deleted by hand)
        try:
            tmp.rename(target)
        except OSError:
            if not target.exists():
                raise
            # another process finished first: its copy is identical (same seed and config)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    missing = [str(p) for p in _needed_files(spec) if not p.exists()]
    if missing:
        raise FileNotFoundError(
            f"data config '{spec.name}': the generator did not write {', '.join(missing)}"
        )
    return target


# ---------------------------------------------------------------------------- paths
def base_dir(spec: DatasetSpec) -> Path:
    """Folder that the spec's relative table paths resolve against.

    The project root, or for generated data ``<cache_dir>/<name>-<config hash>/``.
    """
    return PROJECT_ROOT if spec.generator is None else generated_dir(spec)


def resolve_path(spec: DatasetSpec, path: str | Path) -> Path:
    """``path`` as is if absolute, else under :func:`base_dir`."""
    path = Path(path)
    return path if path.is_absolute() else base_dir(spec) / path


def source_path(spec: DatasetSpec) -> Path:
    """Resolved path of the demand table."""
    return resolve_path(spec, spec.source["path"])


def table_path(spec: DatasetSpec, name: str) -> Path:
    """Resolved path of covariate table ``name``."""
    return resolve_path(spec, spec.tables[name]["path"])


# ---------------------------------------------------------------------------- reading
def read_tables(spec: DatasetSpec) -> dict[str, pd.DataFrame]:
    """Read the demand table (key ``"demand"``) and every covariate table, raw.

    Generated datasets are generated first if their cache folder is missing or incomplete.
    """
    if spec.generator is not None:
        materialize(spec)
    out = {DEMAND_TABLE: read_table(spec, source_path(spec), spec.source, DEMAND_TABLE)}
    for name, tcfg in spec.tables.items():
        out[name] = read_table(spec, table_path(spec, name), tcfg, name)
    return out


def read_source(spec: DatasetSpec) -> pd.DataFrame:
    """Read the raw demand table in its source schema (no mapping).

    A single-table dataset is returned exactly as read. With covariate ``tables`` they are
    validated and joined on (columns in the demand table's source schema plus the
    covariates), which is the one-table form :func:`stockcast.data.panel.to_canonical` and
    the model's prediction input take. Generated data is generated first if absent.

    Raises:
        DataValidationError: A covariate table is bad or does not join cleanly.
    """
    tables = read_tables(spec)
    demand = tables.pop(DEMAND_TABLE)
    if not spec.tables:
        return demand
    joined = join_tables(demand, tables, spec)
    if joined.issues:
        raise DataValidationError(joined.issues)
    return joined.frame


def read_table(spec: DatasetSpec, path: Path, options: dict[str, Any], table: str) -> pd.DataFrame:
    """Read one parquet/CSV table described by a ``source``/``tables`` entry.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The format is neither ``parquet`` nor ``csv``.
        DataValidationError: The file cannot be read in its format (binary data as CSV,
            an empty file, not a parquet file) or holds no rows (e.g. a header-only CSV).
    """
    if not path.exists():
        raise FileNotFoundError(f"data config '{spec.name}': {table} file {path} does not exist")
    fmt = options.get("format") or path.suffix.lstrip(".")
    read_options = dict(options.get("read_options") or {})
    if fmt not in ("parquet", "csv"):
        raise ValueError(
            f"data config '{spec.name}': {table}: unsupported format {fmt!r} (parquet, csv)"
        )
    where = "source" if table == DEMAND_TABLE else f"tables.{table}"
    try:
        if fmt == "parquet":
            frame = pd.read_parquet(path, **read_options)
        else:
            frame = pd.read_csv(path, **read_options)
    except UnicodeDecodeError as err:
        problem = (
            f"is not {err.encoding} text (byte {err.start}: {err.reason}): a binary file? "
            f"(a CSV in another encoding: set {where}.read_options.encoding)"
        )
    except pd.errors.EmptyDataError:
        problem = "is empty: no header and no rows"
    except pd.errors.ParserError as err:
        problem = f"does not parse as CSV: {str(err).strip()}"
    except (pyarrow.ArrowException, OSError) as err:
        problem = f"is not a readable {fmt} file: {str(err).strip()}"
    else:
        if len(frame):
            return frame
        columns = ", ".join(map(str, frame.columns[:8])) or "none"
        problem = f"has no rows (columns: {columns})"
    raise DataValidationError(
        [Issue(table, None, "readable", f"{fmt} file {path} {problem} (data config '{spec.name}')")]
    )
