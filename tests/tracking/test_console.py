"""The entry points' console filter drops known third-party noise and nothing else."""

import logging
import warnings

import pytest

from stockcast.tracking import console


@pytest.fixture
def restored():
    """Undo what quiet_third_party does to the process (logger levels, filters, warnings)."""
    names = [*console.NOISE_LOGGERS, *(n for n, _ in console.NOISE_LOG_MESSAGES)]
    saved = {n: (logging.getLogger(n).level, list(logging.getLogger(n).filters)) for n in names}
    with warnings.catch_warnings():
        yield
    for n, (level, filters) in saved.items():
        log = logging.getLogger(n)
        log.setLevel(level)
        log.filters[:] = filters


def _passes(logger: logging.Logger, level: int, message: str) -> bool:
    record = logger.makeRecord(logger.name, level, __file__, 1, message, (), None)
    return logger.isEnabledFor(level) and logger.filter(record)


def test_known_noise_is_dropped_and_the_rest_stays_loud(restored):
    console.quiet_third_party()
    console.quiet_third_party()  # twice (several entry points in one process): one filter
    pyfunc = logging.getLogger("mlflow.pyfunc")
    assert sum(isinstance(f, console._DropMessages) for f in pyfunc.filters) == 1
    assert not _passes(pyfunc, logging.WARNING, "Passing a Python object as `python_model` "
                       "causes it to be serialized using CloudPickle, it requires ...")
    assert not _passes(pyfunc, logging.INFO, "Validating input example against model signature")
    assert _passes(pyfunc, logging.WARNING, "the model signature does not match its input")
    assert _passes(pyfunc, logging.ERROR, "failed to load the model")
    fonts = logging.getLogger("matplotlib.font_manager")
    assert not _passes(fonts, logging.INFO, "generated new fontManager")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        console.quiet_third_party()
        warnings.warn("Hint: Inferred schema contains integer column(s). Integer columns ...",
                      UserWarning, stacklevel=1)
        warnings.warn("series S1 has no demand in the training window", UserWarning,
                      stacklevel=1)
    assert [str(w.message) for w in caught] == ["series S1 has no demand in the training window"]


def test_highs_banner_is_printed_by_no_later_solve():
    import subprocess
    import sys

    # a fresh process: HiGHS prints its banner once per process, at its first Highs()
    code = ("from stockcast.tracking.console import quiet_third_party\n"
            "quiet_third_party()\n"
            "import cvxpy as cp\n"
            "x = cp.Variable(2, integer=True)\n"
            "cp.Problem(cp.Minimize(cp.sum(x)), [x >= 1.5]).solve(solver='HIGHS')\n"
            "print('solved', round(x.value.sum()))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "solved 4"  # and no banner
