"""The pretraining loop: one code path for a single process and torchrun; rank 0 does all I/O.

Writes the run directory of ``hallucinator.rundir`` (``output_dir/run_name``): config.json,
run.json, metrics.jsonl (+ TensorBoard), steps.jsonl (step diagnostics every ``diag_every`` steps,
see ``step_diagnostics``), checkpoint.pt (atomic, weights-only, finite weights only; every epoch
and on SIGTERM/SIGINT) and .lock (one writer per run directory). A signal to any one rank stops
every rank at the same step: the ranks agree on it (``distributed.agree_max``) before leaving the loop.
"""
from __future__ import annotations

import functools
import resource
import signal
import time
import warnings
from pathlib import Path
from typing import Any, Optional

import torch
from tqdm import tqdm

from .. import checkpoint, distributed, rundir
from ..device import pick_device
from ..config import TrainConfig, to_dict
from ..evaluation.monitor import Monitor
from ..metrics import positive_similarity
from . import device_settings, provenance
from .metric_log import MetricLog, epoch_line
from ..data.splits import load_split, subset
from .pipeline import TrainData
from .run_lock import RunDirLock
from .schedule import build_schedule
from .step import build_step
from .step_diagnostics import StepDiagnostics


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)  # save a checkpoint, mark the run "interrupted", exit 128+N


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or inf; the run stops and keeps its last good checkpoint."""


def run_dir_for(cfg: TrainConfig) -> Path:
    name = cfg.run_name or f"{cfg.method}{'-hal' if cfg.hallucinator else ''}-{cfg.dataset}-s{cfg.seed}"
    return Path(cfg.output_dir) / name


class Trainer:
    """Builds model, data and optimiser from a ``TrainConfig`` and runs (or resumes) pretraining."""

    def __init__(self, cfg: TrainConfig, resume: bool = True, show_progress: bool = True) -> None:
        cfg.validate()
        self.device = pick_device(cfg, distributed.launch_info().local_rank)
        # "auto" settings become this device's values; config.json and checkpoints hold the resolved ones
        self.requested, self.cfg = cfg, device_settings.resolve(cfg, self.device)
        self.settings = device_settings.used_settings(cfg, self.cfg)
        cfg = self.cfg
        # the process group's backend follows the device (or dist_backend), not whether CUDA exists
        self.dist = distributed.init(self.device, None if cfg.dist_backend == "auto" else cfg.dist_backend)
        self.is_main = self.dist.rank == 0
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        device_settings.apply_backend(cfg)
        self.run_dir = run_dir_for(cfg)
        self.ckpt_path = self.run_dir / rundir.CHECKPOINT
        # One writer per run directory, taken before any work; the kernel drops it on any exit.
        self._lock = RunDirLock(self.run_dir).acquire() if self.is_main else None
        try:
            self._setup(cfg, resume, show_progress)
        except BaseException as e:  # a resumed run's run.json must not keep its old status
            if not isinstance(e, checkpoint.ConfigMismatchError):  # another config's run: not this run's failure
                self._mark_failed(e, wall_time_s=None)
            if self._lock is not None:
                self._lock.release()
            raise

    def _setup(self, cfg: TrainConfig, resume: bool, show_progress: bool) -> None:
        """Model, data, optimiser, schedule and monitors; then the checkpoint, if resuming."""
        self.show_progress = show_progress and self.is_main
        torch.manual_seed(cfg.seed)
        self.train_step = build_step(cfg, self.device, self.dist.world_size, self.dist.local_rank)
        self.model, self.ddp, self.optimizer = self.train_step.model, self.train_step.module, self.train_step.optimizer
        self.scaler = self.train_step.scaler
        self.data = TrainData(cfg, self.device, self.dist.rank, self.dist.world_size)
        steps = self.data.steps_per_epoch
        # Python floats: reading the step's lr is no tensor access
        self.lrs = build_schedule(cfg.lr_schedule, cfg.lr, cfg.epochs, steps, cfg.warmup_epochs,
                                  cfg.lr_min_ratio, cfg.lr_milestones, cfg.lr_decay).tolist()
        self.nan_check_every = 1 if self.device.type == "cpu" else 25
        # The stop decision is agreed by all ranks (one tiny all_reduce, see `_stop_agreed`) at the
        # same cadence on every rank: every step in one process or on CPU, every 25 steps on GPU.
        self.stop_check_every = 1 if self.dist.world_size == 1 else self.nan_check_every
        self.epoch, self.step = 0, 0          # position: completed epochs, steps done in this epoch
        self.partial: dict[str, float] = {}  # running sums of the current epoch (for mid-epoch resume)
        self._stop_signal: Optional[int] = None  # this process's signal (set by the handler)
        self._stop: Optional[int] = None         # the signal all ranks agreed to stop on
        self._previous_wall = 0.0            # wall time of the invocations this one resumes
        self._resumed_from: Optional[tuple[Path, int, int]] = None  # (checkpoint, epoch, step) if resumed
        self.monitor = self._build_monitor()
        self.step_diag = StepDiagnostics(self.model, self.run_dir, cfg.diag_every, write=self.is_main,
                                         grads=self.dist.world_size == 1)
        self.log: Optional[MetricLog] = None  # opened by fit() on rank 0
        if resume and self.ckpt_path.exists():
            self._load(self.ckpt_path)

    # ----- checkpoints -------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {"format": checkpoint.FORMAT, "config": to_dict(self.cfg), "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(),
                "epoch": self.epoch, "step": self.step, "partial": dict(self.partial),
                **checkpoint.rng_state(self.device)}

    def _save(self) -> None:
        """Writes the checkpoint unless a weight is NaN/inf (the last good one is kept)."""
        bad = checkpoint.non_finite_entries(self.model.state_dict())
        if bad:
            raise NonFiniteLossError(
                f"weights became non-finite ({', '.join(bad[:3])}) by epoch {self.epoch} step {self.step}; not saved. "
                f"The last good checkpoint is {self.ckpt_path if self.ckpt_path.exists() else 'none (first epoch)'}.")
        if self.is_main:
            checkpoint.save_atomic(self._state(), self.ckpt_path)

    def _load(self, path: Path) -> None:
        state = checkpoint.load(path)
        checkpoint.check_compatible(state["config"], to_dict(self.cfg), path)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step, self.partial = state["epoch"], state["step"], dict(state["partial"])
        checkpoint.restore_rng(state, self.device)  # the device in use, whatever number is visible now
        self._resumed_from = (path, self.epoch, self.step)

    def _build_monitor(self) -> Monitor:
        """G2/kNN on the test split, on rank 0 only (only it logs); without a test split here the
        diagnostics are skipped."""
        cfg = self.cfg
        if not self.is_main:
            return Monitor(cfg, None, None)
        try:
            test = subset(load_split(cfg, "test"), cfg.eval_test_subset)
            train = load_split(cfg, "train") if cfg.knn_every > 0 else None
        except (FileNotFoundError, ValueError) as e:
            if self.is_main:
                warnings.warn(f"kNN/G2 monitor off: the {cfg.dataset} test/kNN data cannot be used: "
                              f"{' '.join(str(e).splitlines()[:2])}", RuntimeWarning, stacklevel=2)
            return Monitor(cfg, None, None)
        return Monitor(cfg, test, train)

    # ----- the loop ----------------------------------------------------------------------
    def on_signal(self, signum, frame=None) -> None:
        """The handler of ``STOP_SIGNALS``: asks the run to stop at the next step all ranks agree on."""
        self._stop_signal = signum

    def _stop_agreed(self) -> bool:
        """Whether any rank was signalled: every rank calls this at the same step and gets the same
        answer (the largest signal number over ranks), so all leave the loop at the same step.
        Once agreed it stays agreed, with no further collective."""
        if self._stop is None:
            self._stop = distributed.agree_max(self._stop_signal or 0, self.device) or None
        return self._stop is not None

    def _mark_failed(self, exc: BaseException, wall_time_s: Optional[float]) -> None:
        """run.json says "failed" and why (when this process writes the run and run.json exists)."""
        if not (self.is_main and (self.run_dir / rundir.RUN).exists()):
            return
        try:
            updates = {"wall_time_s": wall_time_s} if wall_time_s is not None else {}
            self._write_run_json(status="failed", error=f"{type(exc).__name__}: {exc}", end_time=provenance.now(),
                                 **updates)
        except Exception:  # e.g. the disk that failed the run; the original error matters more
            pass

    def _write_run_json(self, **updates) -> None:
        if "status" in updates and updates["status"] not in rundir.RUN_STATUSES:
            raise ValueError(f"run.json status {updates['status']!r} is not one of {rundir.RUN_STATUSES}")
        if self.is_main:
            rundir.update_json(self.run_dir / rundir.RUN, **updates)

    def _start_run_dir(self) -> None:
        """Rank 0: config.json, run.json (status running, provenance), the metric log, a banner."""
        cfg = self.cfg
        self.run_dir.mkdir(parents=True, exist_ok=True)
        checkpoint.remove_orphans(self.run_dir)  # temp files of a save that a kill interrupted
        prev = self.run_dir / rundir.RUN
        old = rundir.read_json(prev) if prev.exists() else None  # unreadable: stop before writing anything
        rundir.write_json(self.run_dir / rundir.CONFIG, to_dict(cfg))
        info = {**provenance.collect(self.device, self.dist.world_size, cfg.seed), "settings": self.settings}
        if old is not None:
            info.update(start_time=old.get("start_time", info["start_time"]), resumed_at=provenance.now())
            self._previous_wall = old.get("wall_time_s") or 0.0
        rundir.write_json(prev, {**info, "status": "running", "kind": rundir.KIND_PRETRAIN,
                                 **{k: getattr(cfg, k) for k in rundir.ROW_KEYS}})
        self.log = MetricLog(self.run_dir, tensorboard=cfg.tensorboard)
        self.log.truncate(self.epoch)
        self.step_diag.truncate(self.epoch * self.data.steps_per_epoch + self.step)
        resumed = self._resumed_from
        where = f"resumed from {resumed[0]} at epoch {resumed[1]} step {resumed[2]}" if resumed else "new run"
        print(f"run {self.run_dir} on {info['device_name']} (world size {self.dist.world_size}); {where}; "
              f"{device_settings.describe(self.settings)}", flush=True)

    @property
    def interrupted(self) -> Optional[int]:
        """The signal that stopped ``fit`` before the last epoch was done, else None."""
        return self._stop if self.epoch < self.cfg.epochs else None

    def fit(self) -> dict[str, Any]:
        """Trains to ``cfg.epochs``; returns the last epoch's metrics.

        Any exception marks run.json "failed" with its reason and propagates; the run
        directory's lock is released on return or error.
        """
        cfg = self.cfg
        old = {s: signal.signal(s, self.on_signal) for s in STOP_SIGNALS}
        t_run = time.time()
        last: dict[str, Any] = {}
        status = "failed"
        try:
            if self.is_main:
                self._start_run_dir()
            while self.epoch < cfg.epochs and not self._stop_agreed():
                last = self._train_epoch()
            status = "interrupted" if self.interrupted else "finished"
            self._write_run_json(status=status, end_time=provenance.now(), wall_time_s=self._wall_so_far(t_run))
        except BaseException as e:
            self._mark_failed(e, wall_time_s=self._wall_so_far(t_run))
            raise
        finally:
            for s, h in old.items():
                signal.signal(s, h)
            if self.log is not None:
                self.log.close()
                within = f" step {self.step}/{self.data.steps_per_epoch}" if self.step else ""  # mid-epoch only
                print(f"run {self.run_dir} on {self.device}: {status} at epoch {self.epoch}/{cfg.epochs}{within}",
                      flush=True)
            if self._lock is not None:
                self._lock.release()
        return last

    def _wall_so_far(self, t_run: float) -> float:
        """Wall time of this invocation plus that of the invocations it resumed."""
        return round(self._previous_wall + time.time() - t_run, 1)

    def _train_epoch(self) -> dict[str, Any]:
        cfg, steps = self.cfg, self.data.steps_per_epoch
        self.ddp.train()
        if self.step == 0:
            self.partial = {"loss": 0.0, "sim_qk": 0.0, "sim_qhat_k": 0.0, "images": 0.0, "seconds": 0.0}
        # per-step sums stay on the device (no host sync per step); folded into `partial` at the end
        acc = torch.zeros(3, dtype=torch.float64, device=self.device)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        bar = tqdm(total=steps, initial=self.step, desc=f"epoch {self.epoch + 1}/{cfg.epochs}",
                   disable=not self.show_progress, dynamic_ncols=True, leave=False)
        t0, bar_start = time.time(), self.step
        for x1, x2 in self.data.epoch(self.epoch, self.step):
            lr = self.lrs[self.epoch * steps + self.step]
            global_step = self.epoch * steps + self.step
            self.step_diag.begin(global_step)
            out = self.train_step(x1, x2, lr, functools.partial(self._inspect, lr=lr, global_step=global_step))
            acc += torch.stack([out.loss.detach().double(), positive_similarity(out.q, out.k).double(),
                                positive_similarity(out.q_hat, out.k).double() if out.q_hat is not None
                                else acc.new_zeros(())])
            self.partial["images"] += x1.shape[0] * self.dist.world_size
            self.step += 1
            bar.update(1)
            if self.show_progress and (self.step % 20 == 0 or self.step == steps):
                bar.set_postfix(loss=f"{acc[0].item() / max(1, self.step - bar_start):.3f}", lr=f"{lr:.3g}")
            if self.step < steps and self.step % self.stop_check_every == 0 and self._stop_agreed():
                break
        bar.close()
        # One path for the end of an epoch and a mid-epoch stop: check, fold the sums, save.
        if not torch.isfinite(acc[0]):
            self._non_finite(acc[0], lr)
        self._fold(acc)
        distributed.sync_buffers(self.model)  # DDP does not broadcast buffers (training/step.py)
        self.partial["seconds"] += time.time() - t0
        metrics: dict[str, Any] = {}
        if self.step == steps:
            self.epoch, self.step = self.epoch + 1, 0
            metrics = self._epoch_metrics(lr)
        self._save()
        if self.is_main and self._stop is not None and self.step:
            print(f"\nsignal {self._stop}: saved {self.ckpt_path} at epoch {self.epoch} step {self.step}",
                  flush=True)
        return metrics

    def _inspect(self, out, lr: float, global_step: int) -> None:
        """Between forward and backward: the step's only host reads, each on its own schedule (the
        finiteness check every ``nan_check_every`` steps: every step on CPU, every 25 on GPU; the
        step diagnostics every ``diag_every`` steps; the progress bar reads the loss sums every 20
        steps). Weights are only saved at epoch ends, after a final check, so a non-finite step can
        never reach a checkpoint."""
        if self.step % self.nan_check_every == 0 and not torch.isfinite(out.loss):
            self._non_finite(out.loss, lr)
        record = self.step_diag.record(out, global_step, self.epoch, lr)
        if record is not None and self.is_main:
            self.log.write_step(record)

    def _epoch_metrics(self, lr: float) -> dict[str, Any]:
        """The finished epoch's averages and diagnostics, logged on rank 0."""
        n, p = self.data.steps_per_epoch, self.partial
        metrics = {"epoch": self.epoch, "loss": p["loss"] / n, "lr": lr, "sim_qk": p["sim_qk"] / n,
                   "sim_qhat_k": p["sim_qhat_k"] / n if self.cfg.hallucinator else None,
                   **self.monitor.measure(self.model.encoder, self.epoch, self.device),
                   "images_per_s": p["images"] / max(p["seconds"], 1e-9), "epoch_time_s": p["seconds"],
                   "peak_mem_mb": self._peak_mem_mb(), "skipped_images": self.data.dataset.num_skipped}
        if self.is_main and self.log is not None:
            self.log.write(metrics)
            print(epoch_line(metrics, self.cfg.epochs), flush=True)
        return metrics

    def _non_finite(self, loss: torch.Tensor, lr: float) -> None:
        raise NonFiniteLossError(
            f"loss is {loss.item()} at epoch {self.epoch + 1} step {self.step + 1} (lr {lr:.4g}); stopped. "
            f"The last good checkpoint is {self.ckpt_path if self.ckpt_path.exists() else 'none (first epoch)'}. "
            "Lower lr, use precision=fp32, or check the data.")

    def _fold(self, acc: torch.Tensor) -> None:
        """Adds this process's device-side sums (averaged over ranks) into ``partial``."""
        loss, s_qk, s_hat = distributed.all_reduce_mean(acc).tolist()
        self.partial["loss"] += loss
        self.partial["sim_qk"] += s_qk
        self.partial["sim_qhat_k"] += s_hat

    def _peak_mem_mb(self) -> float:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
