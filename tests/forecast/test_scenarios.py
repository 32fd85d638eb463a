"""stockcast.forecast.scenarios: the planned-price columns a model responds to."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from stockcast.forecast.interpret import price_group
from stockcast.forecast.scenarios import price_settings, with_price

PRICE = {"column": "price", "list_column": "list", "discount_column": "discount",
         "discount_scale": 100}


def _spec(known: list[str], price: dict | None = PRICE) -> SimpleNamespace:
    """The fields of a DatasetSpec the price helpers read."""
    return SimpleNamespace(name="toy", known_reals=known, price=price)


def test_the_model_may_see_the_price_paid_or_the_list_price_and_discount():
    assert price_settings(_spec(["price", "list", "discount"]))["column"] == "price"
    assert price_settings(_spec(["list", "discount"]))["discount_column"] == "discount"
    assert price_group(_spec(["list", "discount"])) == {"price": ["list", "discount"]}
    with pytest.raises(ValueError, match="toy.*'price'.*discount column.*known_reals"):
        price_settings(_spec(["list"]))          # no way to see a planned price change
    with pytest.raises(ValueError, match="no price column declared"):
        price_settings(_spec(["list"], price={}))


def test_a_planned_price_rewrites_price_and_discount_together():
    panel = pd.DataFrame({"item_id": ["a"] * 3, "location_id": ["x"] * 3, "time_idx": [0, 1, 2],
                          "price": [8.0, 8.0, 10.0], "list": [10.0] * 3, "discount": [20.0, 20.0, 0.0]})
    out = with_price(panel, _spec(["list", "discount"]), origin=0, factor=0.7)
    assert out["price"].tolist() == [8.0, 7.0, 7.0]
    assert out["discount"].round(6).tolist() == [20.0, 30.0, 30.0]
