"""stockcast.data.objects.build: plain config dicts -> objects, the way Hydra would build them."""

from __future__ import annotations

import ast
import functools
from collections import OrderedDict

import pytest
from hydra.utils import instantiate
from pytorch_forecasting.data import GroupNormalizer

from stockcast import PROJECT_ROOT
from stockcast.data.objects import build, locate


def test_builds_nested_targets_and_plain_containers():
    cfg = {
        "_target_": "collections.OrderedDict",
        "inner": {"_target_": "fractions.Fraction", "numerator": 3, "denominator": 4},
        "plain": {"a": [1, {"_target_": "fractions.Fraction", "_args_": [1, 2]}]},
        "text": "x",
    }
    out = build(cfg)
    assert isinstance(out, OrderedDict)
    assert str(out["inner"]) == "3/4"
    assert out["plain"] == {"a": [1, 0.5]} and type(out["plain"]) is dict
    assert out["text"] == "x"


def test_same_objects_as_hydra_for_the_synthetic_normalizer():
    cfg = {
        "target_normalizer": {
            "_target_": "pytorch_forecasting.data.GroupNormalizer",
            "groups": ["item_id", "location_id"],
            "transformation": "softplus",
        },
        "add_relative_time_idx": True,
    }
    ours, hydras = build(cfg), instantiate(cfg, _convert_="all")
    assert set(ours) == set(hydras) and ours["add_relative_time_idx"] is True
    for norm in (ours["target_normalizer"], hydras["target_normalizer"]):
        assert isinstance(norm, GroupNormalizer)
    assert ours["target_normalizer"].get_params() == hydras["target_normalizer"].get_params()
    assert type(ours["target_normalizer"].groups) is list


def test_partial_and_not_recursive():
    part = build({"_target_": "fractions.Fraction", "_partial_": True, "denominator": 3})
    assert isinstance(part, functools.partial) and str(part(2)) == "2/3"
    kept = build(
        {"_target_": "builtins.dict", "_recursive_": False, "g": {"_target_": "os.getcwd"}}
    )
    assert kept == {"g": {"_target_": "os.getcwd"}}


def test_locate_class_attribute():
    assert locate("pytorch_forecasting.data.GroupNormalizer") is GroupNormalizer
    assert locate("fractions.Fraction.from_float")(0.5).denominator == 2


@pytest.mark.parametrize(
    ("cfg", "match"),
    [
        ({"_target_": "stockcast.data.nope.generate"}, r"gen\._target_: cannot import"),
        ({"_target_": "stockcast.data.synthetic.nope"}, "has no attribute 'nope'"),
        ({"_target_": "fractions..Fraction"}, "not a dotted import path"),
        ({"_target_": "fractions.Fraction", "_wat_": 1}, r"unsupported key\(s\) \['_wat_'\]"),
    ],
)
def test_errors_name_the_config_key(cfg, match):
    with pytest.raises(ValueError, match=match):
        build(cfg, "gen")


def test_no_hydra_or_omegaconf_in_the_data_layer():
    files = [*(PROJECT_ROOT / "src/stockcast/data").rglob("*.py")]
    files.append(PROJECT_ROOT / "src/stockcast/forecast/dataset.py")
    offenders = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{path.name}: {n}" for n in names if n.split(".")[0] in ("hydra", "omegaconf")
            ]
    assert len(files) > 8 and offenders == []
