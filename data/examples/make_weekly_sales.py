"""Write the bring-your-own-data example: three small CSVs in a shape unlike Stallion's.

The data is our own: it comes from :func:`stockcast.data.synthetic.generate` (seed 19),
renamed and reshaped the way a retailer's export might look:

* ``weekly_sales.csv``: store, product, week_start (``dd/mm/YYYY``), units_sold, price,
  on_promo. Weeks without sales are not listed (as in many POS exports), so the config
  fills them with zero demand (``gaps: zero``).
* ``weather.csv``: store, week (``YYYYmmdd``), temp_forecast_c: the weather forecast per
  store and week, four weeks past the sales history.
* ``products.csv``: product, category (static attributes).

Run from the repository root: ``python data/examples/make_weekly_sales.py``. The output is
deterministic; ``conf/data/example_weekly.yaml`` maps it onto the canonical schema.
"""

from __future__ import annotations

from pathlib import Path

from stockcast.data.synthetic import generate

HERE = Path(__file__).resolve().parent


def main(out: Path = HERE) -> dict[str, Path]:
    """Generate the example CSVs into ``out`` and return their paths."""
    data = generate(
        n_items=3,
        n_stores=4,
        n_dcs=2,
        periods=104,
        freq="W-MON",
        seed=19,
        start="2022-01-03",
        horizon=4,
        intermittent_share=0.34,  # with this seed: one slow mover (P1002) among three
        quantiles=None,
    )
    stores = {f"store_{k:03d}": f"S{k + 1:02d}" for k in range(4)}
    products = {f"item_{k:03d}": f"P{1001 + k}" for k in range(3)}

    sales = data.demand.merge(
        data.covariates["prices"], on=["item_id", "location_id", "period"], how="left"
    )
    sales = sales.assign(
        store=sales["location_id"].astype(str).map(stores),
        product=sales["item_id"].astype(str).map(products),
        week_start=sales["period"].dt.strftime("%d/%m/%Y"),
        units_sold=sales["demand"],
        on_promo=sales["promo"],
    )
    # POS exports list only weeks with sales: drop zero weeks inside each series
    first_last = sales.groupby(["store", "product"])["period"].transform
    inner = (sales["period"] > first_last("min")) & (sales["period"] < first_last("max"))
    sales = sales[~(inner & (sales["units_sold"] == 0))]
    sales = sales[["store", "product", "week_start", "units_sold", "price", "on_promo"]]

    weather = data.covariates["weather"].assign(
        store=lambda w: w["location_id"].astype(str).map(stores),
        week=lambda w: w["period"].dt.strftime("%Y%m%d"),
        temp_forecast_c=lambda w: w["temperature_forecast"],
    )[["store", "week", "temp_forecast_c"]]

    items = data.covariates["items"]
    product_table = items.assign(product=items["item_id"].map(products))[["product", "category"]]

    paths = {
        "weekly_sales": out / "weekly_sales.csv",
        "weather": out / "weather.csv",
        "products": out / "products.csv",
    }
    sales.to_csv(paths["weekly_sales"], index=False)
    weather.to_csv(paths["weather"], index=False)
    product_table.to_csv(paths["products"], index=False)
    return paths


if __name__ == "__main__":
    for name, path in main().items():
        print(f"{name}: {path} ({path.stat().st_size / 1024:.1f} KB)")
