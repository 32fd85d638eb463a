"""TFT interpretation: variable importance (the TFT's own selection weights and permutation
importance on held-out data) and attention over encoder time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from pytorch_forecasting import TemporalFusionTransformer, TimeSeriesDataSet

from stockcast.data.spec import DatasetSpec
from stockcast.evaluation.metrics import pinball_loss
from stockcast.forecast.predict import quantiles_of


def interpretation(model: TemporalFusionTransformer, prediction) -> dict:
    """Summed interpretation over all samples of a raw ``Prediction``."""
    return model.interpret_output(prediction.output, reduction="sum")


def variable_importance(model: TemporalFusionTransformer, interp: dict) -> pd.DataFrame:
    """Importance of every input variable, normalised to sum to 1 within each role.

    Returns:
        Columns ``role`` (static / encoder / decoder), ``variable``, ``importance``,
        sorted by role then descending importance.
    """
    rows = []
    for role, names in (
        ("static", model.static_variables),
        ("encoder", model.encoder_variables),
        ("decoder", model.decoder_variables),
    ):
        values = interp[f"{role}_variables"].detach().cpu().numpy().astype(float)
        total = values.sum()
        share = values / total if total > 0 else values
        rows += [
            {"role": role, "variable": n, "importance": float(v)} for n, v in zip(names, share, strict=True)
        ]
    out = pd.DataFrame(rows)
    return out.sort_values(["role", "importance"], ascending=[True, False]).reset_index(drop=True)


def attention_profile(interp: dict, max_encoder_length: int) -> pd.DataFrame:
    """Mean attention by encoder position (``-k`` = k periods before the forecast origin)."""
    att = interp["attention"].detach().cpu().numpy().astype(float)
    att = att / att.sum() if att.sum() > 0 else att
    lags = np.arange(-len(att), 0)
    return pd.DataFrame({"relative_period": lags, "attention": att}).tail(max_encoder_length)


def permutation_importance(
    model: TemporalFusionTransformer,
    dataset: TimeSeriesDataSet,
    *,
    donors: TimeSeriesDataSet | None = None,
    n_repeats: int = 5,
    seed: int = 0,
    max_samples: int | None = None,
    max_donors: int = 4096,
    batch_size: int = 512,
    variables: list[str] | None = None,
    groups: dict[str, list[str]] | None = None,
) -> pd.DataFrame:
    """Permutation importance of every input variable on a (held-out) dataset.

    For each variable its whole path (encoder and decoder periods, so a known-future
    covariate loses its future values too) is replaced by the path of another sample,
    everything else is kept, and the forecast is scored again. The importance is the rise
    of the mean pinball loss (over quantiles, valid horizons and samples: the ``pinball``
    of :func:`stockcast.evaluation.metrics.forecast_metrics`) relative to the unpermuted
    loss: 0.05 means the forecast is 5% worse without the variable's information. Unlike
    the TFT's variable-selection weights (:func:`variable_importance`), which are shares
    within one block (static / encoder / decoder) and need not reflect what the forecast
    depends on, this measure is comparable across roles and blocks.

    Where the replacement paths come from:

    * ``donors=None``: a permutation of ``dataset``'s own samples, among samples with the
      same encoder and decoder lengths. When all samples share one forecast origin (a
      test window as long as the horizon), variables with the same values in every
      series on a date (calendar, holidays, a market-wide index) cannot be scored: their
      importance is NaN; and a covariate is credited only for how it differs between
      series, not for its movement over time.
    * ``donors`` given (e.g. the training windows, :func:`donor_windows`): the path of a
      random donor sample (other series, other dates) whose encoder and decoder are at
      least as long, aligned at the forecast origin: draws from the variable's marginal
      distribution, which also break its alignment with the calendar. Only the
      covariates are taken from the donors, never a target that is scored.

    Every variable sees the same ``n_repeats`` replacements (seeded), which makes the
    ranking less noisy.

    Args:
        model: A trained TFT.
        dataset: Samples to score, e.g. the test window of ``window_dataset``.
        donors: Optional dataset (same dataset parameters as ``dataset``) the
            replacement paths are drawn from.
        n_repeats: Replacements per variable (mean and standard deviation are reported).
        seed: Seed of the replacements and of the sample subsets.
        max_samples: Score at most this many samples (a seeded random subset).
        max_donors: Draw donors from at most this many donor samples (a random subset).
        batch_size: Samples per forward pass.
        variables: Variables to score (default: every static, encoder and decoder variable
            of the model that is not in a group).
        groups: Named groups of variables replaced together (from the same donor) and
            reported as one row, e.g. ``{"price": ["price", "regular_price",
            "discount"]}``. Columns that carry the same information (a price and its
            discount) share it: replaced alone, each one looks unimportant because the
            others still hold it; replaced together they show what the information is
            worth.

    Returns:
        One row per variable or group, most important first (NaN last): ``variable``,
        ``role`` (``static``, ``known``: encoder and decoder, ``unknown``: encoder only;
        a group's distinct roles joined by ``+``), ``columns`` (the replaced variables),
        ``importance`` (mean relative rise of the pinball loss), ``importance_std``
        (across repeats), ``pinball`` (mean loss with the variable replaced),
        ``base_pinball``, ``rank`` (1 = most important).

    Raises:
        ValueError: A multi-target model, an empty dataset, ``n_repeats < 1``, a variable
            the model does not use (or that is in two groups), or a sample no donor is
            long enough for.
    """
    if n_repeats < 1:
        raise ValueError(f"n_repeats must be >= 1, got {n_repeats}")
    rng = np.random.default_rng(seed)
    x, target = _collate(dataset, max_samples, rng, "dataset")
    if target is None:
        raise ValueError("permutation_importance supports single-target models only")
    n = len(target)

    used = list(
        dict.fromkeys([*model.static_variables, *model.encoder_variables, *model.decoder_variables])
    )
    groups = {str(k): list(v) for k, v in (groups or {}).items()}
    grouped = [v for cols in groups.values() for v in cols]
    if len(set(grouped)) < len(grouped):
        raise ValueError(f"permutation_importance: a variable is in two groups: {groups}")
    singles = [v for v in used if v not in grouped] if variables is None else list(variables)
    units = {**{v: [v] for v in singles}, **groups}
    unknown = [v for cols in units.values() for v in cols if v not in used]
    if unknown:
        raise ValueError(f"permutation_importance: the model does not use variables {unknown}")
    reals, cats = list(model.hparams.x_reals), list(model.hparams.x_categoricals)

    def role_of(name: str) -> str:
        if name in model.static_variables:
            return "static"
        return "known" if name in model.decoder_variables else "unknown"

    levels = np.asarray(quantiles_of(model))
    y = target.detach().cpu().numpy().astype(float)
    valid = np.arange(y.shape[1])[None, :] < x["decoder_lengths"].cpu().numpy()[:, None]

    def score(inputs: dict) -> float:
        outs = []
        with torch.no_grad():
            for start in range(0, n, batch_size):
                chunk = _take(inputs, slice(start, start + batch_size), n)
                outs.append(model.to_quantiles(model(chunk)).detach().cpu().numpy())
        q = np.maximum(np.sort(np.concatenate(outs).astype(float), axis=-1), 0.0)
        loss = np.mean([pinball_loss(y, q[..., j], lvl) for j, lvl in enumerate(levels)], axis=0)
        return float(loss[valid].mean())

    enc_len, dec_len = x["encoder_lengths"].cpu().numpy(), x["decoder_lengths"].cpu().numpy()
    if donors is None:
        pool = x
        strata = enc_len * 100_000 + dec_len
        picks = []
        for _ in range(n_repeats):
            pick = np.arange(n)
            for value in np.unique(strata):
                rows = np.flatnonzero(strata == value)
                pick[rows] = rng.permutation(rows)
            picks.append(pick)
    else:
        pool, _ = _collate(donors, max_donors, rng, "donors")
        d_enc = pool["encoder_lengths"].cpu().numpy()
        d_dec = pool["decoder_lengths"].cpu().numpy()
        picks = [np.empty(n, dtype=int) for _ in range(n_repeats)]
        for e, d in {(int(a), int(b)) for a, b in zip(enc_len, dec_len, strict=True)}:
            rows = np.flatnonzero((enc_len == e) & (dec_len == d))
            fits = np.flatnonzero((d_enc >= e) & (d_dec >= d))
            if not len(fits):
                raise ValueError(
                    f"permutation_importance: no donor has an encoder of >= {e} and a decoder "
                    f"of >= {d} periods"
                )
            for pick in picks:
                pick[rows] = rng.choice(fits, len(rows))
    # position of each recipient period in its donor's encoder (aligned at the origin)
    steps = torch.arange(x["encoder_cont"].shape[1])
    enc_rows = torch.as_tensor(enc_len)[:, None]
    enc_mask = steps[None, :] < enc_rows
    dec_mask = torch.arange(x["decoder_cont"].shape[1])[None, :] < torch.as_tensor(dec_len)[:, None]

    def replaced(key: str, col: int, pick: np.ndarray) -> torch.Tensor:
        mine, theirs = x[key][..., col], pool[key][torch.as_tensor(pick)][..., col]
        if key.startswith("encoder"):
            offset = pool["encoder_lengths"][torch.as_tensor(pick)][:, None] - enc_rows
            at = (offset + steps[None, :]).clamp(0, theirs.shape[1] - 1)
            return torch.where(enc_mask, theirs.gather(1, at), mine)
        return torch.where(dec_mask, theirs[:, : mine.shape[1]], mine)

    was_training = model.training
    model.eval()
    try:
        base = score(x)
        rows = []
        for name, cols in units.items():
            losses, moved_any = [], False
            for pick in picks:
                shuffled, moved = dict(x), False
                for var in cols:
                    if var in reals:
                        keys, col = ("encoder_cont", "decoder_cont"), reals.index(var)
                    else:
                        keys, col = ("encoder_cat", "decoder_cat"), cats.index(var)
                    for key in keys:
                        if shuffled[key] is x[key]:
                            shuffled[key] = x[key].clone()
                        shuffled[key][..., col] = replaced(key, col, pick)
                        moved |= not torch.equal(shuffled[key][..., col], x[key][..., col])
                losses.append(score(shuffled) if moved else base)
                moved_any |= moved
            rise = (np.asarray(losses) - base) / base if base > 0 else np.zeros(len(losses))
            if not moved_any:
                rise = np.full(len(losses), np.nan)
            rows.append(
                {
                    "variable": name,
                    "role": "+".join(dict.fromkeys(role_of(v) for v in cols)),
                    "columns": ",".join(cols),
                    "importance": float(rise.mean()),
                    "importance_std": float(rise.std(ddof=1)) if len(rise) > 1 else 0.0,
                    "pinball": float(np.mean(losses)),
                    "base_pinball": base,
                }
            )
    finally:
        model.train(was_training)
    out = pd.DataFrame(rows).sort_values("importance", ascending=False, na_position="last")
    out = out.reset_index(drop=True)
    out["rank"] = np.arange(1, len(out) + 1)
    return out


def price_group(spec: DatasetSpec) -> dict[str, list[str]]:
    """The dataset's price columns as one group for :func:`permutation_importance`.

    The selling price, the list price and the discount (``spec.price``: ``column``,
    ``list_column``, ``discount_column``) describe one driver (the price paid is the list
    price less the discount), so they are replaced together and reported under the
    selling price's name (also when the model sees the price only as list price and
    discount). Empty when the dataset declares no price column; only columns that are
    known-future reals of the model take part.
    """
    price = dict(spec.price or {})
    column = price.get("column")
    cols = [price.get(k) for k in ("column", "list_column", "discount_column")]
    seen = [c for c in dict.fromkeys(cols) if c and c in spec.known_reals]
    if not column or not seen:
        return {}
    return {column: seen}


def donor_windows(training: TimeSeriesDataSet, panel: pd.DataFrame) -> TimeSeriesDataSet:
    """Full-length windows (longest encoder and decoder) of ``training``'s own data.

    The donor pool of :func:`permutation_importance`: covariate paths of every series at
    every date of the training data, with the training dataset's encoders and scalers.
    """
    return TimeSeriesDataSet.from_dataset(
        training,
        panel,
        min_encoder_length=training.max_encoder_length,
        min_prediction_length=training.max_prediction_length,
        stop_randomization=True,
        predict=False,
    )


def _collate(
    dataset: TimeSeriesDataSet, limit: int | None, rng: np.random.Generator, what: str
) -> tuple[dict, torch.Tensor | None]:
    """All samples of ``dataset`` (or a random ``limit`` of them) as one batch."""
    n = len(dataset)
    if n == 0:
        raise ValueError(f"permutation_importance: the {what} has no samples")
    index = np.arange(n)
    if limit is not None and n > limit:
        index = np.sort(rng.choice(n, int(limit), replace=False))
    loader = dataset.to_dataloader(
        train=False, batch_size=len(index), sampler=index.tolist(), num_workers=0
    )
    x, (target, _) = next(iter(loader))
    return x, target if isinstance(target, torch.Tensor) else None


def _take(x: dict, rows, n: int) -> dict:
    """Rows ``rows`` of every per-sample tensor (first dimension ``n``) of a batch dict."""
    return {
        k: v[rows] if isinstance(v, torch.Tensor) and v.ndim and len(v) == n else v
        for k, v in x.items()
    }
