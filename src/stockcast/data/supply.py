"""Supply-side tables (locations, economics, suppliers, lanes): schema, validation, derivation.

The optimizer (:mod:`stockcast.optimization`) reads four tables. Their columns are fixed
here, in one place, and every table goes through :func:`validate_supply`, which collects
*every* problem (pandera row checks plus cross-table references) into one
:class:`~stockcast.errors.DataValidationError` naming table, column, rule and rows.

``locations`` (one row per location)
    ``location_id`` (str, unique), ``echelon`` (``dc`` | ``store``), ``parent_id`` (the DC
    that feeds a store; empty for DCs), ``capacity`` (units, > 0, finite: the most stock
    the location may hold, all items together).
``economics`` (one row per item x location)
    ``item_id``, ``location_id``, ``unit_cost`` (> 0), ``price`` (> 0, list selling price),
    ``holding_cost`` (>= 0, per unit per period), ``shortage_cost`` (>= 0, per unit of unmet
    demand: goodwill on top of the lost margin), ``salvage_value`` (>= 0, <= unit_cost: value
    of a unit left at the end of the protection period; ``salvage_value = unit_cost`` models
    stock that simply carries over), ``on_hand`` (>= 0), ``in_transit`` (>= 0, arriving
    within the protection period).
``suppliers`` (one row per supplier x item)
    ``supplier_id``, ``item_id``, ``unit_cost`` (> 0), ``lead_time_mean`` (periods, >= 0),
    ``lead_time_std`` (>= 0), ``reliability`` (0..1, probability an order arrives on time),
    ``capacity`` (units per decision, > 0, finite), ``min_order_qty`` (>= 0, <= capacity),
    ``ships_to`` (``location_id`` of a DC, or ``all`` = any location).
``lanes`` (one row per directed location pair)
    ``from_id``, ``to_id`` (location ids, different), ``transfer_cost`` (>= 0 per unit),
    ``lead_time`` (periods, >= 0). A lane carries every item.

:func:`derive_supply` builds all four tables for a dataset that has none (Stallion: item x
agency keys and a price column) from a documented, seeded rule (:class:`SupplyConfig`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from stockcast.data.spec import DatasetSpec
from stockcast.data.validation import (
    numeric_column,
    raise_if,
    required_columns,
    rows_where,
    schema_issues,
)
from stockcast.errors import DataValidationError, Issue
from stockcast.schema import GROUP_IDS, periods_per_year

#: Table name -> required columns, in order.
SUPPLY_COLUMNS: dict[str, tuple[str, ...]] = {
    "locations": ("location_id", "echelon", "parent_id", "capacity"),
    "economics": (
        "item_id",
        "location_id",
        "unit_cost",
        "price",
        "holding_cost",
        "shortage_cost",
        "salvage_value",
        "on_hand",
        "in_transit",
    ),
    "suppliers": (
        "supplier_id",
        "item_id",
        "unit_cost",
        "lead_time_mean",
        "lead_time_std",
        "reliability",
        "capacity",
        "min_order_qty",
        "ships_to",
    ),
    "lanes": ("from_id", "to_id", "transfer_cost", "lead_time"),
}
ECHELONS = ("dc", "store")
#: ``suppliers.ships_to`` value meaning "any location".
SHIPS_TO_ALL = "all"

_KEYS = {
    "locations": ("location_id",),
    "economics": ("item_id", "location_id"),
    "suppliers": ("supplier_id", "item_id"),
    "lanes": ("from_id", "to_id"),
}
_STRINGS = {
    "locations": ("location_id", "echelon", "parent_id"),
    "economics": ("item_id", "location_id"),
    "suppliers": ("supplier_id", "item_id", "ships_to"),
    "lanes": ("from_id", "to_id"),
}


@dataclass
class SupplyTables:
    """The four supply tables (see the module docstring for their columns)."""

    locations: pd.DataFrame
    economics: pd.DataFrame
    suppliers: pd.DataFrame
    lanes: pd.DataFrame

    @classmethod
    def from_mapping(cls, tables: Mapping[str, pd.DataFrame]) -> SupplyTables:
        """Build from a ``{"locations": df, "economics": df, ...}`` mapping.

        Raises:
            DataValidationError: When one of the four tables is absent.
        """
        missing = [name for name in SUPPLY_COLUMNS if name not in tables]
        if missing:
            raise DataValidationError(
                [Issue(name, None, "missing_table", "supply table is absent") for name in missing]
            )
        return cls(**{name: tables[name] for name in SUPPLY_COLUMNS})

    def as_dict(self) -> dict[str, pd.DataFrame]:
        """``{"locations": df, "economics": df, "suppliers": df, "lanes": df}``."""
        return {name: getattr(self, name) for name in SUPPLY_COLUMNS}

    def write(self, folder: str | Path) -> dict[str, Path]:
        """Write each table as ``<folder>/<name>.parquet``; returns name -> path."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name, df in self.as_dict().items():
            paths[name] = out / f"{name}.parquet"
            df.to_parquet(paths[name], index=False)
        return paths

    @classmethod
    def read(cls, folder: str | Path) -> SupplyTables:
        """Read ``<folder>/<name>.parquet`` (or ``.csv``) for the four tables."""
        folder = Path(folder)
        tables = {}
        for name in SUPPLY_COLUMNS:
            parquet, csv = folder / f"{name}.parquet", folder / f"{name}.csv"
            if parquet.exists():
                tables[name] = pd.read_parquet(parquet)
            elif csv.exists():
                tables[name] = pd.read_csv(csv)
        return cls.from_mapping(tables)


# --------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------


def _finite(s: pd.Series) -> pd.Series:
    return pd.Series(np.isfinite(s.to_numpy(float)), index=s.index)


def _num(*checks: pa.Check, finite: bool = True) -> pa.Column:
    extra = [pa.Check(_finite, error="finite")] if finite else []
    return pa.Column(float, [*checks, *extra], nullable=False)


_SCHEMAS: dict[str, pa.DataFrameSchema] = {
    "locations": pa.DataFrameSchema(
        {
            "location_id": pa.Column(object, nullable=False),
            "echelon": pa.Column(object, pa.Check.isin(ECHELONS), nullable=False),
            "capacity": _num(pa.Check.gt(0)),
        },
        unique=["location_id"],
        report_duplicates="all",
    ),
    "economics": pa.DataFrameSchema(
        {
            "item_id": pa.Column(object, nullable=False),
            "location_id": pa.Column(object, nullable=False),
            "unit_cost": _num(pa.Check.gt(0)),
            "price": _num(pa.Check.gt(0)),
            "holding_cost": _num(pa.Check.ge(0)),
            "shortage_cost": _num(pa.Check.ge(0)),
            "salvage_value": _num(pa.Check.ge(0)),
            "on_hand": _num(pa.Check.ge(0)),
            "in_transit": _num(pa.Check.ge(0)),
        },
        unique=["item_id", "location_id"],
        report_duplicates="all",
    ),
    "suppliers": pa.DataFrameSchema(
        {
            "supplier_id": pa.Column(object, nullable=False),
            "item_id": pa.Column(object, nullable=False),
            "ships_to": pa.Column(object, nullable=False),
            "unit_cost": _num(pa.Check.gt(0)),
            "lead_time_mean": _num(pa.Check.ge(0)),
            "lead_time_std": _num(pa.Check.ge(0)),
            "reliability": _num(pa.Check.in_range(0, 1)),
            "capacity": _num(pa.Check.gt(0)),
            "min_order_qty": _num(pa.Check.ge(0)),
        },
        unique=["supplier_id", "item_id"],
        report_duplicates="all",
    ),
    "lanes": pa.DataFrameSchema(
        {
            "from_id": pa.Column(object, nullable=False),
            "to_id": pa.Column(object, nullable=False),
            "transfer_cost": _num(pa.Check.ge(0)),
            "lead_time": _num(pa.Check.ge(0)),
        },
        unique=["from_id", "to_id"],
        report_duplicates="all",
    ),
}


def _clean(df: pd.DataFrame, table: str) -> tuple[pd.DataFrame, list[Issue]]:
    """Required columns present, keys as strings, numbers as floats (issues for non-numbers)."""
    if not isinstance(df, pd.DataFrame):
        return df, [Issue(table, None, "type", f"expected a DataFrame, got {type(df).__name__}")]
    df = df.reset_index(drop=True)
    issues = required_columns(df, table, SUPPLY_COLUMNS[table])
    if issues:
        return df, issues
    out = df.copy()
    for c in _STRINGS[table]:
        raw = out[c]
        out[c] = raw.map(lambda v: v if pd.isna(v) else str(v)).astype(object)
    for c in SUPPLY_COLUMNS[table]:
        if c not in _STRINGS[table]:
            out[c], col_issues = numeric_column(df, table, c)
            issues += col_issues
    return out, issues


def validate_table(df: pd.DataFrame, table: str) -> tuple[pd.DataFrame, list[Issue]]:
    """Row-level checks of one supply table; returns the cleaned table and the issues found.

    Args:
        df: The raw table.
        table: One of ``locations``, ``economics``, ``suppliers``, ``lanes``.

    Returns:
        ``(clean, issues)``: keys as ``str``, numeric columns as ``float``, index reset so
        row numbers in issues are positions in the input.
    """
    if table not in SUPPLY_COLUMNS:
        raise ValueError(f"unknown supply table {table!r}; expected one of {list(SUPPLY_COLUMNS)}")
    clean, issues = _clean(df, table)
    if issues:
        return clean, issues
    issues += schema_issues(clean, table, _SCHEMAS[table])
    if table == "locations":
        is_dc = clean["echelon"] == "dc"
        bad = is_dc & clean["parent_id"].notna()
        if bad.any():
            issues.append(
                Issue(table, "parent_id", "dc_has_no_parent", "DCs must have an empty parent_id",
                      rows_where(bad))
            )
        bad = (clean["echelon"] == "store") & clean["parent_id"].isna()
        if bad.any():
            issues.append(
                Issue(table, "parent_id", "store_has_parent", "stores must name their DC",
                      rows_where(bad))
            )
    elif table == "economics":
        bad = clean["salvage_value"] > clean["unit_cost"]
        if bad.any():
            issues.append(
                Issue(table, "salvage_value", "salvage_le_unit_cost",
                      "salvage_value must not exceed unit_cost", rows_where(bad))
            )
    elif table == "suppliers":
        bad = clean["min_order_qty"] > clean["capacity"]
        if bad.any():
            issues.append(
                Issue(table, "min_order_qty", "moq_le_capacity",
                      "min_order_qty exceeds capacity: the supplier could never be used",
                      rows_where(bad))
            )
    elif table == "lanes":
        bad = clean["from_id"] == clean["to_id"]
        if bad.any():
            issues.append(
                Issue(table, "to_id", "distinct_endpoints", "a lane must join two locations",
                      rows_where(bad))
            )
    return clean, issues


def validate_supply(tables: SupplyTables | Mapping[str, pd.DataFrame]) -> SupplyTables:
    """Validate the four supply tables, each alone and against each other.

    Cross-table rules: every ``economics``/``lanes`` location and every store's
    ``parent_id`` is a known location (a DC for ``parent_id``); ``suppliers.ships_to`` is a
    DC or ``all``; every supplier item has at least one ``economics`` row ("unknown supplier
    item"); a supplier's ``unit_cost`` is not below the ``salvage_value`` of the item
    anywhere (buying only to salvage would be an arbitrage).

    Args:
        tables: :class:`SupplyTables` or a mapping with the four tables.

    Returns:
        Cleaned copies (keys as ``str``, numbers as ``float``, index reset).

    Raises:
        DataValidationError: Listing every issue found (table, column, rule, rows).
    """
    if not isinstance(tables, SupplyTables):
        tables = SupplyTables.from_mapping(tables)
    issues: list[Issue] = []
    clean: dict[str, pd.DataFrame] = {}
    for name in SUPPLY_COLUMNS:
        clean[name], table_issues = validate_table(getattr(tables, name), name)
        issues += table_issues
    structural = {"missing_column", "type", "numeric"}
    if any(i.rule in structural for i in issues):
        raise_if(issues)  # cross-table checks need every column, typed

    loc, econ, sup, lanes = (clean[n] for n in SUPPLY_COLUMNS)
    known = set(loc["location_id"])
    dcs = set(loc.loc[loc["echelon"] == "dc", "location_id"])

    def unknown(df: pd.DataFrame, table: str, column: str, allowed: set, what: str) -> None:
        bad = df[column].notna() & ~df[column].isin(allowed)
        if bad.any():
            examples = ", ".join(sorted(map(str, df.loc[bad, column].unique()))[:5])
            issues.append(Issue(table, column, "known_reference", f"{what}, e.g. {examples}",
                                rows_where(bad)))

    unknown(loc, "locations", "parent_id", dcs, "parent_id is not a DC location_id")
    unknown(econ, "economics", "location_id", known, "location_id not in locations")
    unknown(lanes, "lanes", "from_id", known, "from_id not in locations")
    unknown(lanes, "lanes", "to_id", known, "to_id not in locations")
    unknown(sup, "suppliers", "ships_to", dcs | {SHIPS_TO_ALL},
            f"ships_to must be a DC location_id or '{SHIPS_TO_ALL}'")
    unknown(sup, "suppliers", "item_id", set(econ["item_id"]),
            "unknown supplier item (no economics row for it)")

    max_salvage = econ.groupby("item_id")["salvage_value"].max()
    salvage = sup["item_id"].map(max_salvage)
    bad = salvage.notna() & (sup["unit_cost"] < salvage)
    if bad.any():
        issues.append(
            Issue("suppliers", "unit_cost", "cost_ge_salvage",
                  "supplier unit_cost is below the item's salvage_value somewhere (arbitrage)",
                  rows_where(bad))
        )
    raise_if(issues)
    return SupplyTables(**clean)


# --------------------------------------------------------------------------------------
# derivation for datasets without supply data
# --------------------------------------------------------------------------------------


@dataclass
class SupplierArchetype:
    """One kind of supplier offered by :func:`derive_supply`.

    Args:
        name: Suffix of the supplier id (``SUP_<name>``).
        cost_factor: Supplier unit cost = item base cost x this.
        lead_time_mean: Mean lead time in periods.
        lead_time_std: Lead-time standard deviation in periods.
        reliability: On-time probability.
        capacity_factor: Capacity = this x the item's total recent demand per period.
        moq_factor: Minimum order quantity = this x the item's mean recent demand per
            location (0 = none).
        ships_to_dc: Ship to one DC (assigned round-robin per item) instead of ``all``.
    """

    name: str
    cost_factor: float
    lead_time_mean: float
    lead_time_std: float
    reliability: float
    capacity_factor: float
    moq_factor: float = 0.0
    ships_to_dc: bool = False


DEFAULT_ARCHETYPES: tuple[SupplierArchetype, ...] = (
    SupplierArchetype("bulk", 0.90, 2.0, 0.6, 0.85, 3.0, moq_factor=2.0, ships_to_dc=True),
    SupplierArchetype("regional", 1.00, 1.0, 0.3, 0.95, 2.0),
    SupplierArchetype("express", 1.12, 0.5, 0.1, 0.99, 1.0),
)


@dataclass
class SupplyConfig:
    """Parameters of :func:`derive_supply` (plain values, so Hydra can set them).

    Args:
        n_dcs: Number of DCs created (``DC1``..``DCn``); stores are assigned round-robin in
            sorted ``location_id`` order.
        margin: Unit cost = price x (1 - margin).
        annual_holding_rate: Holding cost per period = unit_cost x rate / periods_per_year.
        periods_per_year: 12 for monthly data, 52 for weekly; ``None`` = from the data's
            frequency (:func:`stockcast.schema.periods_per_year`), which ``freq`` must give.
        dc_holding_factor: DC holding cost = store holding cost x this (DCs are cheaper).
        shortage_frac: Goodwill shortage cost = price x this.
        salvage_frac: Salvage value = unit_cost x this.
        default_price: Price used when the keys carry no price column.
        recent_periods: Recent demand = mean over this many last periods per item-location.
        suppliers_per_item: (min, max) number of archetypes drawn per item; ``regional``
            (the first archetype that ships to ``all``) is always included so every location
            can be supplied.
        archetypes: Supplier kinds (see :class:`SupplierArchetype`); dicts are accepted.
        cost_jitter: Relative uniform noise on supplier unit costs.
        dc_store_cost_frac: DC->store (and store->DC) transfer cost = median unit cost x this.
        lateral_cost_frac: Store<->store transfer cost = median unit cost x this.
        dc_store_lead_time: Lead time of DC<->store lanes (periods).
        lateral_lead_time: Lead time of lateral lanes (periods).
        n_lateral: Each store gets lateral lanes to this many neighbours on each side (in a
            ring of the DC's stores), both directions.
        return_lanes: Also create store->DC lanes.
        cover_mean: On-hand = recent demand x cover; cover ~ U(0.5, 1.5) x cover_mean, except
        excess_share: share of store item-locations with cover x ``excess_cover`` (excess)
        short_share: share with cover x ``short_cover`` (short), so transfers and markdowns
            are exercised.
        excess_cover: Cover multiplier of the excess share.
        short_cover: Cover multiplier of the short share.
        in_transit_frac: In-transit = recent demand x this.
        dc_cover: DC on-hand = the DC's stores' recent demand x this.
        store_capacity_factor: Store capacity = its total recent demand x this.
        dc_capacity_factor: DC capacity = its stores' total recent demand x this.
        seed: Seed of every random draw.
    """

    n_dcs: int = 2
    margin: float = 0.35
    annual_holding_rate: float = 0.25
    periods_per_year: float | None = None
    dc_holding_factor: float = 0.6
    shortage_frac: float = 0.1
    salvage_frac: float = 0.5
    default_price: float = 10.0
    recent_periods: int = 6
    suppliers_per_item: tuple[int, int] = (2, 3)
    archetypes: tuple[SupplierArchetype, ...] = DEFAULT_ARCHETYPES
    cost_jitter: float = 0.05
    dc_store_cost_frac: float = 0.03
    lateral_cost_frac: float = 0.05
    dc_store_lead_time: float = 0.0
    lateral_lead_time: float = 0.0
    n_lateral: int = 1
    return_lanes: bool = False
    cover_mean: float = 1.5
    excess_share: float = 0.2
    short_share: float = 0.2
    excess_cover: float = 4.0
    short_cover: float = 0.1
    in_transit_frac: float = 0.3
    dc_cover: float = 0.5
    store_capacity_factor: float = 20.0
    dc_capacity_factor: float = 20.0
    seed: int = 0

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | SupplyConfig | None) -> SupplyConfig:
        """Build from a plain mapping (e.g. a Hydra ``DictConfig`` turned into a dict).

        Raises:
            ValueError: For unknown keys.
        """
        if values is None:
            return cls()
        if isinstance(values, SupplyConfig):
            return values
        values = dict(values)
        names = {f.name for f in fields(cls)}
        unknown_keys = sorted(set(values) - names)
        if unknown_keys:
            raise ValueError(f"unknown SupplyConfig keys: {unknown_keys}; known: {sorted(names)}")
        if "archetypes" in values:
            values["archetypes"] = tuple(
                a if isinstance(a, SupplierArchetype) else SupplierArchetype(**dict(a))
                for a in values["archetypes"]
            )
        if "suppliers_per_item" in values:
            values["suppliers_per_item"] = tuple(values["suppliers_per_item"])
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        """Plain-dict form (for logging as params)."""
        return asdict(self)


_PRICE_COLUMNS = ("price", "price_regular", "price_actual")


def _recent(keys: pd.DataFrame, demand_column: str | None, n: int) -> pd.Series:
    """Mean recent demand per (item_id, location_id)."""
    df = keys
    if demand_column and demand_column in df:
        if "period" in df:
            df = df.sort_values("period")
        tail = df.dropna(subset=[demand_column]).groupby(["item_id", "location_id"]).tail(n)
        return tail.groupby(["item_id", "location_id"])[demand_column].mean()
    qcols = [c for c in df.columns if isinstance(c, str) and c.startswith("q")]
    median = [c for c in qcols if c in ("q0.5",)] or qcols
    if median:
        return df.groupby(["item_id", "location_id"])[median[0]].mean()
    raise DataValidationError(
        [
            Issue("keys", demand_column or "demand", "missing_column",
                  "need a demand column or quantile (q<level>) columns to size stock")
        ]
    )


def derive_supply(
    keys: pd.DataFrame,
    config: SupplyConfig | Mapping[str, Any] | None = None,
    *,
    price_column: str | None = None,
    demand_column: str | None = "demand",
    freq: str | None = None,
) -> SupplyTables:
    """Build locations, economics, suppliers and lanes for a dataset without supply data.

    Rule (every random draw comes from ``numpy.random.default_rng(config.seed)``):

    * **Locations.** Each distinct ``location_id`` of ``keys`` is a store; ``n_dcs`` DCs
      ``DC1..DCn`` are added and stores are assigned round-robin in sorted id order.
      Capacity = recent demand of the location (DC: of its stores) x capacity factor.
    * **Economics.** Price = the last ``price`` (or ``price_regular``/``price_actual``)
      per item-location, else the item's median, else ``default_price``; DC rows get the
      item's median price. unit_cost = price x (1 - margin); holding = unit_cost x
      annual_holding_rate / periods_per_year (x ``dc_holding_factor`` at DCs); shortage =
      price x shortage_frac; salvage = unit_cost x salvage_frac. On-hand = recent demand x
      cover with cover ~ U(0.5, 1.5) x cover_mean, then a random ``excess_share`` of store
      rows x ``excess_cover`` and a disjoint ``short_share`` x ``short_cover`` (some
      excess, some short, so transfers and markdowns have work). In-transit = recent demand
      x in_transit_frac. DC on-hand = its stores' recent demand x dc_cover.
    * **Suppliers.** Each item draws ``suppliers_per_item`` archetypes (always including
      the first archetype shipping to ``all``); cost = item base cost (median unit cost) x
      cost_factor x U(1 - jitter, 1 + jitter), lead time/reliability from the archetype,
      capacity = capacity_factor x the item's total recent demand, MOQ = moq_factor x the
      item's mean recent demand per location. DC-only archetypes ship to the DC whose
      stores sell most of the item.
    * **Lanes.** DC->store for every store (``return_lanes`` adds store->DC) and lateral
      store<->store lanes to ``n_lateral`` ring neighbours within the same DC.

    Args:
        keys: Rows with ``item_id`` and ``location_id`` (a canonical panel or a forecast
            table); optional ``period``, a demand column and a price column.
        config: :class:`SupplyConfig` or a plain dict of its fields.
        price_column: Column with prices; default: the first of ``price``,
            ``price_regular``, ``price_actual`` present.
        demand_column: Column with realised demand; when absent, the mean of the median
            quantile column (``q0.5``) is used.
        freq: pandas frequency of the periods: sets ``periods_per_year`` when the config
            leaves it ``None`` (weekly 52, monthly 12); default: inferred from the
            ``period`` column of ``keys``.

    Returns:
        Validated :class:`SupplyTables`.

    Raises:
        DataValidationError: When ``keys`` lacks ``item_id``/``location_id`` or any demand
            signal.
    """
    cfg = SupplyConfig.from_dict(config)
    raise_if(required_columns(keys, "keys", ("item_id", "location_id")))
    if cfg.n_dcs < 1:
        raise ValueError("SupplyConfig.n_dcs must be >= 1")
    rng = np.random.default_rng(cfg.seed)
    keys = keys.assign(item_id=keys["item_id"].astype(str), location_id=keys["location_id"].astype(str))

    recent = _recent(keys, demand_column, cfg.recent_periods).clip(lower=0.0).fillna(0.0)
    recent = recent.sort_index()
    pairs = recent.index.to_frame(index=False)
    pairs["recent"] = np.maximum(recent.to_numpy(float), 1e-3)

    # locations ------------------------------------------------------------------------
    stores = sorted(pairs["location_id"].unique())
    taken = set(stores)
    dcs = []
    for k in range(cfg.n_dcs):
        name = f"DC{k + 1}"
        while name in taken:
            name = f"_{name}"
        dcs.append(name)
    parent = {s: dcs[i % cfg.n_dcs] for i, s in enumerate(stores)}
    store_demand = pairs.groupby("location_id")["recent"].sum()
    dc_demand = store_demand.groupby(store_demand.index.map(parent)).sum()
    locations = pd.DataFrame(
        {
            "location_id": dcs + stores,
            "echelon": ["dc"] * len(dcs) + ["store"] * len(stores),
            "parent_id": [None] * len(dcs) + [parent[s] for s in stores],
            "capacity": [float(dc_demand.get(d, 1.0)) * cfg.dc_capacity_factor + 1.0 for d in dcs]
            + [float(store_demand[s]) * cfg.store_capacity_factor + 1.0 for s in stores],
        }
    )

    # prices -----------------------------------------------------------------------------
    pcol = price_column or next((c for c in _PRICE_COLUMNS if c in keys), None)
    if pcol is not None and pcol in keys:
        ordered = keys.sort_values("period") if "period" in keys else keys
        last = ordered.dropna(subset=[pcol]).groupby(["item_id", "location_id"])[pcol].last()
        price = pairs.set_index(["item_id", "location_id"]).index.map(last.to_dict().get)
        price = pd.Series(np.asarray(price, dtype=float), index=pairs.index)
        item_median = price.groupby(pairs["item_id"]).transform("median")
        price = price.fillna(item_median).fillna(cfg.default_price)
        price = price.where(price > 0, cfg.default_price)
    else:
        price = pd.Series(cfg.default_price, index=pairs.index)
    pairs["price"] = price.to_numpy(float)

    # economics ------------------------------------------------------------------------
    n = len(pairs)
    cover = rng.uniform(0.5, 1.5, n) * cfg.cover_mean
    draw = rng.uniform(size=n)
    cover = np.where(draw < cfg.excess_share, cover * cfg.excess_cover, cover)
    short = (draw >= cfg.excess_share) & (draw < cfg.excess_share + cfg.short_share)
    cover = np.where(short, cover * cfg.short_cover, cover)
    unit_cost = pairs["price"] * (1.0 - cfg.margin)
    if freq is None and "period" in keys.columns:
        periods = pd.DatetimeIndex(pd.to_datetime(keys["period"]).drop_duplicates().sort_values())
        freq = pd.infer_freq(periods) if len(periods) >= 3 else None
    per_year = cfg.periods_per_year or (periods_per_year(freq) if freq else None)
    if not per_year:
        raise ValueError(
            "derive_supply: set periods_per_year or pass the data's freq (holding cost per period"
            " = annual_holding_rate / periods per year)"
        )
    holding_rate = cfg.annual_holding_rate / per_year
    store_econ = pd.DataFrame(
        {
            "item_id": pairs["item_id"],
            "location_id": pairs["location_id"],
            "unit_cost": unit_cost,
            "price": pairs["price"],
            "holding_cost": unit_cost * holding_rate,
            "shortage_cost": pairs["price"] * cfg.shortage_frac,
            "salvage_value": unit_cost * cfg.salvage_frac,
            "on_hand": np.round(pairs["recent"] * cover, 3),
            "in_transit": np.round(pairs["recent"] * cfg.in_transit_frac, 3),
        }
    )
    pairs["dc"] = pairs["location_id"].map(parent)
    dc_rows = (
        pairs.groupby(["item_id", "dc"], as_index=False)
        .agg(recent=("recent", "sum"), price=("price", "median"))
        .rename(columns={"dc": "location_id"})
    )
    dc_cost = dc_rows["price"] * (1.0 - cfg.margin)
    dc_econ = pd.DataFrame(
        {
            "item_id": dc_rows["item_id"],
            "location_id": dc_rows["location_id"],
            "unit_cost": dc_cost,
            "price": dc_rows["price"],
            "holding_cost": dc_cost * holding_rate * cfg.dc_holding_factor,
            "shortage_cost": dc_rows["price"] * cfg.shortage_frac,
            "salvage_value": dc_cost * cfg.salvage_frac,
            "on_hand": np.round(dc_rows["recent"] * cfg.dc_cover, 3),
            "in_transit": 0.0,
        }
    )
    economics = pd.concat([dc_econ, store_econ], ignore_index=True)

    # suppliers ------------------------------------------------------------------------
    items = sorted(pairs["item_id"].unique())
    item_stats = pairs.groupby("item_id").agg(
        total=("recent", "sum"), per_loc=("recent", "mean"), price=("price", "median")
    )
    archetypes = cfg.archetypes
    anchor = next((i for i, a in enumerate(archetypes) if not a.ships_to_dc), None)
    if anchor is None:
        raise ValueError("SupplyConfig.archetypes needs one archetype that ships to 'all'")
    lo, hi = cfg.suppliers_per_item
    lo, hi = max(1, min(lo, len(archetypes))), max(1, min(hi, len(archetypes)))
    max_salvage = economics.groupby("item_id")["salvage_value"].max()
    by_dc = pairs.groupby(["item_id", "dc"])["recent"].sum().sort_values(ascending=False)
    main_dc = by_dc.reset_index().drop_duplicates("item_id").set_index("item_id")["dc"]
    rows = []
    for item in items:
        k = int(rng.integers(lo, hi + 1))
        others = [i for i in range(len(archetypes)) if i != anchor]
        chosen = [anchor, *rng.choice(others, size=min(k - 1, len(others)), replace=False)]
        stats = item_stats.loc[item]
        base_cost = float(stats["price"]) * (1.0 - cfg.margin)
        for a_idx in sorted(int(c) for c in chosen):
            a = archetypes[a_idx]
            jitter = rng.uniform(1 - cfg.cost_jitter, 1 + cfg.cost_jitter)
            cost = max(base_cost * a.cost_factor * jitter, float(max_salvage[item]) * 1.001)
            rows.append(
                {
                    "supplier_id": f"SUP_{a.name}",
                    "item_id": item,
                    "unit_cost": round(cost, 4),
                    "lead_time_mean": a.lead_time_mean,
                    "lead_time_std": a.lead_time_std,
                    "reliability": a.reliability,
                    "capacity": max(float(stats["total"]) * a.capacity_factor, 1.0),
                    "min_order_qty": round(float(stats["per_loc"]) * a.moq_factor, 3),
                    "ships_to": main_dc[item] if a.ships_to_dc else SHIPS_TO_ALL,
                }
            )
    suppliers = pd.DataFrame(rows, columns=list(SUPPLY_COLUMNS["suppliers"]))

    # lanes ----------------------------------------------------------------------------
    median_cost = float(np.median(unit_cost)) if n else 1.0
    lane_rows = []
    for dc in dcs:
        members = [s for s in stores if parent[s] == dc]
        for s in members:
            lane_rows.append((dc, s, cfg.dc_store_cost_frac * median_cost, cfg.dc_store_lead_time))
            if cfg.return_lanes:
                lane_rows.append((s, dc, cfg.dc_store_cost_frac * median_cost,
                                  cfg.dc_store_lead_time))
        m = len(members)
        seen = set()
        for i, s in enumerate(members):
            for step in range(1, min(cfg.n_lateral, (m - 1) // 2 if m > 2 else m - 1) + 1):
                for other in (members[(i + step) % m], members[(i - step) % m]):
                    if other != s and (s, other) not in seen:
                        seen.add((s, other))
                        lane_rows.append(
                            (s, other, cfg.lateral_cost_frac * median_cost, cfg.lateral_lead_time)
                        )
    lanes = pd.DataFrame(lane_rows, columns=list(SUPPLY_COLUMNS["lanes"]))
    return validate_supply(SupplyTables(locations, economics, suppliers, lanes))



def supply_for(
    spec: DatasetSpec,
    history: pd.DataFrame,
    *,
    path: str | None = None,
    use_generated: bool = True,
    derive: SupplyConfig | Mapping[str, Any] | None = None,
) -> SupplyTables:
    """The supply tables of a dataset, from the first source that has them:

    1. a folder ``path`` with locations/economics/suppliers/lanes (``.parquet`` or ``.csv``);
    2. the dataset generator's own tables (synthetic data), when ``use_generated``, restricted
       to the items and store item-locations of ``history`` (DC rows of those items kept);
    3. else derived from ``history`` (canonical panel rows before the decision) by
       :func:`derive_supply` with ``derive``; holding costs per period follow the data's
       frequency unless ``derive`` sets ``periods_per_year``.
    """
    if path:
        return SupplyTables.read(Path(path))
    if spec.generator is not None and use_generated:
        from stockcast.data.io import generated_dir

        tables = SupplyTables.read(generated_dir(spec))
        keys = history[GROUP_IDS].drop_duplicates()
        items = set(keys["item_id"])
        dcs = set(tables.locations.loc[tables.locations["echelon"] == "dc", "location_id"])
        econ = tables.economics
        at_dc = econ["location_id"].isin(dcs) & econ["item_id"].isin(items)
        econ = pd.concat([econ.merge(keys, on=GROUP_IDS), econ[at_dc]], ignore_index=True)
        return SupplyTables(
            locations=tables.locations,
            economics=econ,
            suppliers=tables.suppliers[tables.suppliers["item_id"].isin(items)],
            lanes=tables.lanes,
        )
    keys = history[[*GROUP_IDS, "period", "demand"]].copy()
    price_col = None
    if spec.price:
        source = spec.price.get("list_column") or spec.price.get("column")
        keys["price"] = history[source].to_numpy()
        price_col = "price"
    return derive_supply(keys, derive, price_column=price_col, demand_column="demand", freq=spec.freq)
