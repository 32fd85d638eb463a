"""The default synthetic dataset, generated once for every test of the package."""

from __future__ import annotations

import pytest

from stockcast.data.synthetic import SyntheticData, generate


@pytest.fixture(scope="session")
def data() -> SyntheticData:
    """The default dataset (10 items x 4 stores x 156 weeks + 8 horizon weeks)."""
    return generate()
