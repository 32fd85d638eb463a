"""``hydra/launcher=slurm``: the submitit job a training becomes, and Lightning inside it.

No SLURM here: the launcher's own ``launch`` composes the sbatch parameters and submitit
renders the sbatch script (only the submission itself is intercepted); Lightning's
``SLURMEnvironment`` is then given the variables srun sets for one task of that job.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import submitit
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from stockcast.tasks.train import _requeued_checkpoint
from tests.conftest import CONF_DIR

MULTI_NODE = ["trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2"]


class _Submitted(Exception):
    """Raised instead of calling sbatch; carries the script submitit rendered."""


def _compose(overrides: list[str], sweep_dir: Path) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(
            "train",
            overrides=["hydra/launcher=slurm", f"hydra.sweep.dir={sweep_dir}", *overrides],
            return_hydra_config=True,
        )


def _sbatch_script(cfg: DictConfig, monkeypatch, tmp_path: Path) -> str:
    """The sbatch script the launcher would submit for one job of ``cfg``."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "srun").write_text("#!/bin/sh\nexit 1\n")  # submitit only checks it exists
    (fake_bin / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}:{Path('/usr/bin')}:{Path('/bin')}")

    def intercept(self, fn, *args):
        raise _Submitted(self._executor._make_submission_file_text("python -m job", "uid"))

    monkeypatch.setattr(submitit.AutoExecutor, "map_array", intercept)
    launcher = instantiate(cfg.hydra.launcher)
    launcher.setup(hydra_context=None, task_function=lambda c: None, config=cfg)
    with pytest.raises(_Submitted) as submitted:
        launcher.launch([["seed=1"]], initial_job_idx=0)
    return str(submitted.value)


def test_slurm_launcher_maps_the_trainer_layout_to_sbatch(monkeypatch, tmp_path):
    monkeypatch.setenv("SBATCH_PARTITION", "gpu-long")
    cfg = _compose(MULTI_NODE, tmp_path / "sweep")
    launcher = cfg.hydra.launcher
    assert launcher.tasks_per_node == 4 and launcher.gpus_per_node == 4 and launcher.nodes == 2
    assert launcher.partition == "gpu-long"
    script = _sbatch_script(cfg, monkeypatch, tmp_path)
    flags = {line.split()[1] for line in script.splitlines() if line.startswith("#SBATCH")}
    for flag in (
        "--nodes=2",
        "--ntasks-per-node=4",
        "--gpus-per-node=4",
        "--cpus-per-task=8",
        "--time=240",
        "--partition=gpu-long",
        "--job-name=stockcast-train",
        # Lightning's requeue signal (not submitit's USR2) and a requeueable job
        "--signal=USR1@120",
        "--requeue",
    ):
        assert flag in flags, (flag, sorted(flags))
    assert "srun --unbuffered" in script
    assert str(tmp_path / "sweep" / ".submitit") in script


def test_partition_is_left_to_the_cluster_without_sbatch_partition(monkeypatch, tmp_path):
    monkeypatch.delenv("SBATCH_PARTITION", raising=False)
    cfg = _compose(["hydra.launcher.gpus_per_node=null"], tmp_path / "sweep")
    assert cfg.hydra.launcher.partition is None
    script = _sbatch_script(cfg, monkeypatch, tmp_path)
    assert "--partition" not in script and "--gpus-per-node" not in script
    assert "#SBATCH --ntasks-per-node=1" in script and "#SBATCH --nodes=1" in script


def test_lightning_reads_one_task_of_the_job_as_its_rank(monkeypatch, tmp_path):
    """The 6th task (node 1, local rank 1) of the 2 x 4 job above: global rank 5 of 8."""
    cfg = _compose(MULTI_NODE, tmp_path / "sweep")
    slurm = {
        "SLURM_NTASKS": "8", "SLURM_NTASKS_PER_NODE": "4", "SLURM_NNODES": "2",
        "SLURM_PROCID": "5", "SLURM_LOCALID": "1", "SLURM_NODEID": "1",
        "SLURM_JOB_NAME": "train", "SLURM_JOB_ID": "4242", "SLURM_NODELIST": "gpu[07-08]",
    }
    for key, value in slurm.items():
        monkeypatch.setenv(key, value)
    for key in ("LOCAL_RANK", "RANK", "WORLD_SIZE", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    # the Trainer sets the process-wide rank_zero_only.rank to its global rank (5): restored
    # after the test, or every later training in this process would think it is not rank 0
    monkeypatch.setattr(rank_zero_only, "rank", rank_zero_only.rank)
    trainer_cfg = OmegaConf.to_container(cfg.trainer, resolve=False)
    trainer_cfg.update(accelerator="cpu", precision="32-true", default_root_dir=str(tmp_path))
    trainer = instantiate(trainer_cfg, logger=False, enable_checkpointing=False)
    env = trainer.strategy.cluster_environment
    assert isinstance(env, SLURMEnvironment)
    assert (trainer.world_size, trainer.global_rank, trainer.local_rank, trainer.node_rank) == (8, 5, 1, 1)
    assert env.main_address == "gpu07"
    # auto-requeue on the signal sbatch sends (--signal=USR1@...)
    assert env.auto_requeue and env.requeue_signal == signal.SIGUSR1
    assert cfg.hydra.launcher.additional_parameters.signal.startswith("USR1@")


def test_a_requeued_job_resumes_from_its_own_last_checkpoint(monkeypatch, tmp_path):
    cfg = OmegaConf.create({"ckpt_path": None, "init_from": None})
    last = tmp_path / "checkpoints" / "last.ckpt"
    monkeypatch.delenv("SLURM_RESTART_COUNT", raising=False)
    last.parent.mkdir()
    last.write_bytes(b"x")
    assert _requeued_checkpoint(cfg, tmp_path) is None  # a first start never resumes
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    assert _requeued_checkpoint(cfg, tmp_path) == str(last)
    # an explicit checkpoint or a warm start wins; nothing saved yet means a fresh start
    assert _requeued_checkpoint(OmegaConf.create({"ckpt_path": "a.ckpt"}), tmp_path) is None
    assert _requeued_checkpoint(OmegaConf.create({"init_from": "3"}), tmp_path) is None
    last.unlink()
    assert _requeued_checkpoint(cfg, tmp_path) is None
