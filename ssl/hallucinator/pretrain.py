"""Pretrain a Siamese method, with or without the Hallucinator.

    python -m hallucinator.pretrain --config mocov2-hal-cifar10 data_root=/data/cifar10
    python -m hallucinator.pretrain --config my_run.yaml epochs=10 precision=bf16
    torchrun --nproc_per_node 8 -m hallucinator.pretrain --config simclr-hal-in200 data_root=/data/imagenet

Re-running the same command resumes from the run directory's checkpoint (``--no-resume`` refuses
to touch an existing one). SLURM, several nodes: see the README ("Multi-node").

Exit codes: 0 finished, 1 failed, 2 configuration error, 3 data error, 128+N stopped by signal N
(resumable; under torchrun every rank stops at the same step and exits 128+N, whichever rank got N). Errors are one line; ``--debug`` or HALLUCINATOR_DEBUG=1 shows the traceback.
"""
from __future__ import annotations

import argparse
import signal
import sys

from . import cli_errors
from .config import ConfigError, describe_keys
from .presets import load_config
from .presets import PRESETS


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m hallucinator.pretrain", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="presets (<method>[-hal]-<dataset>, demo/<method>[-hal], smoke/<method>[-hal]):\n  "
               + "\n  ".join(", ".join(sorted(PRESETS)[i:i + 4]) for i in range(0, len(PRESETS), 4))
               + "\n\nconfig keys (override with key=value; a YAML file may set any of them and 'preset'):\n"
               + describe_keys())
    p.add_argument("--config", required=False, help="a preset name or a YAML file of keys")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, type-checked")
    p.add_argument("--no-resume", action="store_true", help="fail instead of resuming an existing checkpoint")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.add_argument("--list-presets", action="store_true", help="list preset names and exit")
    p.add_argument("--debug", action="store_true", help=f"show tracebacks (also: {cli_errors.DEBUG_ENV}=1)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list_presets:
        print("\n".join(sorted(PRESETS)))
        return 0
    if not args.config:
        print("error: --config PRESET_OR_YAML is required (see --help / --list-presets)", file=sys.stderr)
        return 2
    debug = cli_errors.debug_requested(args.debug)
    try:
        cfg = load_config(args.config, args.overrides)
    except ConfigError as e:
        if debug:
            raise
        return cli_errors.report(e)
    if args.print_config:
        from dataclasses import asdict
        for k, v in asdict(cfg).items():
            print(f"{k}: {v!r}")
        return 0
    from . import distributed
    from .training.trainer import STOP_SIGNALS, Trainer, run_dir_for  # heavy imports after argument checks

    if args.no_resume and (run_dir_for(cfg) / "checkpoint.pt").exists():
        print(f"error: {run_dir_for(cfg)} already has a checkpoint (drop --no-resume to continue it)", file=sys.stderr)
        return 2
    previous = {}
    try:
        trainer = Trainer(cfg)
        # From here to the end of the shutdown a signal asks the run to stop (fit agrees on it across
        # ranks): one landing after fit, e.g. a second rank's later signal, cannot cut the exit short.
        previous = {s: signal.signal(s, trainer.on_signal) for s in STOP_SIGNALS}
        trainer.fit()
    except Exception as e:  # one line per failure; run.json already says "failed"
        if debug:
            raise
        return cli_errors.report(e)
    finally:
        distributed.shutdown()
        for s, handler in previous.items():
            signal.signal(s, handler)
    if trainer.interrupted:
        print(f"stopped by signal {trainer.interrupted}; re-run the same command to resume", file=sys.stderr)
        return 128 + trainer.interrupted
    return 0


def _exit_quietly(code: int) -> None:
    """Exit with ``code``, ignoring stop signals from here on: under torchrun another rank's later
    SIGTERM (or a scheduler's second one) may land while the interpreter tears down, and must not
    turn a clean stop (exit 128+N, checkpoint saved) into a kill by the default action."""
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, signal.SIG_IGN)
    sys.exit(code)


if __name__ == "__main__":
    _exit_quietly(main())
