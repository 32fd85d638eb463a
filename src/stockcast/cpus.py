"""The CPUs this process may run on, for the settings that say ``auto``.

* ``n_jobs: auto`` (:func:`n_jobs`: the baselines', the backtest's tuning runs): one
  thread or process per usable CPU;
* the training loader's ``num_workers: auto`` (:func:`loader_workers`): one loading
  process beside the training process when there are at least two CPUs;
* ``torch_threads: auto`` (the train task): the usable CPUs not busy now.
"""

from __future__ import annotations

import os


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def loader_workers(setting: int | str, where: str = "loader.num_workers") -> int:
    """DataLoader worker processes: a number >= 0 as given; ``auto`` = 1 where the process
    may run on two CPUs or more (the batches are built in a second process while the first
    computes: on 2 idle cores a Stallion epoch took 12.1 s against 14.0 s with none), else 0.

    Raises:
        ValueError: Neither ``auto`` nor an integer >= 0 (names ``where``).
    """
    if str(setting) == "auto":
        return 1 if usable_cpus() >= 2 else 0
    value = whole_number(setting, 0)
    if value is None:
        raise ValueError(f"{where}={setting!r}: use auto or a number of worker processes >= 0")
    return value


def whole_number(setting: int | str | None, minimum: int) -> int | None:
    """``setting`` as an integer >= ``minimum`` (an int, or a string that spells one), else
    ``None``: what each ``auto``-or-number setting parses before naming its own key."""
    try:
        value = int(setting)
    except (TypeError, ValueError):
        return None
    return value if value >= minimum and str(setting).strip() == str(value) else None


def n_jobs(setting: int | str, where: str) -> int:
    """Threads or processes for an ``n_jobs`` setting (the baselines', the backtest's
    tuning runs): a positive number as given;
    ``auto`` = the CPUs this process may run on (on a box other jobs keep busy, 1 is faster:
    threads that wait for a shared core cost more than they gain).

    Raises:
        ValueError: Neither ``auto`` nor a positive integer (names ``where``).
    """
    if str(setting) == "auto":
        return usable_cpus()
    value = whole_number(setting, 1)
    if value is None:
        raise ValueError(f"{where}.n_jobs={setting!r}: use auto or a positive number")
    return value
