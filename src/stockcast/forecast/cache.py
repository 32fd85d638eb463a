"""Forecast tables cached on disk, keyed by the data, the forecaster and the request.

:class:`CachedForecaster` wraps any forecaster of :mod:`stockcast.forecast.protocol` and
implements the protocol itself: the first call of a request fits and forecasts as usual and
stores the table as parquet; an identical call later (same panel content, same forecaster
configuration, same origins, horizon and quantiles, same ``key_extra``) reads the file and
fits nothing. Any change in one of them is another key, hence a miss. Files are written
atomically (a temporary file renamed into place), so an interrupted run never leaves a
partial table behind and concurrent runs at worst compute the same table twice.

The key holds:

* ``data``: :func:`stockcast.schema.table_sha256` of the panel (every value hashed; the
  ``data_sha256`` of :func:`~stockcast.schema.panel_fingerprint`);
* ``forecaster``: its configuration, ``forecaster.config()`` when it has one (the baselines
  do: class, every field, the dataset-spec fields that matter), else a dataclass's class and
  fields; other objects cannot be keyed safely and are refused;
* ``origins``, ``horizon``, ``quantiles`` as asked, and ``key_extra`` (anything the caller
  knows the forecasts depend on that the configuration does not show, e.g. a model version).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stockcast.forecast.protocol import Forecaster
from stockcast.schema import table_sha256


def forecaster_config(forecaster: Any) -> dict[str, Any]:
    """The configuration a forecaster's tables depend on (see the module docstring).

    Raises:
        ValueError: The forecaster has no ``config()`` and is no dataclass.
    """
    config = getattr(forecaster, "config", None)
    if callable(config):
        return dict(config())
    if dataclasses.is_dataclass(forecaster) and not isinstance(forecaster, type):
        cls = type(forecaster)
        return {"class": f"{cls.__module__}.{cls.__qualname__}", **dataclasses.asdict(forecaster)}
    raise ValueError(
        f"cache: forecaster {getattr(forecaster, 'name', forecaster)!r} has no config() and is "
        "no dataclass; its forecasts cannot be keyed by configuration"
    )


def _plain(value: Any) -> Any:
    """JSON fallback for values of a configuration (numpy scalars and arrays, paths, sets)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)


class CachedForecaster:
    """A forecaster whose forecast tables are stored under ``cache_dir`` and reused.

    Args:
        forecaster: Any :class:`~stockcast.forecast.protocol.Forecaster` with a
            configuration (see :func:`forecaster_config`).
        cache_dir: Folder of the parquet files (created on first write).
        key_extra: Anything else the forecasts depend on (JSON-serialisable).

    Attributes:
        name: The wrapped forecaster's name.
        hits: Calls answered from a file.
        misses: Calls that ran the forecaster.
        last_path: File of the last call.
    """

    def __init__(self, forecaster: Forecaster, cache_dir: str | Path, key_extra: Any = None):
        self.forecaster = forecaster
        self.cache_dir = Path(cache_dir)
        self.key_extra = key_extra
        self.name = forecaster.name
        self.hits = 0
        self.misses = 0
        self.last_path: Path | None = None
        forecaster_config(forecaster)  # refuse an unkeyable forecaster now, not at first call

    def key(
        self,
        panel: pd.DataFrame,
        origins: Sequence[int],
        horizon: int,
        quantiles: Sequence[float] | None = None,
    ) -> str:
        """Hex digest identifying one request (data, configuration, origins, horizon, levels)."""
        origin_list = [int(origins)] if np.isscalar(origins) else [int(o) for o in origins]
        payload = {
            "data": table_sha256(panel),  # panel_fingerprint's data_sha256, without its shape
            "forecaster": forecaster_config(self.forecaster),
            "origins": origin_list,
            "horizon": int(horizon),
            "quantiles": None if quantiles is None else [float(q) for q in quantiles],
            "extra": self.key_extra,
        }
        text = json.dumps(payload, sort_keys=True, default=_plain)
        return hashlib.sha256(text.encode()).hexdigest()

    def path(self, key: str) -> Path:
        """File of a key: ``<cache_dir>/<name>-<key>.parquet`` (name made file-safe)."""
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(self.name)) or "forecaster"
        return self.cache_dir / f"{safe}-{key[:32]}.parquet"

    def holds(
        self,
        panel: pd.DataFrame,
        origins: Sequence[int],
        horizon: int,
        quantiles: Sequence[float] | None = None,
    ) -> bool:
        """Whether the table of this request is stored already (a call would be a hit)."""
        return self.path(self.key(panel, origins, horizon, quantiles)).exists()

    def forecast(
        self,
        panel: pd.DataFrame,
        origins: Sequence[int],
        horizon: int,
        quantiles: Sequence[float] | None = None,
    ) -> pd.DataFrame:
        """The wrapped forecaster's table: read from the cache, or computed and stored."""
        path = self.path(self.key(panel, origins, horizon, quantiles))
        self.last_path = path
        if path.exists():
            self.hits += 1
            return pd.read_parquet(path)
        self.misses += 1
        table = self.forecaster.forecast(panel, origins, horizon, quantiles)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            table.to_parquet(tmp, index=False)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return table


def fill_cache(
    forecasters: Sequence[Forecaster],
    cache_dir: str | Path,
    panel: pd.DataFrame,
    origins: Sequence[int],
    horizon: int,
    quantiles: Sequence[float] | None = None,
) -> dict[str, float]:
    """Store each forecaster's table for one request under ``cache_dir`` (tables already
    there are kept); returns the seconds each took (near 0 for a hit)."""
    seconds: dict[str, float] = {}
    for forecaster in forecasters:
        t0 = time.perf_counter()
        CachedForecaster(forecaster, cache_dir).forecast(panel, origins, horizon, quantiles)
        seconds[forecaster.name] = time.perf_counter() - t0
    return seconds


def _fill_in_child(conn, initializer, args) -> None:
    """Body of :class:`BackgroundFill`'s process: run, send ("ok", seconds) or ("error", text)."""
    try:
        if initializer is not None:
            initializer()
        conn.send(("ok", fill_cache(*args)))
    except BaseException as exc:  # noqa: BLE001 - sent to the parent, which reports it
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


class BackgroundFill:
    """:func:`fill_cache` in a second process, so the tables are ready when a later step
    asks for them while this process does other work (the TFT's training leaves most of a
    core idle on a CPU box; ``evaluate.py`` then reads the baselines from the cache).

    The process is spawned (no state forked from a process holding threads or a CUDA
    context); ``initializer`` runs in it first (e.g. the entry point's console filter).
    Failing in the background fails nothing: :meth:`wait` returns the error's text, and the
    later step computes what is missing itself.

    Args:
        initializer: Called without arguments in the new process before the work
            (picklable: a module-level function).
        Other arguments: as :func:`fill_cache`.
    """

    def __init__(self, forecasters, cache_dir, panel, origins, horizon, quantiles=None,
                 initializer=None):
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe(duplex=False)
        args = (list(forecasters), str(cache_dir), panel, [int(o) for o in origins], int(horizon),
                None if quantiles is None else [float(q) for q in quantiles])
        self._process = ctx.Process(target=_fill_in_child, args=(child, initializer, args),
                                    name="stockcast-cache-fill")
        self._process.start()
        child.close()

    def wait(self) -> tuple[dict[str, float], str | None, float]:
        """Block until done: (seconds per forecaster, error text or None, seconds waited)."""
        t0 = time.perf_counter()
        try:
            status, value = self._conn.recv()
        except EOFError:  # the process ended without a word (killed, out of memory)
            status, value = "error", None
        finally:
            self._conn.close()
        self._process.join()
        if value is None:
            value = f"the process ended with exit code {self._process.exitcode}"
        if status == "ok":
            return dict(value), None, time.perf_counter() - t0
        return {}, str(value), time.perf_counter() - t0

    def stop(self) -> None:
        """Abandon the work (the foreground failed): the process is ended; no file is left
        half-written (a table is renamed into place only when complete)."""
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()
        self._conn.close()
