"""``train.py``: canonical panel -> TFT (Lightning) -> calibrated, tested, registered model.

``run(cfg)`` returns the metrics and the objects it made (tests call it directly):

1. builds the dataset spec and panel (``cfg.data``, the first ``cfg.max_series`` series) and
   the time split (test window never used for training, early stopping or selection);
2. opens the MLflow run (rank 0 only; a resumed checkpoint continues its run; a Hydra
   multirun attaches it to the sweep's parent run) and logs the resolved config, the data's
   fingerprint and the split;
3. trains the TFT (``cfg.tft``, warm-started from ``cfg.init_from`` if given) with the
   ``cfg.trainer`` and ``cfg.callbacks`` on :class:`~stockcast.forecast.datamodule.TFTDataModule`;
4. calibrates its quantiles on its forecasts of the validation window
   (:func:`~stockcast.forecast.protocol.cross_validate`), optionally refits on train +
   validation (``cfg.refit``), and scores the served model on the test window;
5. logs interpretation (variable importance, attention, permutation importance), fan charts,
   the checkpoint, and registers the pyfunc (``cfg.model_name``).

Beside steps 3-5, with ``cfg.prefetch_baselines``, a second process computes the baseline
forecasts ``evaluate.py`` will compare this model with (``cfg.baselines`` at the test-window
origins of ``cfg.evaluation``) into evaluate's cache; the training waits for it at the end.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import lightning.pytorch as L
import matplotlib.pyplot as plt
import mlflow
import pandas as pd
import torch
from hydra.utils import instantiate
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, open_dict

from stockcast.config import build_baselines, test_window_request
from stockcast.cpus import usable_cpus, whole_number
from stockcast.data.io import read_source, source_path
from stockcast.data.panel import load_panel, select_series
from stockcast.data.spec import DatasetSpec
from stockcast.evaluation.metrics import calibrated_metrics, mase_scale, metrics_by_horizon
from stockcast.forecast.bundle import ForecastBundle, load_checkpoint
from stockcast.forecast.cache import BackgroundFill, CachedForecaster
from stockcast.forecast.calibration import QuantileCalibration, fit_calibration
from stockcast.forecast.datamodule import TFTDataModule
from stockcast.forecast.dataset import TimeSplit, window_dataset
from stockcast.forecast.interpret import (
    attention_profile,
    donor_windows,
    interpretation,
    permutation_importance,
    price_group,
    variable_importance,
)
from stockcast.forecast.protocol import by_model, cross_validate, rolling_origins
from stockcast.forecast.refit import (
    LearningRateRecorder,
    best_epochs,
    learning_rate_schedule,
    refit,
)
from stockcast.forecast.scenarios import as_of
from stockcast.forecast.schedule import cosine_learning_rates
from stockcast.forecast.warm_start import warm_start
from stockcast.plots.forecast import (
    attention_chart,
    fan_chart,
    importance_chart,
    permutation_chart,
    pick_series,
)
from stockcast.schema import GROUP_IDS, TIME_IDX
from stockcast.tracking.console import quiet_third_party
from stockcast.tracking.mlflow_utils import (
    log_config,
    log_fingerprint,
    log_table,
    multirun_parent_id,
    setup_tracking,
    tracked_run,
)
from stockcast.tracking.models import log_and_register
from stockcast.tracking.registry import load_bundle, resolve_model

RUN_ID_FILE = "mlflow_run_id"
#: Exit code of a training stopped by SIGTERM (128 + signal 15, as a shell reports it).
PREEMPTED_EXIT_CODE = 143

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a training run produced."""

    run_id: str | None
    metrics: dict[str, float]
    model_uri: str | None = None
    model_version: str | None = None
    forecast: pd.DataFrame | None = None
    importance: pd.DataFrame | None = None
    permutation_importance: pd.DataFrame | None = None
    best_checkpoint: str | None = None
    output_dir: str | None = None
    timings: dict[str, float] = field(default_factory=dict)


def is_rank_zero() -> bool:
    return rank_zero_only.rank == 0


def torch_threads(setting: int | str | None, cpus: int | None = None, load: float | None = None) -> int | None:
    """Intra-op threads for ``cfg.torch_threads``: None = leave torch's default; a positive
    number as given; ``auto`` = the CPUs not busy now (``cpus`` minus the 1-minute load
    average, rounded), at least 1 and at most torch's default.

    Raises:
        ValueError: Neither null, ``auto`` nor a positive integer (names the key).
    """
    if setting is None:
        return None
    if str(setting) == "auto":
        cpus = cpus or usable_cpus()
        load = os.getloadavg()[0] if load is None else load
        return max(1, min(torch.get_num_threads(), cpus - round(load)))
    threads = whole_number(setting, 1)
    if threads is None:
        raise ValueError(f"torch_threads={setting!r}: use null, auto or a positive number of threads")
    return threads


def optimized_value(result: TrainResult, name: str | None) -> float | None:
    """The metric a Hydra sweeper optimizes (``cfg.optimized_metric``), failing loudly.

    Raises:
        KeyError: The run did not produce that metric (names the metrics it did produce).
    """
    if not name:
        return None
    if not is_rank_zero():
        return None
    if name not in result.metrics:
        raise KeyError(
            f"optimized_metric={name!r} is not a metric of this run; it produced "
            f"{sorted(result.metrics)}"
        )
    return float(result.metrics[name])


def run(cfg: DictConfig) -> TrainResult:
    """Train, calibrate, test on the held-out window, log everything and register the model."""
    L.seed_everything(int(cfg.seed), workers=True)
    threads = torch_threads(cfg.get("torch_threads"))
    if threads:
        torch.set_num_threads(threads)
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    spec: DatasetSpec = instantiate(cfg.data)
    panel = select_series(load_panel(spec), None, cfg.get("max_series"))
    split = TimeSplit.from_panel(panel, spec)

    _ensemble(cfg)  # a bad ensemble or schedule setting fails before any run exists
    _tft_factory(cfg)
    requeued = _requeued_checkpoint(cfg, output_dir)
    if requeued:
        log.info("SLURM requeue: resuming from %s", requeued)
        with open_dict(cfg):
            cfg.ckpt_path = requeued
    resume_run = _run_to_resume(cfg.get("ckpt_path"))
    setup_tracking()
    init = _init_from(cfg)
    context = nullcontext()
    if is_rank_zero():
        context = tracked_run(
            cfg.logger.experiment_name,
            run_name=cfg.get("run_name") or f"{spec.name}-{output_dir.name}",
            tags={
                "stockcast.task": "train",
                "stockcast.dataset": spec.name,
                **({"stockcast.init_from": f"{init[0].name}/{init[0].version}"} if init else {}),
                **dict(cfg.get("tags") or {}),
            },
            run_id=resume_run,
            parent_run_id=None if resume_run else _sweep_parent(),
        )
    with context as active:
        run_id = active.info.run_id if active else None
        if run_id:
            (output_dir / RUN_ID_FILE).write_text(run_id)
            if not resume_run:
                log_config(cfg)
                log_fingerprint(panel, name=spec.name, source=str(source_path(spec)), context="training")
                mlflow.log_params({f"split.{k}": v for k, v in split.as_dict().items()})
        prefetch = _prefetch_baselines(cfg, spec, panel, split)
        try:
            result = _train(cfg, spec, panel, split, output_dir, run_id, init[1] if init else None)
        except BaseException:
            if prefetch is not None:
                prefetch.stop()
            raise
        if prefetch is not None:
            _finish_prefetch(prefetch, run_id, result)
        return result


def _prefetch_baselines(cfg: DictConfig, spec: DatasetSpec, panel: pd.DataFrame, split: TimeSplit):
    """``prefetch_baselines``: evaluate.py's baseline forecasts of this model's test window
    (``cfg.baselines`` at the rolling origins of ``cfg.evaluation``), computed in a second
    process while the TFT trains, into evaluate's cache (``evaluation.cache_dir``), so the
    evaluation that follows reads them instead of fitting them. Rank 0 only; None when off,
    without a cache, or when the cache already holds every table."""
    pre = cfg.get("prefetch_baselines") or {}
    evaluation = cfg.get("evaluation") or {}
    cache = evaluation.get("cache_dir")
    if not pre.get("enabled") or not cache or not is_rank_zero():
        return None
    forecasters = build_baselines(cfg.get("baselines"), spec)
    jobs = pre.get("n_jobs")
    if jobs is not None:  # an execution setting: the tables and their cache keys are the same
        forecasters = [dataclasses.replace(f, n_jobs=jobs) if hasattr(f, "n_jobs") else f for f in forecasters]
    origins, horizon = test_window_request(evaluation, split, int(spec.window["max_prediction_length"]))
    quantiles = [float(q) for q in cfg.quantiles]
    todo = [f for f in forecasters if not CachedForecaster(f, cache).holds(panel, origins, horizon, quantiles)]
    if not todo:
        return None
    log.info("computing %s for evaluate.py beside the training", ", ".join(f.name for f in todo))
    return BackgroundFill(todo, cache, panel, origins, horizon, quantiles, initializer=quiet_third_party)


def _finish_prefetch(prefetch: BackgroundFill, run_id: str | None, result: TrainResult) -> None:
    """Wait for the baselines computed beside the training; log their times (never fails)."""
    seconds, error, waited = prefetch.wait()
    result.timings["baseline_prefetch_wait_s"] = waited
    if error:
        log.warning("baselines beside the training failed (evaluate.py will compute them): %s", error)
    else:
        log.info("baselines for evaluate.py ready: %s (waited %.0f s after training)",
                 ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()), waited)
    if run_id:  # the training run is still active
        mlflow.log_metrics({"time_baseline_prefetch_wait_s": waited,
                            **{f"time_baseline_prefetch_{k}_s": v for k, v in seconds.items()}})


def _init_from(cfg: DictConfig):
    """The registered version and model named by ``cfg.init_from`` (warm start), or None."""
    ref = cfg.get("init_from")
    if not ref:
        return None
    if cfg.get("ckpt_path"):
        raise ValueError("init_from and ckpt_path exclude each other: resume OR warm-start")
    version = resolve_model(ref, cfg.model_name)
    return version, load_bundle(version)


def _train(
    cfg: DictConfig,
    spec: DatasetSpec,
    panel: pd.DataFrame,
    split: TimeSplit,
    output_dir: Path,
    run_id: str | None,
    init: ForecastBundle | None = None,
) -> TrainResult:
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    loader = cfg.loader
    data = TFTDataModule(
        panel,
        spec,
        split,
        batch_size=int(loader.batch_size),
        num_workers=loader.num_workers,
        pin_memory=bool(loader.pin_memory),
    )
    training = data.training
    timings["dataset_s"] = time.perf_counter() - t0

    size, kind, per_seed = _ensemble(cfg)
    fits = []
    t0 = time.perf_counter()
    for member in range(size if kind == "seeds" else 1):
        fits.append(_fit(cfg, data, init, run_id, output_dir, member, size if kind == "snapshots" else per_seed))
    timings["fit_s"] = time.perf_counter() - t0
    if not is_rank_zero():
        return TrainResult(run_id=None, metrics={}, output_dir=str(output_dir))
    trainer, checkpoint = fits[0].trainer, fits[0].checkpoint
    if kind == "snapshots":  # the k best epochs of one training
        best_paths = fits[0].best_k
    else:  # each seed's best epoch, or its `ensemble.snapshots` best epochs
        best_paths = [p for f in fits for p in f.best_k[:per_seed]]

    history = panel[panel[TIME_IDX] <= split.val_end]
    served = _calibrate_refit_test(cfg, spec, panel, split, output_dir, best_paths, training, init, fits, timings)
    metrics = served.metrics
    metrics["best_val_loss"] = float(checkpoint.best_model_score) if checkpoint and checkpoint.best_model_score is not None else float("nan")
    metrics["epochs_trained"] = float(trainer.current_epoch)
    metrics["ensemble_size"] = float(len(best_paths))

    interp = interpretation(served.models[0], served.test_pred)
    importance = variable_importance(served.models[0], interp)
    permutation = _permutation_importance(cfg, spec, panel, split, served.models[0], served.training, timings)
    result = TrainResult(
        run_id=run_id,
        metrics=metrics,
        forecast=served.test_table,
        importance=importance,
        permutation_importance=permutation,
        best_checkpoint=served.checkpoints[0],
        output_dir=str(output_dir),
        timings=timings,
    )
    if run_id is None:
        return result

    mlflow.log_metrics({k: v for k, v in metrics.items() if pd.notna(v)})
    mlflow.log_metrics({f"time_{k}": v for k, v in timings.items()})
    # every rank's encoders (gathered by the datamodule under DDP): identical by construction
    mlflow.log_params({f"encoder_fingerprint.rank{r}": fp for r, fp in enumerate(data.rank_fingerprints)})
    by_h = metrics_by_horizon(served.test_table, prefix="test", scale=mase_scale(history))
    for _, row in by_h.iterrows():
        mlflow.log_metrics({"test_mae_by_horizon": row["test_mae"], "test_pinball_by_horizon": row["test_pinball"]}, step=int(row["horizon"]))
    log_table(by_h, "metrics/test_metrics_by_horizon.csv")
    log_table(importance, "interpretation/variable_importance.csv")
    if permutation is not None:
        log_table(permutation, "interpretation/permutation_importance.csv")
    mlflow.log_text(served.test_table.to_csv(index=False), "forecasts/test_forecast.csv")
    if cfg.get("figures", True):
        _log_figures(interp, importance, panel, served.test_table, spec, permutation)
    for path in served.checkpoints:
        mlflow.log_artifact(path, "checkpoints")

    if cfg.get("register_model", True):
        bundle = ForecastBundle(
            served.models,
            served.training.get_parameters(),
            spec,
            panel["period"].min(),
            panel[GROUP_IDS].drop_duplicates().to_numpy().tolist(),
            served.calibration,
        )
        raw = read_source(spec)
        raw = raw[raw[spec.columns["item_id"]].astype(str).isin(panel["item_id"].unique())]
        tags = {
            "run_id": run_id,
            "dataset": spec.name,
            # last period of the data it was trained and tested on: the monitor checks after it
            "data_end": str(pd.Timestamp(panel["period"].max()).date()),
            **{k: f"{v:.6g}" for k, v in metrics.items() if k.startswith("test_")},
        }
        result.model_uri, result.model_version = log_and_register(
            bundle, [Path(c) for c in served.checkpoints], raw, output_dir / "model_artifacts", cfg.model_name, tags
        )
    return result


@dataclass
class _Fit:
    """One training of one ensemble member."""

    trainer: L.Trainer
    checkpoint: ModelCheckpoint | None
    lr_record: LearningRateRecorder
    best: str
    best_k: list[str]


def _ensemble(cfg: DictConfig) -> tuple[int, str, int]:
    """``ensemble.size``, ``ensemble.kind`` (``seeds`` | ``snapshots``) and, for seeds,
    ``ensemble.snapshots`` (the best epochs kept of each seed's training, default 1),
    checked."""
    ens = cfg.get("ensemble") or {}
    size, kind = int(ens.get("size", 1)), str(ens.get("kind", "seeds"))
    if size < 1 or kind not in ("seeds", "snapshots"):
        raise ValueError(f"ensemble.size must be >= 1 and ensemble.kind seeds or snapshots, got {size}, {kind!r}")
    per_seed = whole_number(ens.get("snapshots") or 1, 1)
    if per_seed is None:
        raise ValueError(f"ensemble.snapshots must be a whole number >= 1, got {ens.get('snapshots')!r}")
    if per_seed > 1 and kind != "seeds":
        raise ValueError("ensemble.snapshots keeps several epochs of each seed: it needs ensemble.kind=seeds "
                         "(kind=snapshots keeps ensemble.size epochs of one training)")
    if size > 1 and cfg.get("ckpt_path"):
        raise ValueError("ckpt_path resumes one training: it cannot be combined with ensemble.size > 1")
    several_epochs = per_seed > 1 or (size > 1 and kind == "snapshots")  # of one training
    if several_epochs and (cfg.get("refit") or {}).get("enabled"):
        raise ValueError("refit.enabled retrains each member: use ensemble.kind=seeds with it "
                         "(one epoch per seed, ensemble.snapshots=1)")
    return size, kind, per_seed


def _tft_factory(cfg: DictConfig):
    """``cfg.tft`` as a factory of the dataset, with the learning rate of ``cfg.lr_schedule``:
    ``plateau`` keeps ``tft.learning_rate`` (pytorch-forecasting's ReduceLROnPlateau);
    ``cosine`` passes the per-epoch list of :func:`cosine_learning_rates` over
    ``trainer.max_epochs``."""
    schedule = dict(cfg.get("lr_schedule") or {"kind": "plateau"})
    kind = str(schedule.pop("kind", "plateau"))
    if kind == "plateau":
        return instantiate(cfg.tft)
    if kind != "cosine":
        raise ValueError(f"lr_schedule.kind must be plateau or cosine, got {kind!r}")
    unknown = sorted(set(schedule) - {"final_ratio", "warmup_epochs"})
    if unknown:
        raise ValueError(f"lr_schedule: unknown setting(s) {unknown}; the cosine schedule takes "
                         "final_ratio and warmup_epochs")
    rates = cosine_learning_rates(float(cfg.tft.learning_rate), int(cfg.trainer.max_epochs), **schedule)
    return functools.partial(instantiate(cfg.tft), learning_rate=rates)


def _fit(cfg, data, init, run_id, output_dir, member: int, top_k: int) -> _Fit:
    """Train ensemble member ``member`` (seed ``cfg.seed + member``; member 0 is the single
    model of a plain run) and return its trainer, checkpoints and learning-rate record."""
    L.seed_everything(int(cfg.seed) + member, workers=True)
    training = data.training
    if init is None:
        model = _tft_factory(cfg)(training)
    else:
        model, report = warm_start(_tft_factory(cfg), training, init.model, init.dataset_parameters)
        if run_id and member == 0:
            mlflow.log_params({f"warm_start.{k}": v for k, v in report.architecture.items()})
            mlflow.log_metrics(report.metrics())
            mlflow.log_dict(report.as_dict(), "warm_start.json")
    callbacks = []
    for name, entry in (cfg.callbacks or {}).items():
        overrides = {}
        if member and "dirpath" in entry:  # each member checkpoints into a folder of its own
            overrides["dirpath"] = str(Path(entry.dirpath) / f"member{member}")
        if name == "model_checkpoint" and top_k > 1:
            overrides["save_top_k"] = top_k
        callbacks.append(instantiate(entry, **overrides))
    lr_record = LearningRateRecorder()  # replayed by the final refit (cfg.refit)
    callbacks.append(lr_record)
    # members after the first log their epochs as member<i>-train_loss, member<i>-val_loss...
    logger = instantiate(cfg.logger.lightning, run_id=run_id, **({"prefix": f"member{member}"} if member else {}))
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=logger)
    try:
        # resuming reads our own checkpoint, which holds pickled normalizers
        trainer.fit(model, datamodule=data, ckpt_path=cfg.get("ckpt_path"), weights_only=False)
    except SIGTERMException:
        # preempted (SLURM, Kubernetes): ModelCheckpoint(save_on_exception) saved the epoch in progress
        last = output_dir / "checkpoints" / "last.ckpt"
        log.error(
            "training stopped by SIGTERM at epoch %d, step %d; resume with ckpt_path=%s",
            trainer.current_epoch, trainer.global_step, last,
        )
        raise SystemExit(PREEMPTED_EXIT_CODE) from None
    checkpoint = next((c for c in trainer.callbacks if isinstance(c, ModelCheckpoint)), None)
    best = checkpoint.best_model_path if checkpoint and checkpoint.best_model_path else None
    if best is None and is_rank_zero():
        best = str(output_dir / "checkpoints" / (f"member{member}" if member else "") / "final.ckpt")
        trainer.save_checkpoint(best)
    best_k = [best]
    if checkpoint is not None and checkpoint.best_k_models:
        reverse = checkpoint.mode == "max"
        best_k = [p for p, _ in sorted(checkpoint.best_k_models.items(), key=lambda kv: float(kv[1]), reverse=reverse)]
    return _Fit(trainer, checkpoint, lr_record, best, best_k)


def _permutation_importance(cfg, spec, panel, split, model, training, timings) -> pd.DataFrame | None:
    """Permutation importance of the served model on the test window, each variable's path
    replaced by that of a random training window (``stockcast.forecast.interpret``)."""
    settings = dict(cfg.get("permutation_importance") or {"enabled": False})
    if not settings.pop("enabled", True):
        return None
    t0 = time.perf_counter()
    table = permutation_importance(
        model,
        window_dataset(training, panel, split.test_start, split.test_end),
        donors=donor_windows(training, panel[panel[TIME_IDX] <= split.train_end]),
        groups=price_group(spec),
        seed=int(cfg.seed),
        **settings,
    )
    timings["permutation_importance_s"] = time.perf_counter() - t0
    return table


def _log_figures(interp, importance, panel, table, spec, permutation=None) -> None:
    figures = {
        "interpretation/variable_importance.png": importance_chart(importance),
        "interpretation/attention.png": attention_chart(
            attention_profile(interp, int(spec.window["max_encoder_length"]))
        ),
    }
    if permutation is not None:
        figures["interpretation/permutation_importance.png"] = permutation_chart(
            permutation, title="Permutation importance, test window"
        )
    for group, series in pick_series(table).items():
        figures[f"forecasts/fan_{group}.png"] = fan_chart(
            panel, table, series, title=f"Test-window forecasts: {group} series"
        )
    for path, fig in figures.items():
        mlflow.log_figure(fig, path)
        plt.close(fig)


def _requeued_checkpoint(cfg: DictConfig, output_dir: Path) -> str | None:
    """The checkpoint a requeued SLURM job resumes from, or None.

    A preempted or timed-out job saves ``last.ckpt`` (SIGTERM / Lightning's SLURM requeue
    signal) and SLURM re-runs it in the same Hydra output dir with ``SLURM_RESTART_COUNT``
    set; it continues there (same MLflow run) unless ``ckpt_path`` or ``init_from`` is given.
    """
    if cfg.get("ckpt_path") or cfg.get("init_from"):
        return None
    if int(os.environ.get("SLURM_RESTART_COUNT") or 0) < 1:
        return None
    last = output_dir / "checkpoints" / "last.ckpt"
    return str(last) if last.exists() else None


def _run_to_resume(ckpt_path: str | None) -> str | None:
    """The MLflow run of the checkpoint being resumed (written beside its checkpoints)."""
    if not ckpt_path:
        return None
    ckpt = Path(ckpt_path)
    if not ckpt.exists():
        raise FileNotFoundError(f"ckpt_path={ckpt_path}: no such checkpoint")
    marker = ckpt.parent.parent / RUN_ID_FILE
    return marker.read_text().strip() if marker.exists() else None


def _sweep_parent() -> str | None:
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    hc = HydraConfig.get()
    if str(hc.mode) != "RunMode.MULTIRUN":
        return None
    return multirun_parent_id(hc.sweep.dir)


@dataclass
class _Served:
    """The model a training run registers, with its calibration and test-window scores."""

    models: list
    training: object
    checkpoints: list[str]
    calibration: QuantileCalibration | None
    metrics: dict[str, float]
    test_table: pd.DataFrame
    test_pred: object


def _calibrate_refit_test(cfg, spec, panel, split, output_dir, best_paths, training, init, fits, timings) -> _Served:
    """Calibrate on the validation window, optionally refit on train + validation, then score
    the served model on the test window exactly as it serves (the forecaster protocol, from
    each full-horizon origin, seeing nothing after the origin but known covariates).

    ``val_*`` metrics are the early-stopped model's validation forecasts (the calibration's
    own fitting data); ``test_*`` are the served, calibrated quantiles and
    ``{val,test}_uncalibrated_*`` the model's own (see :mod:`stockcast.forecast.calibration`).
    With an ensemble every member is a model of the bundle and all of this applies to their
    averaged quantiles.
    """
    t0 = time.perf_counter()
    series = panel[GROUP_IDS].drop_duplicates().to_numpy().tolist()
    start = panel["period"].min()
    models = [load_checkpoint(p) for p in best_paths]
    bundle = ForecastBundle(models, training.get_parameters(), spec, start, series)
    ccfg = dict(cfg.get("calibration") or {})
    val_origins = rolling_origins(split.val_start, split.val_end, ccfg.pop("n_origins", 1), ccfg.pop("origin_stride", 1))
    val_panel = panel[panel[TIME_IDX] <= split.val_end]
    val_table = by_model(cross_validate([bundle], val_panel, val_origins, bundle.max_horizon))[bundle.name]
    calibration = fit_calibration(
        val_table,
        panel,
        window=int(spec.window["max_encoder_length"]),
        info={"window_time_idx": [split.val_start, split.val_end], "origins_time_idx": val_origins},
        **ccfg,
    )
    train_scale = mase_scale(panel[panel[TIME_IDX] <= split.train_end])
    metrics, _ = calibrated_metrics(val_table, calibration, panel, prefix="val", scale=train_scale)
    timings["calibration_s"] = time.perf_counter() - t0

    served_training, checkpoints = training, list(best_paths)
    refit_cfg = cfg.get("refit") or {}
    if refit_cfg.get("enabled"):
        t0 = time.perf_counter()
        refitted, checkpoints = [], []
        for i, (fit, path) in enumerate(zip(fits, best_paths, strict=False)):
            epochs = int(refit_cfg.get("epochs") or best_epochs(path))
            # replay the early-stopped run's learning rates: no plateau to watch without held-out data
            schedule = learning_rate_schedule(fit.lr_record.by_epoch, epochs, float(cfg.tft.learning_rate))
            factory = functools.partial(instantiate(cfg.tft), learning_rate=schedule)
            if init is None:
                build = factory
            else:
                def build(ds, factory=factory):
                    return warm_start(factory, ds, init.model, init.dataset_parameters)[0]
            checkpoint = str(output_dir / "checkpoints" / (f"refit_member{i}.ckpt" if i else "refit.ckpt"))
            # one device: under DDP the other ranks have returned by now
            trainer_factory = functools.partial(instantiate, cfg.trainer, devices=1, strategy="auto", num_nodes=1)
            L.seed_everything(int(cfg.seed) + i, workers=True)
            model, served_training = refit(
                build, trainer_factory, panel, spec, split.val_end, epochs, dict(cfg.loader), Path(checkpoint)
            )
            refitted.append(model)
            checkpoints.append(checkpoint)
            metrics["refit_epochs" if i == 0 else f"member{i}_refit_epochs"] = float(epochs)
        models = refitted
        timings["refit_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    bundle = ForecastBundle(models, served_training.get_parameters(), spec, start, series)  # uncalibrated
    horizon = bundle.max_horizon
    # every full-horizon origin of the test window (one when it is as long as the horizon)
    origins = list(range(split.test_start - 1, split.test_end - horizon + 1)) or [split.test_start - 1]
    test_raw = by_model(cross_validate([bundle], panel, origins, horizon))[bundle.name]
    h0 = min(horizon, split.test_end - origins[0])
    _, test_pred = bundle.forecast_last(as_of(panel, spec, origins[0], h0), h0, return_raw=True)
    test_metrics, test_table = calibrated_metrics(
        test_raw, calibration, panel, prefix="test", scale=mase_scale(panel[panel[TIME_IDX] <= split.val_end])
    )
    metrics.update(test_metrics)
    timings["test_predict_s"] = time.perf_counter() - t0
    if calibration is not None and mlflow.active_run() is not None:
        mlflow.log_dict(calibration.to_dict(), "calibration/calibration.json")
    return _Served(models, served_training, checkpoints, calibration, metrics, test_table, test_pred)


def summary(result: TrainResult) -> str:
    """What ``train.py`` prints at the end."""
    m = result.metrics
    parts = [f"{k.removeprefix('test_')} {m[k]:.4g}" for k in ("test_mae", "test_pinball", "test_coverage_80") if k in m]
    lines = [f"trained: test window {', '.join(parts)}"]
    if result.model_version:
        lines.append(f"registered {result.model_uri}")
    return "\n".join(lines)
