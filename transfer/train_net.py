#!/usr/bin/env python
"""Fine-tune R50-C4 detectors with MoCo's detection protocol (the paper's Table 7).

    python transfer/train_net.py --config voc_r50c4.yaml --weights OUT.pkl [--num-gpus 8]
        [--resume] [--eval-only] [--trials 5] [--runs ROOT [--tag TAG]]
        [--method NAME] [--hallucinator | --no-hallucinator] [KEY VALUE ...]  # detectron2 overrides
    python transfer/train_net.py --config voc_r50c4.yaml --random-init ...  # explicit random init

Before any dataset is read, the weights are read without trusting them (safe_weights.py: a
.pkl with anything beyond numpy arrays and plain containers is refused) and must hold the whole
ResNet-50 backbone; otherwise the script exits with code 2 and says why. detectron2 is then
handed the state dict read here (SafeCheckpointer), never a file to pickle.load.

--config takes a path or a file name in transfer/configs/. Writes results.json to
cfg.OUTPUT_DIR (default runs/transfer/<config name>); with --trials N, trial_i/ subfolders and
summary.json (mean, std). --runs ROOT writes ROOT/table7/<profile>/<task>-<method>[-hal][-TAG]
instead (trials as <name>-trial<i>/ siblings), for `python -m reports.build --suite table7`.
The method / Hallucinator flag recorded in results.json come from the weights' provenance
(d2_results.weights_source) unless --method / --hallucinator override them. See
transfer/README.md.
"""
import argparse
import json
import logging
import os
import time
import warnings
from pathlib import Path

# detectron2 0.7 applies torch.jit.script to two helpers at import; torch 2.14 deprecates it with a
# FutureWarning printed on every command. It is third-party noise about code this suite never calls.
warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)

import torch  # noqa: E402
from detectron2.checkpoint import DetectionCheckpointer  # noqa: E402
from detectron2.config import get_cfg  # noqa: E402
from detectron2.engine import DefaultTrainer, default_argument_parser, default_setup, hooks, launch  # noqa: E402
from detectron2.utils import comm  # noqa: E402

import d2_heads  # noqa: F401  (registers Res5ROIHeadsExtraNorm)
from d2_data import build_evaluator, check_datasets, register_smoke_datasets, task_of
from d2_results import (profile_of, protocol_deviations, results_payload, sha256_of,
                        summarize_trials, table7_name, table7_run_dir, table7_summary_path,
                        weights_source, write_json)
from safe_weights import WeightsError, load_weights

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
register_smoke_datasets()


class StepTimer(hooks.HookBase):
    """Wall time of training steps only (first hook: excludes evaluation, checkpoints)."""

    seconds, steps = 0.0, 0

    def before_step(self):
        self._start = time.perf_counter()

    def after_step(self):
        self.seconds += time.perf_counter() - self._start
        self.steps += 1


class SafeCheckpointer(DetectionCheckpointer):
    """DetectionCheckpointer that reads weights with safe_weights.load_weights (restricted
    unpickling of .pkl, weights_only .pth, backbone checked) instead of pickle.load."""

    def _load_file(self, filename):
        if filename.endswith(".pkl"):
            return load_weights(filename)
        return super()._load_file(filename)  # .pth: torch.load, weights_only by default


class Trainer(DefaultTrainer):
    def __init__(self, cfg):
        super().__init__(cfg)
        old, self.checkpointer = self.checkpointer, SafeCheckpointer(
            self.checkpointer.model, cfg.OUTPUT_DIR, **self.checkpointer.checkpointables)
        for hook in self._hooks:  # the periodic checkpointer saves through the same object
            if getattr(hook, "checkpointer", None) is old:
                hook.checkpointer = self.checkpointer

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        return build_evaluator(cfg, dataset_name,
                               output_folder or os.path.join(cfg.OUTPUT_DIR, "inference"))

    def build_hooks(self):
        self.step_timer = StepTimer()
        return [self.step_timer] + super().build_hooks()


def _value(cfg, key):
    for part in key.split("."):
        cfg = getattr(cfg, part, None)
    return cfg


def deviations_of(args) -> list[str]:
    """Protocol keys the command line's KEY VALUE overrides change (d2_results.NON_PROTOCOL_KEYS
    lists the keys that do not count)."""
    file_cfg = get_cfg()
    file_cfg.merge_from_file(args.config_file)
    cfg = file_cfg.clone()
    cfg.merge_from_list(args.opts)
    return protocol_deviations(list(args.opts), lambda k: _value(file_cfg, k),
                               lambda k: _value(cfg, k))


def profile(args) -> str:
    return profile_of(args.config_file, deviations_of(args), args.eval_only)


def load_cfg(args, trial):
    cfg = get_cfg()
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    if args.weights:
        cfg.MODEL.WEIGHTS = args.weights
    if len(cfg.DATASETS.TEST) != 1:
        raise ValueError(f"exactly one test dataset expected, got {cfg.DATASETS.TEST}")
    if args.runs:  # the reports' layout; trials are sibling run dirs (see d2_results)
        cfg.OUTPUT_DIR = str(table7_run_dir(args.runs, profile(args), run_name(args, cfg),
                                            trial if args.trials > 1 else None))
    else:
        cfg.OUTPUT_DIR = cfg.OUTPUT_DIR or os.path.join("runs", "transfer",
                                                        Path(args.config_file).stem)
        if args.trials > 1:
            cfg.OUTPUT_DIR = os.path.join(cfg.OUTPUT_DIR, f"trial_{trial}")
    if args.trials > 1:
        cfg.SEED = cfg.SEED + trial if cfg.SEED >= 0 else -1  # -1: a fresh random seed per trial
    if cfg.MODEL.DEVICE.startswith("cuda") and not torch.cuda.is_available():
        cfg.MODEL.DEVICE = "cpu"  # no GPU here: detectron2 would fail at model build
    cfg.freeze()
    return cfg


def source_of(args, cfg) -> dict:
    return weights_source(cfg.MODEL.WEIGHTS, args.method, args.hallucinator)


def run_name(args, cfg) -> str:
    source = source_of(args, cfg)
    return table7_name(task_of(cfg.DATASETS.TEST[0]), source["method"], source["hallucinator"],
                       args.tag)


def run_trial(args, trial):
    cfg = load_cfg(args, trial)
    for name in ("detectron2", "fvcore"):  # one log file per trial, no repeated console lines
        logging.getLogger(name).handlers.clear()
    default_setup(cfg, args)
    if args.eval_only:
        model, timer = Trainer.build_model(cfg), StepTimer()
        SafeCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(
            cfg.MODEL.WEIGHTS, resume=args.resume)
        results = Trainer.test(cfg, model)
    else:
        trainer = Trainer(cfg)
        trainer.resume_or_load(resume=args.resume)
        trainer.train()
        results, timer = trainer._last_eval_results, trainer.step_timer
    if comm.is_main_process():
        gpu = f" ({torch.cuda.get_device_name()})" if cfg.MODEL.DEVICE.startswith("cuda") else ""
        write_json(Path(cfg.OUTPUT_DIR) / "results.json", results_payload(
            task=task_of(cfg.DATASETS.TEST[0]), config_file=args.config_file,
            source=source_of(args, cfg), results=results, weights=cfg.MODEL.WEIGHTS, trial=trial,
            opts=list(args.opts), deviations=deviations_of(args), eval_only=args.eval_only,
            weights_sha256=sha256_of(cfg.MODEL.WEIGHTS), **code_version(),
            datasets={"train": list(cfg.DATASETS.TRAIN), "test": cfg.DATASETS.TEST[0]},
            iterations=0 if args.eval_only else cfg.SOLVER.MAX_ITER,
            seconds_per_iter=timer.seconds / timer.steps if timer.steps else None,
            device=f"{cfg.MODEL.DEVICE}{gpu} x{comm.get_world_size()}"))


def code_version() -> dict:
    """git commit and dirty flag of this checkout (None outside git) and detectron2's version."""
    import detectron2
    from hallucinator.training.provenance import collect

    info = collect(torch.device("cpu"), 1, 0)
    return {"git_commit": info["git_commit"], "git_dirty": info["git_dirty"],
            "detectron2": detectron2.__version__}


def check_weights(args) -> str:
    """The weights to start from, checked (exit 2 with the reason before any dataset is read)."""
    cfg = get_cfg()
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    weights = args.weights or cfg.MODEL.WEIGHTS
    if weights and args.random_init:
        raise WeightsError(f"--random-init and weights {weights} exclude each other")
    if not weights and not args.random_init:
        raise WeightsError("no weights: pass --weights FILE.pkl (transfer/convert.py) or, for a "
                           "random-init baseline, --random-init")
    if weights:
        load_weights(weights)
    return weights


def main(argv=None):
    parser = default_argument_parser()
    parser.add_argument("--config", dest="config_file", help="alias of --config-file")
    parser.add_argument("--weights", default="", help="converted weights (transfer/convert.py)")
    parser.add_argument("--random-init", action="store_true",
                        help="no weights: a random-init baseline (recorded as random-init)")
    parser.add_argument("--trials", type=int, default=1, help="repeated fine-tuning runs")
    parser.add_argument("--runs", default="", help="runs root: OUTPUT_DIR becomes ROOT/table7/"
                        "<profile>/<task>-<method>[-hal][-TAG] (what reports.build reads)")
    parser.add_argument("--tag", default="", help="suffix of the run name under --runs")
    parser.add_argument("--method", default=None,
                        help="pre-training method to record (default: from the weights)")
    parser.add_argument("--hallucinator", action=argparse.BooleanOptionalAction, default=None,
                        help="record the weights as pre-trained with(out) the Hallucinator "
                             "(default: from the weights)")
    args = parser.parse_args(argv)
    if not os.path.exists(args.config_file) and (CONFIG_DIR / args.config_file).exists():
        args.config_file = str(CONFIG_DIR / args.config_file)
    if not os.path.exists(args.config_file):
        parser.error(f"config {args.config_file!r} not found (transfer/configs/ has "
                     f"{', '.join(sorted(p.name for p in CONFIG_DIR.glob('*.yaml')))})")
    try:
        check_weights(args)
    except WeightsError as err:
        parser.exit(2, f"error: {err}\n")
    if args.runs and "OUTPUT_DIR" in args.opts[::2]:
        parser.error("--runs sets OUTPUT_DIR; give one or the other")
    dirs = []
    for trial in range(args.trials):
        cfg = load_cfg(args, trial)
        if cfg.MODEL.DEVICE == "cpu" and args.num_gpus * args.num_machines > 1:
            parser.error("several processes need GPUs (detectron2 wraps CUDA models in DDP); "
                         "on CPU run one process (--num-gpus 1)")
        if trial == 0:
            source = source_of(args, cfg)
            print(f"weights: method {source['method']}, hallucinator {source['hallucinator']} "
                  f"({source['origin']})")
            if profile(args) == "custom":
                print(f"note: not MoCo's protocol (overridden: {deviations_of(args)}, eval-only "
                      f"{args.eval_only}): recorded under profile 'custom'")
            if source["method"] == "unknown":
                print("warning: the weights' method is unknown; pass --method NAME so Table 7 "
                      "can place the run")
        try:
            check_datasets([*cfg.DATASETS.TRAIN, *cfg.DATASETS.TEST])
        except FileNotFoundError as err:
            parser.exit(2, f"error: {err}\n")
        dirs.append(cfg.OUTPUT_DIR)
        done = Path(cfg.OUTPUT_DIR) / "results.json"
        if (args.resume and not args.eval_only and done.exists()
                and json.loads(done.read_text())["iterations"] == cfg.SOLVER.MAX_ITER):
            print(f"trial {trial}: {done} exists for {cfg.SOLVER.MAX_ITER} iterations, skipped")
            continue
        launch(run_trial, args.num_gpus, num_machines=args.num_machines,
               machine_rank=args.machine_rank, dist_url=args.dist_url, args=(args, trial))
    if args.trials > 1 and args.machine_rank == 0:
        out = (table7_summary_path(args.runs, profile(args), run_name(args, cfg))
               if args.runs else Path(dirs[0]).parent / "summary.json")
        summary = summarize_trials(dirs, out)
        print(f"summary of {args.trials} trials: {summary}")


if __name__ == "__main__":
    main()
