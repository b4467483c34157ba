"""The pretraining loop: one code path for a single process and torchrun; rank 0 does all I/O.

Run directory (``output_dir/run_name``): ``config.json`` (resolved config), ``run.json``
(provenance and status), ``metrics.jsonl`` (one line per epoch), ``steps.jsonl`` (step
diagnostics every ``diag_every`` steps, see ``step_diagnostics``), ``checkpoint.pt`` (atomic,
weights-only; every epoch and on SIGTERM/SIGINT).
"""
from __future__ import annotations

import json
import resource
import signal
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn
from tqdm import tqdm

from .. import distributed
from ..config import TrainConfig, to_dict
from ..data import DATASETS, build_dataset
from ..augmentations import Normalize
from ..evaluation.features import eval_resize, extract_features
from ..evaluation.knn import knn_top1
from ..methods import build_method, model_config_from
from ..metrics import positive_similarity, uniformity
from . import checkpoint, provenance
from .pipeline import TrainData, subset
from .schedule import warmup_cosine
from .step_diagnostics import StepDiagnostics


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or inf; the run stops and keeps its last good checkpoint."""


def run_dir_for(cfg: TrainConfig) -> Path:
    name = cfg.run_name or f"{cfg.method}{'-hal' if cfg.hallucinator else ''}-{cfg.dataset}-s{cfg.seed}"
    return Path(cfg.output_dir) / name


def pick_device(cfg: TrainConfig, local_rank: int) -> torch.device:
    if cfg.device == "cpu" or (cfg.device == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError("device=cuda but CUDA is not available")
    return torch.device("cuda", local_rank)


class Trainer:
    """Builds model, data and optimiser from a ``TrainConfig`` and runs (or resumes) pretraining."""

    def __init__(self, cfg: TrainConfig, resume: bool = True, show_progress: bool = True) -> None:
        cfg.validate()
        self.cfg = cfg
        self.dist = distributed.init()
        self.is_main = self.dist.rank == 0
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.device = pick_device(cfg, self.dist.local_rank)
        self.run_dir = run_dir_for(cfg)
        self.ckpt_path = self.run_dir / "checkpoint.pt"
        self.show_progress = show_progress and self.is_main
        torch.manual_seed(cfg.seed)
        self.model = build_method(model_config_from(cfg)).to(self.device)
        if cfg.sync_bn and self.dist.world_size > 1:
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        if cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.data = TrainData(cfg, self.device, self.dist.rank, self.dist.world_size)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=cfg.lr, momentum=cfg.sgd_momentum,
                                         weight_decay=cfg.weight_decay)
        steps = self.data.steps_per_epoch
        self.lrs = warmup_cosine(cfg.lr, cfg.epochs * steps, int(round(cfg.warmup_epochs * steps)))
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=cfg.precision == "fp16")
        self.autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.precision)
        self.ddp = (nn.parallel.DistributedDataParallel(self.model, device_ids=[self.dist.local_rank] if self.device.type == "cuda" else None)
                    if self.dist.world_size > 1 else self.model)
        self.nan_check_every = 1 if self.device.type == "cpu" else 25
        self.epoch, self.step = 0, 0          # position: completed epochs, steps done in this epoch
        self.partial: dict[str, float] = {}  # running sums of the current epoch (for mid-epoch resume)
        self._stop_signal: Optional[int] = None
        self._probe = self._fixed_probe_batch()
        self.step_diag = StepDiagnostics(self.model, self.run_dir, cfg.diag_every, write=self.is_main,
                                         grads=self.dist.world_size == 1)
        if resume and self.ckpt_path.exists():
            self._load(self.ckpt_path)

    # ----- checkpoints -------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {"format": checkpoint.FORMAT, "config": to_dict(self.cfg), "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(),
                "epoch": self.epoch, "step": self.step, "partial": dict(self.partial),
                "rng_cpu": torch.get_rng_state(),
                "rng_cuda": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else []}

    def _save(self) -> None:
        if self.is_main:
            checkpoint.save_atomic(self._state(), self.ckpt_path)

    def _load(self, path: Path) -> None:
        state = checkpoint.load(path)
        checkpoint.check_compatible(state["config"], to_dict(self.cfg), path)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step, self.partial = state["epoch"], state["step"], dict(state["partial"])
        torch.set_rng_state(state["rng_cpu"])
        if state["rng_cuda"] and self.device.type == "cuda":
            torch.cuda.set_rng_state_all(state["rng_cuda"])
        if self.is_main:
            self._truncate_metrics(self.epoch)
            self.step_diag.truncate(self.epoch * self.data.steps_per_epoch + self.step)
            print(f"resumed {path} at epoch {self.epoch} step {self.step}", flush=True)

    def _truncate_metrics(self, done_epochs: int) -> None:
        path = self.run_dir / "metrics.jsonl"
        if path.exists():
            keep = []
            for line in path.read_text().splitlines():
                try:
                    if json.loads(line)["epoch"] <= done_epochs:
                        keep.append(line)
                except (json.JSONDecodeError, KeyError):
                    break
            path.write_text("".join(k + "\n" for k in keep))

    # ----- diagnostics -------------------------------------------------------------------
    def _fixed_probe_batch(self) -> Optional[torch.Tensor]:
        """The first ``metrics_batch`` test images, normalised (for G2); also sets the kNN sets.

        None when the dataset has no test split here (diagnostics are then skipped).
        """
        cfg = self.cfg
        self._knn_sets = None
        try:
            test = subset(build_dataset(cfg.dataset, cfg.data_root, "test"), cfg.eval_test_subset)
        except (FileNotFoundError, ValueError):
            return None
        info = DATASETS[cfg.dataset]
        size = cfg.image_size or info.image_size
        if cfg.knn_every > 0:
            train = subset(build_dataset(cfg.dataset, cfg.data_root, "train"), cfg.knn_train_subset)
            self._knn_sets = (train, test)
        head = subset(test, cfg.metrics_batch)
        if hasattr(head, "images"):
            images = eval_resize(head.images, size)
        else:
            images = torch.stack([eval_resize(head[i][0], size) for i in range(len(head))])
        return Normalize(info.mean, info.std)(images)

    @torch.no_grad()
    def _diagnostics(self) -> dict[str, Optional[float]]:
        out: dict[str, Optional[float]] = {"g2": None, "knn_top1": None}
        if self._probe is None:
            return out
        enc = self.model.encoder
        was = enc.training
        enc.eval()
        x = self._probe.to(self.device)
        emb = torch.cat([enc(x[i:i + 256]).float() for i in range(0, x.shape[0], 256)])
        enc.train(was)
        out["g2"] = uniformity(emb).item()
        if self._knn_sets is not None and (self.epoch % self.cfg.knn_every == 0 or self.epoch == self.cfg.epochs):
            train, test = self._knn_sets
            ftr, ltr = extract_features(enc.backbone, train, self.cfg.dataset, self.device, self.cfg.image_size)
            fte, lte = extract_features(enc.backbone, test, self.cfg.dataset, self.device, self.cfg.image_size)
            out["knn_top1"] = knn_top1(ftr, ltr, fte, lte, k=self.cfg.knn_k, temperature=self.cfg.knn_temperature)
        return out

    # ----- the loop ----------------------------------------------------------------------
    def _on_signal(self, signum, frame) -> None:
        self._stop_signal = signum

    def _write_run_json(self, **updates) -> None:
        if not self.is_main:
            return
        path = self.run_dir / "run.json"
        info = json.loads(path.read_text()) if path.exists() else {}
        info.update(updates)
        provenance.write(path, info)

    def fit(self) -> dict[str, Any]:
        """Trains to ``cfg.epochs``; returns the last epoch's metrics."""
        cfg = self.cfg
        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.json").write_text(json.dumps(to_dict(cfg), indent=2))
            info = provenance.collect(self.device, self.dist.world_size, cfg.seed)
            prev = self.run_dir / "run.json"
            if prev.exists():
                info["start_time"] = json.loads(prev.read_text()).get("start_time", info["start_time"])
                info["resumed_at"] = provenance.now()
            self._previous_wall = json.loads(prev.read_text()).get("wall_time_s") or 0.0 if prev.exists() else 0.0
            provenance.write(self.run_dir / "run.json", {**info, "status": "running", "suite": cfg.suite,
                                                          "profile": cfg.profile})
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        t_run = time.time()
        last: dict[str, Any] = {}
        try:
            while self.epoch < cfg.epochs:
                last = self._train_epoch()
                if self._stop_signal is not None:
                    break
            self._write_run_json(status="finished" if self._stop_signal is None else "interrupted",
                                 end_time=provenance.now(), wall_time_s=self._wall_so_far(t_run))
        except NonFiniteLossError as e:
            self._write_run_json(status="failed", error=str(e), end_time=provenance.now(),
                                 wall_time_s=self._wall_so_far(t_run))
            raise
        finally:
            for s, h in old.items():
                signal.signal(s, h)
        return last

    def _wall_so_far(self, t_run: float) -> float:
        """Wall time of this invocation plus that of the invocations it resumed."""
        prev = getattr(self, "_previous_wall", 0.0)
        return round(prev + time.time() - t_run, 1)

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
            if cfg.channels_last:
                x1, x2 = x1.contiguous(memory_format=torch.channels_last), x2.contiguous(memory_format=torch.channels_last)
            lr = float(self.lrs[self.epoch * steps + self.step])
            for g in self.optimizer.param_groups:
                g["lr"] = lr
            ctx = torch.autocast(self.device.type, dtype=self.autocast_dtype) if self.autocast_dtype else nullcontext()
            global_step = self.epoch * steps + self.step
            self.step_diag.begin(global_step)
            with ctx:
                out = self.ddp(x1, x2)
            # A finiteness check reads the loss on the host: every step on CPU, every
            # `nan_check_every` steps on GPU (no per-step sync). Weights are only saved at epoch
            # ends, after a final check, so a non-finite step can never reach a checkpoint.
            if self.step % self.nan_check_every == 0 and not torch.isfinite(out.loss):
                self._non_finite(out.loss, lr)
            self.step_diag.record(out, global_step, self.epoch, lr)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(out.loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            acc += torch.stack([out.loss.detach().double(), positive_similarity(out.q, out.k).double(),
                                positive_similarity(out.q_hat, out.k).double() if out.q_hat is not None
                                else acc.new_zeros(())])
            self.partial["images"] += x1.shape[0] * self.dist.world_size
            self.step += 1
            bar.update(1)
            if self.show_progress and (self.step % 20 == 0 or self.step == steps):
                bar.set_postfix(loss=f"{acc[0].item() / max(1, self.step - bar_start):.3f}", lr=f"{lr:.3g}")
            if self._stop_signal is not None and self.step < steps:
                if not torch.isfinite(acc[0]):
                    self._non_finite(acc[0], lr)
                self._fold(acc)
                self.partial["seconds"] += time.time() - t0
                self._save()
                if self.is_main:
                    print(f"\nsignal {self._stop_signal}: saved {self.ckpt_path} at epoch {self.epoch} step {self.step}", flush=True)
                bar.close()
                return {}
        bar.close()
        if not torch.isfinite(acc[0]):
            self._non_finite(acc[0], lr)
        self._fold(acc)
        self.partial["seconds"] += time.time() - t0
        self.epoch, self.step = self.epoch + 1, 0
        n = steps
        metrics = {"epoch": self.epoch, "loss": self.partial["loss"] / n, "lr": lr,
                   "sim_qk": self.partial["sim_qk"] / n,
                   "sim_qhat_k": self.partial["sim_qhat_k"] / n if cfg.hallucinator else None,
                   **self._diagnostics(),
                   "images_per_s": self.partial["images"] / max(self.partial["seconds"], 1e-9),
                   "epoch_time_s": self.partial["seconds"], "peak_mem_mb": self._peak_mem_mb(),
                   "skipped_images": getattr(self.data.dataset, "num_skipped", 0)}
        if self.is_main:
            with open(self.run_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(metrics) + "\n")
            knn = f" knn {metrics['knn_top1']:.2f}" if metrics["knn_top1"] is not None else ""
            print(f"epoch {self.epoch}/{cfg.epochs} loss {metrics['loss']:.4f} S(q,k) {metrics['sim_qk']:.3f}"
                  f" G2 {metrics['g2'] if metrics['g2'] is None else round(metrics['g2'], 4)}{knn}"
                  f" {metrics['images_per_s']:.0f} img/s", flush=True)
        self._save()
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
