"""stockcast.data.spec: config mistakes raise ValueError naming the key; plausibility rules."""

from __future__ import annotations

import dataclasses

import pytest

from stockcast.data.spec import DatasetSpec


def test_default_rules_follow_the_price_section(stallion_spec, weekly_spec, load_spec):
    assert stallion_spec.value_rules() == {
        "demand": {"spike": 100.0, "spike_quantile": 0.9},
        "price_regular": {"min": 0.0},  # price_actual: min off in stallion.yaml
    }
    synthetic = load_spec("synthetic").value_rules()
    assert synthetic["price"] == synthetic["regular_price"] == {"min": 0.0}
    assert weekly_spec.value_rules() == {"demand": {"spike": 100.0, "spike_quantile": 0.9}}
    assert stallion_spec.short_series == "reject" and weekly_spec.min_series_length == 13 + 8


def test_entries_merge_into_defaults(stallion_spec):
    spec = dataclasses.replace(
        stallion_spec,
        plausibility={"demand": {"spike_quantile": 0.95}, "price_regular": {"max": 1e5}},
    )
    assert spec.value_rules()["demand"] == {"spike": 100.0, "spike_quantile": 0.95}
    assert spec.value_rules()["price_regular"] == {"min": 0.0, "max": 1e5}
    off = dataclasses.replace(stallion_spec, plausibility={"demand": {"spike": "off"}})
    assert "demand" not in off.value_rules()


@pytest.mark.parametrize(
    ("plausibility", "match"),
    [
        ({"region": {"min": 0}}, r"plausibility\.region: not 'demand' or a numeric covariate"),
        ({"demand": {"spikes": 3}}, r"plausibility\.demand: unknown rule\(s\) \['spikes'\]"),
        ({"demand": {"spike": "high"}}, r"plausibility\.demand\.spike must be a number or off"),
        ({"demand": {"spike": 0}}, r"spike must be > 0"),
        ({"demand": {"spike_quantile": 1.5}}, r"spike_quantile must lie in \(0, 1\)"),
        ({"price_regular": {"max": -1}}, r"price_regular: min 0.0 exceeds max -1"),
        ({"demand": [1]}, r"plausibility\.demand must be off or a mapping"),
    ],
)
def test_bad_plausibility_config_names_the_key(stallion_spec, plausibility, match):
    with pytest.raises(ValueError, match=match):
        DatasetSpec(**{**stallion_spec.to_dict(), "plausibility": plausibility})


def test_bad_short_series_policy(stallion_spec):
    with pytest.raises(ValueError, match="short_series must be reject or drop, not 'keep'"):
        DatasetSpec(**{**stallion_spec.to_dict(), "short_series": "keep"})


def test_specs_saved_before_the_new_fields_still_load(stallion_spec):
    old = stallion_spec.to_dict()
    del old["plausibility"], old["short_series"]
    spec = DatasetSpec(**old)
    assert spec.short_series == "reject" and "price_regular" in spec.value_rules()


# --------------------------------------------------------------------------- table and source config
@pytest.mark.parametrize(
    ("tables", "match"),
    [
        ({"x": {"path": "x.csv", "keys": ["sku"]}}, "unknown join key"),
        ({"x": {"path": "x.csv"}}, "keys"),
        ({"x": {"keys": ["period"]}}, "needs a 'path'"),
        ({"x": {"path": "x.csv", "keys": ["period"], "covariates": ["nope"]}}, "have no role"),
        ({"x": {"path": "x.csv", "keys": ["period"], "unmatched": "drop"}}, "unmatched"),
        ({"demand": {"path": "x.csv", "keys": ["period"]}}, "reserved"),
    ],
)
def test_bad_table_config(stallion_spec, tables, match):
    with pytest.raises(ValueError, match=match):
        DatasetSpec(**{**stallion_spec.to_dict(), "tables": tables})


@pytest.mark.parametrize(
    ("source", "match"),
    [
        ({"format": "csv"}, "source.path is required"),
        ({"path": "d.parquet", "generator": {"n_items": 3}}, "needs a _target_"),
    ],
)
def test_bad_source_config(stallion_spec, source, match):
    with pytest.raises(ValueError, match=match):
        DatasetSpec(**{**stallion_spec.to_dict(), "source": source})
