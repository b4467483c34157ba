"""Where each epoch's metrics go: ``metrics.jsonl``, TensorBoard event files, one console line; and
the step records of ``step_diagnostics`` to TensorBoard too (``steps.jsonl`` is written there)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

from .. import rundir

# TensorBoard tag of each scalar in metrics.jsonl (epoch is the x axis, not a scalar).
TB_TAGS = {"loss": "train/loss", "lr": "train/lr", "sim_qk": "similarity/S(q,k)",
           "sim_qhat_k": "similarity/S(q_hat,k)", "g2": "uniformity/G2", "knn_top1": "eval/knn_top1",
           "images_per_s": "speed/images_per_s", "epoch_time_s": "speed/epoch_time_s",
           "peak_mem_mb": "memory/peak_mb", "skipped_images": "data/skipped_images"}


def open_tensorboard(log_dir: Path) -> Optional[Any]:
    """A ``SummaryWriter`` on ``log_dir``, or None (with one message) when tensorboard is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:
        print(f"note: TensorBoard logging off ({e}); metrics.jsonl is still written. "
              "Install it with `pip install tensorboard`.", file=sys.stderr, flush=True)
        return None
    return SummaryWriter(log_dir=str(log_dir))


class MetricLog:
    """Appends one epoch record to ``metrics.jsonl`` and the same scalars to ``tensorboard/``."""

    def __init__(self, run_dir: Path, tensorboard: bool = True) -> None:
        self.path = Path(run_dir) / rundir.METRICS
        self.writer = open_tensorboard(Path(run_dir) / rundir.TENSORBOARD) if tensorboard else None

    def truncate(self, done_epochs: int) -> None:
        """Forgets epochs after ``done_epochs`` (a resumed run re-logs them)."""
        rundir.keep_jsonl(self.path, "epoch", done_epochs)

    def write(self, values: dict[str, Any]) -> dict[str, Any]:
        record = rundir.metric_record(values)
        rundir.append_jsonl(self.path, record)
        if self.writer is not None:
            for key, tag in TB_TAGS.items():
                if record.get(key) is not None:
                    self.writer.add_scalar(tag, record[key], global_step=record["epoch"])
            self.writer.flush()
        return record

    def write_step(self, record: dict[str, Any]) -> None:
        """One step record's scalars to TensorBoard as ``steps/<key>`` at its global step."""
        if self.writer is None:
            return
        for key, value in record.items():
            if key not in ("step", "epoch") and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(f"steps/{key}", value, global_step=record["step"])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def epoch_line(m: dict[str, Any], epochs: int) -> str:
    """The console summary of one epoch: loss, lr, S(q,k), S(q_hat,k), G2, kNN, speed."""
    def fmt(key: str, spec: str) -> str:
        return "n/a" if m.get(key) is None else format(m[key], spec)
    return (f"epoch {m['epoch']}/{epochs} loss {fmt('loss', '.4f')} lr {fmt('lr', '.4g')} "
            f"S(q,k) {fmt('sim_qk', '.3f')} S(q_hat,k) {fmt('sim_qhat_k', '.3f')} G2 {fmt('g2', '.4f')} "
            f"knn {fmt('knn_top1', '.2f')} {fmt('images_per_s', '.0f')} img/s")
