"""Seeded synthetic retail network with known ground truth.

:func:`generate` builds a supplier -> DC -> store network selling ``n_items`` items in
``n_stores`` stores over ``periods`` periods on a ``freq`` grid, with every demand driver
drawn from stated distributions and recorded, so forecasts and stock decisions can be
scored against the truth instead of against noise. The modules:

* :mod:`~stockcast.data.synthetic.demand`: the demand model and its covariates (drivers,
  regime changes, the demand and covariate tables);
* :mod:`~stockcast.data.synthetic.truth`: true quantiles, the truth tables (demand
  distribution, per-series drivers, effect sizes, weather) and realised lead times;
* :mod:`~stockcast.data.synthetic.supply`: the supply network tables (locations, economics,
  suppliers, lanes);
* :mod:`~stockcast.data.synthetic.tables`: :class:`SyntheticData` and :func:`write`;
* :mod:`~stockcast.data.synthetic.generator`: :func:`generate`, which ties them together.

``GENERATOR_VERSION`` (read here by :func:`stockcast.data.io.config_hash`) changes
whenever the same arguments give other data.
"""

from stockcast.data.synthetic.demand import CATEGORIES, REGIONS
from stockcast.data.synthetic.generator import generate
from stockcast.data.synthetic.tables import (
    COVARIATE_TABLES,
    GENERATOR_VERSION,
    SUPPLY_TABLES,
    TRUTH_TABLES,
    SyntheticData,
    write,
)
from stockcast.data.synthetic.truth import QUANTILES, true_quantiles

__all__ = [
    "CATEGORIES",
    "COVARIATE_TABLES",
    "GENERATOR_VERSION",
    "QUANTILES",
    "REGIONS",
    "SUPPLY_TABLES",
    "TRUTH_TABLES",
    "SyntheticData",
    "generate",
    "true_quantiles",
    "write",
]
