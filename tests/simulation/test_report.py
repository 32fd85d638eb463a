"""The HTML report leads with the answer: sentences, the trade-off plot, then the tables,
the details folded below and the setting last."""

import matplotlib.pyplot as plt
import pandas as pd

from stockcast.simulation.report import html_report


def test_report_opens_with_the_answer_then_the_tradeoff_plot(tmp_path):
    figs = {}
    for name in ("inventory.png", "service_inventory_tradeoff.png"):
        figs[name], _ = plt.subplots()
    table = pd.DataFrame({"policy": ["stockcast"], "fill": [0.95]})
    path = html_report(tmp_path / "r.html", "bt", ["setting note"], {"Matched": table}, figs,
                       headline=["at 95% fill stockcast holds 40.0% less", "  frontier gap"],
                       lead_figure="service_inventory_tradeoff.png",
                       details={"KPIs per location": table})
    for fig in figs.values():
        plt.close(fig)
    text = path.read_text(encoding="utf-8")
    order = [text.index(s) for s in ("The answer", "at 95% fill stockcast holds 40.0% less",
                                     "<img", "<h2>Matched</h2>", "<h2>inventory.png</h2>",
                                     "<details><summary><b>KPIs per location",
                                     "<h2>Setting</h2>", "setting note")]
    assert order == sorted(order)
    assert "<h2>service_inventory_tradeoff.png</h2>" not in text  # shown once, as the lead
    assert text.count("<img") == 2
