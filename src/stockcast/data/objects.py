"""Objects from plain config dicts, without Hydra: ``{"_target_": "pkg.mod.fn", **kwargs}``.

Data configs name a few callables by import path: the generator of a synthetic dataset
(``source.generator``) and the target normalizer (``dataset.target_normalizer``). The
library receives them as plain dicts (the tasks convert configs before they reach it) and
builds them here, so that no library module needs Hydra. The rules are the subset of
``hydra.utils.instantiate`` these configs use, so a data config means the same to both:

* a mapping with ``_target_`` is called: ``_target_`` is imported (``pkg.mod.name`` or
  ``pkg.mod.Class.attr``), the other keys are its keyword arguments, optional ``_args_``
  its positional arguments; ``_partial_: true`` returns a :func:`functools.partial`
  instead of calling it;
* arguments are built first, recursively (mappings with ``_target_`` anywhere inside
  mappings and lists), unless ``_recursive_: false``;
* mappings without ``_target_`` and lists come back as plain ``dict`` and ``list``
  (Hydra's ``_convert_: all``; a ``_convert_`` key is accepted and ignored);
* any other key starting and ending with ``_`` is an error, as is a target that does not
  import.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Mapping, Sequence
from typing import Any

TARGET = "_target_"
_CONTROL = {"_target_", "_args_", "_partial_", "_recursive_", "_convert_"}


def locate(path: str, where: str = "_target_") -> Any:
    """Import the object at dotted ``path`` (module, then attributes).

    Args:
        path: ``pkg.module.name`` or ``pkg.module.Class.attribute``.
        where: Config key named in error messages.

    Raises:
        ValueError: The path is empty or does not import.
    """
    parts = str(path).split(".")
    if not path or not all(parts):
        raise ValueError(f"{where}: {path!r} is not a dotted import path")
    error: Exception | None = None
    for cut in range(len(parts), 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            obj: Any = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            missing = err.name or module_name
            if not (module_name == missing or module_name.startswith(missing + ".")):
                raise ValueError(f"{where}: importing {path!r} failed: {err}") from err
            error = err
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                raise ValueError(
                    f"{where}: cannot import {path!r}: {obj.__name__!r} has no attribute {attr!r}"
                )
            obj = getattr(obj, attr)
        return obj
    raise ValueError(f"{where}: cannot import {path!r} ({error})")


def build(cfg: Any, where: str = "config") -> Any:
    """Build ``cfg``: call every mapping with ``_target_`` (module docstring), recursively.

    Args:
        cfg: A mapping, a list or a plain value.
        where: Config key of ``cfg``, named in error messages (e.g. ``source.generator``).

    Returns:
        The built object; plain values unchanged; mappings and lists as ``dict``/``list``.

    Raises:
        ValueError: A ``_target_`` that does not import or an unknown ``_..._`` key.
    """
    if isinstance(cfg, Mapping):
        if TARGET not in cfg:
            return {k: build(v, f"{where}.{k}") for k, v in cfg.items()}
        unknown = sorted(
            str(k)
            for k in cfg
            if str(k).startswith("_") and str(k).endswith("_") and k not in _CONTROL
        )
        if unknown:
            raise ValueError(f"{where}: unsupported key(s) {unknown} (known: {sorted(_CONTROL)})")
        target = locate(cfg[TARGET], f"{where}._target_")
        recursive = bool(cfg.get("_recursive_", True))
        args = list(cfg.get("_args_") or [])
        kwargs = {str(k): v for k, v in cfg.items() if k not in _CONTROL}
        if recursive:
            args = [build(a, f"{where}._args_[{i}]") for i, a in enumerate(args)]
            kwargs = {k: build(v, f"{where}.{k}") for k, v in kwargs.items()}
        else:
            args, kwargs = _plain(args), {k: _plain(v) for k, v in kwargs.items()}
        if cfg.get("_partial_", False):
            return functools.partial(target, *args, **kwargs)
        return target(*args, **kwargs)
    if isinstance(cfg, Sequence) and not isinstance(cfg, (str, bytes)):
        return [build(v, f"{where}[{i}]") for i, v in enumerate(cfg)]
    return cfg


def _plain(value: Any) -> Any:
    """Mappings and lists as plain ``dict``/``list`` (``_target_`` left as data)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [_plain(v) for v in value]
    return value
