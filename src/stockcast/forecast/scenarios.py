"""Inputs for forecasting from an origin: hide the future, or change planned prices; the
price response (partial dependence of forecast demand on the planned price).

Both evaluation (rolling origins, price partial dependence) and the optimizer (candidate
prices) build their model inputs here, so "what the model may see" is defined once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stockcast.data.spec import DatasetSpec
from stockcast.schema import GROUP_IDS, TIME_IDX, quantile_column


def as_of(panel: pd.DataFrame, spec: DatasetSpec, origin: int, horizon: int) -> pd.DataFrame:
    """The panel as a forecaster at ``origin`` sees it, with ``horizon`` future rows.

    Rows after the origin keep only their known-future covariates: ``demand`` becomes NaN
    and unknown covariates carry their last observed value (the TFT's decoder does not
    read them; they are filled only so the dataset has no holes). Series that do not
    reach ``origin + horizon`` are dropped.
    """
    end = origin + horizon
    sub = panel[panel[TIME_IDX] <= end]
    reach = sub.groupby(GROUP_IDS)[TIME_IDX].transform("max")
    sub = sub[reach >= end].sort_values([*GROUP_IDS, TIME_IDX]).copy()
    future = sub[TIME_IDX] > origin
    sub.loc[future, "demand"] = np.nan
    unknown = [*spec.unknown_reals, *spec.unknown_categoricals]
    if unknown:
        sub.loc[future, unknown] = np.nan
        sub[unknown] = sub.groupby(GROUP_IDS, sort=False)[unknown].ffill()
    return sub.reset_index(drop=True)


def price_settings(spec: DatasetSpec) -> dict[str, str | None]:
    """The dataset's price columns: ``column`` (selling price the model sees), optional
    ``list_column`` (regular price), ``discount_column`` and ``discount_scale``."""
    price = dict(getattr(spec, "price", None) or {})
    if not price.get("column"):
        raise ValueError(
            f"data config '{spec.name}': no price column declared (set data.price.column to a "
            "known-future real such as the planned selling price)"
        )
    # the model sees the planned price directly, or as list price less the discount
    # (:func:`with_price` rewrites the discount from the new price)
    via_discount = (price.get("list_column") and price.get("discount_column")
                    and price["discount_column"] in spec.known_reals)
    if price["column"] not in spec.known_reals and not via_discount:
        raise ValueError(
            f"data config '{spec.name}': price column {price['column']!r} (or, with a list "
            "price, the discount column) must be a known-future real (known_reals) for the "
            "model to respond to planned prices"
        )
    return {
        "column": price["column"],
        "list_column": price.get("list_column"),
        "discount_column": price.get("discount_column"),
        "discount_scale": float(price.get("discount_scale", 1.0)),
    }


def with_price(
    panel: pd.DataFrame, spec: DatasetSpec, origin: int, factor: float | pd.Series
) -> pd.DataFrame:
    """Set the planned price of every period after ``origin`` to ``factor`` × list price.

    ``factor`` is a scalar or a Series indexed by (item_id, location_id). Without a list
    price column the factor scales the planned price itself. A discount column, if
    declared, is recomputed so the covariates stay consistent.
    """
    cfg = price_settings(spec)
    out = panel.copy()
    future = out[TIME_IDX] > origin
    base_col = cfg["list_column"] or cfg["column"]
    if isinstance(factor, pd.Series):
        f = out.set_index(GROUP_IDS).index.map(factor.to_dict().get).to_numpy(dtype=float)
        f = np.where(np.isnan(f), 1.0, f)
    else:
        f = np.full(len(out), float(factor))
    new_price = out[base_col].to_numpy(dtype=float) * f
    out.loc[future, cfg["column"]] = new_price[future.to_numpy()]
    if cfg["discount_column"] and cfg["list_column"]:
        lst = out.loc[future, cfg["list_column"]].to_numpy(dtype=float)
        new = out.loc[future, cfg["column"]].to_numpy(dtype=float)
        out.loc[future, cfg["discount_column"]] = np.where(
            lst > 0, cfg["discount_scale"] * (1.0 - new / np.where(lst > 0, lst, 1.0)), 0.0
        )
    return out


def price_response(
    bundle, panel: pd.DataFrame, origin: int, horizon: int, factors: list[float]
) -> pd.DataFrame:
    """Partial dependence of forecast demand on the planned price.

    Every series' price over the horizon is set to ``factor`` × list price; the table
    gives mean forecast quantiles per factor and the implied arc elasticity of the median.
    """
    base = as_of(panel, bundle.spec, origin, horizon)
    rows = []
    for f in factors:
        t = bundle.forecast_last(with_price(base, bundle.spec, origin, f), horizon)
        rows.append({"price_factor": f, **{c: t[c].mean() for c in t.columns if c.startswith("q")}})
    out = pd.DataFrame(rows).sort_values("price_factor").reset_index(drop=True)
    med = out[quantile_column(0.5)].to_numpy()
    fac = out["price_factor"].to_numpy()
    el = np.full(len(out), np.nan)
    el[1:] = (np.diff(med) / ((med[1:] + med[:-1]) / 2)) / (np.diff(fac) / ((fac[1:] + fac[:-1]) / 2))
    out["arc_elasticity"] = el
    return out
