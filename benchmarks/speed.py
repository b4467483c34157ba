"""Step time and end-to-end throughput, each method with and without the Hallucinator, one run.

    python -m benchmarks.speed                       # CPU: the demo settings (narrow ResNet-18, 28 px)
    python -m benchmarks.speed --profile paper       # GPU: ResNet-18 CIFAR stem, batch 512, bf16 + channels_last
    python -m benchmarks.speed --profile paper --data-root /data   # + end-to-end on real CIFAR-10
    python -m benchmarks.speed --profile paper --e2e-data fashion_mnist   # end-to-end on Fashion-MNIST (offline)

For every (method, Hallucinator off/on[, fused]) it measures, side by side in one process:
  * synthetic step time: inputs already on the device, the trainer's own step function
    (training/step.py: its optimiser, GradScaler, autocast, channels_last, cudnn and compile
    settings, resolved for the device as the trainer resolves them);
  * end-to-end images/s through the real data path: ``cpu`` (the per-sample pipeline in DataLoader
    workers), ``device`` (batched on-device augmentation) and ``torchvision`` (the same recipe from
    torchvision's transforms, RandomResizedCrop on both views: the reference per-sample pipeline)
    and ``lightly`` (lightly's MoCoV2Transform for the same recipe, only when lightly is importable;
    it is no dependency), each with its ratio to the synthetic rate;
  * peak device memory of each variant (CUDA only).
Every row is the median over ``--windows`` windows of ``--steps`` steps, printed with its spread
((max - min) / median); all rows of a method (variants x paths) alternate window by window so
machine drift hits them alike. The Hallucinator's overhead is step_time(with) / step_time(without)
- 1. ``--compile`` adds every variant again with ``compile=true`` (synthetic step, same windows;
``compile_speedup`` = eager / compiled step time). ``--augment-only`` adds augmentation-alone timings (per-sample vs torchvision vs lightly when
installed). Prints tables and writes JSON (default runs/speed/<profile>-<device>.json).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from hallucinator.augmentations import TwoViews, view_transform
from hallucinator.presets import load_config
from hallucinator.training import device_settings, provenance
from hallucinator.training.pipeline import TrainData
from hallucinator.training.step import build_step

PROFILES = {
    # preset base, overrides
    "cpu": ("demo/{method}", ["threads=2"]),
    "cpu-tiny": ("smoke/{method}", ["threads=1", "batch_size=32", "train_subset=256"]),
    "paper": ("{method}-cifar10", ["num_workers=16"]),  # on CUDA: bf16, channels_last, cudnn.benchmark (auto)
}
# The lr the timed steps run at: the step's work does not depend on it, and a small one keeps
# random inputs from driving the weights to inf/NaN over many steps.
TIMING_LR = 1e-3


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def trainer_step(cfg, device: torch.device):
    """(resolved config, ``step(x1, x2)``): the trainer's own step (training/step.py: its
    optimiser, GradScaler, autocast, channels_last, compile) and its cudnn setting, on a fresh model."""
    cfg = device_settings.resolve(cfg, device)
    device_settings.apply_backend(cfg)
    torch.manual_seed(0)
    step = build_step(cfg, device)
    return cfg, lambda x1, x2: step(x1, x2, TIMING_LR)


def _spread(values: list[float]) -> float:
    """(max - min) / median of repeated windows: the spread printed next to every median."""
    med = statistics.median(values)
    return (max(values) - min(values)) / med if med else float("nan")


def _timed(fn, steps: int, device) -> float:
    """Seconds per call over one window of ``steps`` calls."""
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    _sync(device)
    return (time.perf_counter() - t0) / steps


def _setup(method: str, hal: bool, fused: bool, profile: str, device: torch.device, data_root: str | None,
           compiled: bool = False):
    base, extra = PROFILES[profile]
    overrides = [*extra, f"hallucinator={str(hal).lower()}", f"fuse_pairs={str(fused).lower()}",
                 f"device={device.type}", f"compile={str(compiled).lower()}"] + ([f"data_root={data_root}"] if data_root else [])
    cfg = load_config(base.format(method=method), overrides)
    if cfg.threads and device.type == "cpu":
        torch.set_num_threads(cfg.threads)
    cfg, step = trainer_step(cfg, device)
    return base.format(method=method), overrides, cfg, step


def _torchvision_views(aug):
    """The reference per-sample pipeline: the same recipe from torchvision transforms with
    torchvision's own RandomResizedCrop on both views (global torch RNG, no per-sample seeding)."""
    crop = v2.RandomResizedCrop(aug.size, scale=aug.crop_scale, antialias=True)
    view = v2.Compose([crop, *view_transform(aug, False).transforms[1:]])
    return lambda img: (view(img), view(img))


def _lightly_views(aug):
    """lightly's own two-view MoCo v2 transform for the same recipe (PIL in, float [0, 1] out), or
    None when lightly is not installed."""
    try:
        from lightly.transforms import MoCoV2Transform
    except ImportError:
        return None
    from torchvision.transforms.v2.functional import to_pil_image
    views = MoCoV2Transform(  # argument names of lightly 1.6
        input_size=aug.size, min_scale=aug.crop_scale[0], cj_prob=aug.jitter_p, cj_bright=aug.jitter[0],
        cj_contrast=aug.jitter[1], cj_sat=aug.jitter[2], cj_hue=aug.jitter[3], random_gray_scale=aug.gray_p,
        gaussian_blur=aug.blur_p, hf_prob=aug.flip_p, normalize=None)
    return lambda img: tuple(views(to_pil_image(img)))


REFERENCES = {"torchvision": _torchvision_views, "lightly": _lightly_views}


def e2e_paths() -> tuple[str, ...]:
    """The end-to-end paths: ours (cpu, device), then the references; lightly only when installed."""
    return ("cpu", "device", "torchvision") + (("lightly",) if importlib.util.find_spec("lightly") else ())


class _ReferenceViews(Dataset):
    """Two views of item ``i`` from a reference pipeline (``REFERENCES``)."""

    def __init__(self, base: Dataset, views) -> None:
        self.base, self.views = base, views

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int):
        return self.views(self.base[i][0])


class _Stream:
    """Endless (x1, x2) batches of one end-to-end path (a new epoch when one ends), on ``device``."""

    def __init__(self, cfg, path: str, device: torch.device, in_channels: int) -> None:
        self.in_channels = in_channels
        self.data = TrainData(cfg, device, 0, 1)
        if path in REFERENCES:
            workers = cfg.num_workers
            views = _ReferenceViews(self.data.dataset, REFERENCES[path](self.data.aug))
            loader = DataLoader(views, batch_size=cfg.batch_size,
                                shuffle=True, drop_last=True, num_workers=workers, persistent_workers=workers > 0,
                                pin_memory=device.type == "cuda", prefetch_factor=4 if workers > 0 else None)
            norm = self.data.normalize
            self.epoch_fn = lambda e: ((norm(a.to(device, non_blocking=True)), norm(b.to(device, non_blocking=True)))
                                       for a, b in loader)
        else:
            self.epoch_fn = self.data.epoch
        self.epoch, self.it = 0, self.epoch_fn(0)

    def __call__(self):
        try:
            x1, x2 = next(self.it)
        except StopIteration:
            self.epoch += 1
            self.it = self.epoch_fn(self.epoch)
            x1, x2 = next(self.it)
        if x1.shape[1] != self.in_channels:  # grey data through a 3-channel model (--e2e-data fashion_mnist)
            x1, x2 = x1.expand(-1, self.in_channels, -1, -1), x2.expand(-1, self.in_channels, -1, -1)
        return x1, x2


def _e2e_streams(preset: str, overrides: list[str], cfg, device, e2e_data: str, paths) -> tuple[dict, dict]:
    """One ``_Stream`` per end-to-end path, and a note for every path whose data is missing."""
    if e2e_data == "fashion_mnist":
        overrides = [o for o in overrides if not o.startswith("data_root=")] + [
            "dataset=fashion_mnist", "augment=grey", f"image_size={cfg.image_size or 32}", "in_channels=1"]
    streams, notes = {}, {}
    for path in paths:
        aug_on = "device" if path == "device" else "cpu"
        try:
            streams[path] = _Stream(load_config(preset, [*overrides, f"augment_on={aug_on}"]), path, device,
                                    cfg.in_channels)
        except (FileNotFoundError, ValueError) as e:
            notes[path] = str(e).splitlines()[0]
    return streams, notes


def measure_method(method: str, profile: str, device: torch.device, steps: int, windows: int,
                   data_root: str | None, end_to_end: bool, e2e_data: str = "profile",
                   compiled: bool = False) -> list[dict]:
    """All variants of one method and every end-to-end path, their windows INTERLEAVED
    (A B C A B C ...), so drifts of a shared or throttling machine hit every row alike.
    ``compiled`` adds each variant again with ``compile=true`` (synthetic step only)."""
    variants = [(False, False, False), (True, False, False)] + ([(True, True, False)] if method.startswith("moco") else [])
    if compiled:
        variants += [(hal, fused, True) for hal, fused, _ in variants]
    setups = [_setup(method, hal, fused, profile, device, data_root, comp) for hal, fused, comp in variants]
    cfg0 = setups[0][2]
    size = cfg0.image_size or 32
    x1 = torch.randn(cfg0.batch_size, cfg0.in_channels, size, size, device=device)
    x2 = torch.randn_like(x1)
    peaks = []
    for *_, step in setups:  # warm-up (cudnn autotune, allocator), and each variant's peak memory
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        for _ in range(3):
            step(x1, x2)
        _sync(device)
        peaks.append(torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None)
    streams, notes = [], []
    for (*_, comp), (preset, overrides, cfg, step) in zip(variants, setups):
        st, nt = _e2e_streams(preset, overrides, cfg, device, e2e_data, e2e_paths()) if end_to_end and not comp else ({}, {})
        for stream in st.values():  # first batches: worker start-up, device upload
            step(*stream())
        streams.append(st)
        notes.append(nt)
    times: list[dict[str, list[float]]] = [{} for _ in setups]
    for _ in range(windows):
        for i, (*_, step) in enumerate(setups):
            times[i].setdefault("synthetic", []).append(_timed(lambda: step(x1, x2), steps, device))
            for path, stream in streams[i].items():
                times[i].setdefault(path, []).append(_timed(lambda: step(*stream()), steps, device))
    rows = []
    for (hal, fused, comp), (preset, overrides, cfg, step), ts, peak, nt in zip(variants, setups, times, peaks, notes):
        synthetic = statistics.median(ts["synthetic"])
        row = {"method": method, "hallucinator": hal, "fused": fused, "compile": comp, "batch": cfg.batch_size,
               "image_size": size, "backbone": f"{cfg.backbone} w{cfg.width}", "precision": cfg.precision,
               "channels_last": cfg.channels_last, "cudnn_benchmark": cfg.cudnn_benchmark,
               "synthetic_step_ms": 1000 * synthetic, "synthetic_img_s": cfg.batch_size / synthetic,
               "synthetic_step_ms_windows": [1000 * t for t in ts["synthetic"]],
               "synthetic_spread": _spread(ts["synthetic"]), "peak_mem_mb": peak}
        if end_to_end and not comp:
            row["e2e_data"] = e2e_data
            for path in e2e_paths():
                if path in nt:
                    row[f"e2e_{path}_img_s"], row[f"e2e_{path}_note"] = None, nt[path]
                    continue
                rates = [cfg.batch_size / t for t in ts[path]]
                row[f"e2e_{path}_img_s"] = statistics.median(rates)
                row[f"e2e_{path}_img_s_windows"] = rates
                row[f"e2e_{path}_spread"] = _spread(rates)
                row[f"e2e_{path}_ratio"] = row[f"e2e_{path}_img_s"] / row["synthetic_img_s"]
            for ref in REFERENCES:
                if row.get("e2e_cpu_img_s") and row.get(f"e2e_{ref}_img_s"):
                    row[f"per_sample_vs_{ref}"] = row["e2e_cpu_img_s"] / row[f"e2e_{ref}_img_s"]
        rows.append(row)
    eager = {(r["hallucinator"], r["fused"]): r for r in rows if not r["compile"]}
    base_ms = rows[0]["synthetic_step_ms"]
    for row in rows:
        row["hallucinator_overhead"] = (row["synthetic_step_ms"] / base_ms - 1
                                        if row["hallucinator"] and not row["compile"] else None)
        # eager step time / compiled step time of the same variant, measured in the same windows
        row["compile_speedup"] = (eager[(row["hallucinator"], row["fused"])]["synthetic_step_ms"]
                                  / row["synthetic_step_ms"] if row["compile"] else None)
    return rows


def measure_augmentation(profile: str, windows: int, images: int = 256) -> list[dict]:
    """Augmentation alone (no model), CPU, one process: the per-sample pipeline (``TwoViews`` with
    its per-sample ``random.Random``), the torchvision reference and lightly (when importable)
    on the same images, windows interleaved. Returns one row per pipeline (views/s)."""
    import random

    from hallucinator.training.pipeline import mix_seed
    cfg = load_config(PROFILES[profile][0].format(method="mocov2"), [*PROFILES[profile][1], "hallucinator=true"])
    data = TrainData(cfg, torch.device("cpu"), 0, 1)
    imgs = [data.dataset[i][0] for i in range(images)]
    ours = TwoViews(data.aug)
    pipes = {"per-sample (ours)": lambda img, i: ours(img, random.Random(mix_seed(0, 0, i)))}
    for name, build in REFERENCES.items():
        views = build(data.aug)
        if views is not None:
            pipes[name] = lambda img, i, views=views: views(img)
    times = {k: [] for k in pipes}
    for _ in range(windows):
        for name, fn in pipes.items():
            t0 = time.perf_counter()
            for i, img in enumerate(imgs):
                fn(img, i)
            times[name].append((time.perf_counter() - t0) / images)
    return [{"pipeline": k, "image_size": data.aug.size, "us_per_image_2_views": 1e6 * statistics.median(v),
             "spread": _spread(v), "lightly": "installed" if "lightly" in pipes else "not installed"}
            for k, v in times.items()]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.speed", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", choices=sorted(PROFILES), default=None, help="default: paper on CUDA, cpu otherwise")
    p.add_argument("--methods", default="mocov1,mocov2,simclr,simsiam")
    p.add_argument("--steps", type=int, default=None, help="steps per timing window")
    p.add_argument("--windows", type=int, default=5)
    p.add_argument("--data-root", default=None, help="CIFAR-10 root for the paper profile's end-to-end rows")
    p.add_argument("--e2e-data", choices=("profile", "fashion_mnist"), default="profile",
                   help="end-to-end data: the profile's dataset, or Fashion-MNIST at the profile's image size "
                        "(grey, repeated to the model's channels)")
    p.add_argument("--no-end-to-end", action="store_true")
    p.add_argument("--compile", action="store_true",
                   help="also time every variant with compile=true, side by side (synthetic step; compile_speedup)")
    p.add_argument("--augment-only", action="store_true", help="also time the augmentation pipelines alone (CPU)")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    profile = args.profile or ("paper" if device.type == "cuda" else "cpu")
    steps = args.steps or (20 if device.type == "cuda" else 3)
    name = (torch.cuda.get_device_name(device) if device.type == "cuda"
            else f"CPU: {provenance.cpu_name()} ({torch.get_num_threads()} threads)")
    rows = []
    for method in args.methods.split(","):
        for row in measure_method(method, profile, device, steps, args.windows, args.data_root,
                                  not args.no_end_to_end, args.e2e_data, args.compile):
            rows.append(row)
            _print_row(row)
    augment = measure_augmentation(profile, args.windows) if args.augment_only else []
    for r in augment:
        print(f"augment-only {r['pipeline']:<18} {r['us_per_image_2_views']:8.0f} us/image (2 views) "
              f"spread {100 * r['spread']:.0f}%  [{r['image_size']} px; lightly {r['lightly']}]")
    out = args.out or Path("runs/speed") / f"{profile}-{device.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"device": name, "torch": torch.__version__, "profile": profile, "steps": steps,
                               "windows": args.windows, "e2e_data": args.e2e_data, "rows": rows,
                               "augment_only": augment}, indent=2))
    print(f"device: {name}; profile {profile}; {args.windows} interleaved windows x {steps} steps; "
          f"median (spread = (max - min) / median); wrote {out}")
    return 0


_HEADER = False


def _print_row(r: dict) -> None:
    global _HEADER
    if not _HEADER:
        print(f"{'method':<8} {'hal':<6} {'step ms':>8} {'sprd':>5} {'overhead':>9} "
              + " ".join(f"{'e2e ' + p:>15} {'sprd':>5} {'ratio':>5}" for p in e2e_paths())
              + f" {'cpu/tv':>6} {'cpu/lightly':>11} {'peak MB':>8}")
        _HEADER = True
    hal = ("fused" if r["fused"] else "yes") if r["hallucinator"] else "no"
    hal += "+c" if r["compile"] else ""
    if r["compile"]:
        ov = f"x{r['compile_speedup']:.2f}"  # the column holds the compile speed-up on compiled rows
    else:
        ov = f"{100 * r['hallucinator_overhead']:+.1f}%" if r["hallucinator_overhead"] is not None else "-"

    def f(key, fmt, scale=1.0):
        v = r.get(key)
        return format(scale * v, fmt) if v is not None else "n/a"
    e2e = " ".join(f"{f(f'e2e_{p}_img_s', '15.0f'):>15} {f(f'e2e_{p}_spread', '4.0f', 100) + '%':>5} "
                   f"{f(f'e2e_{p}_ratio', '5.2f'):>5}" for p in e2e_paths())
    print(f"{r['method']:<8} {hal:<6} {r['synthetic_step_ms']:>8.1f} {100 * r['synthetic_spread']:>4.0f}% {ov:>9} "
          f"{e2e} {f('per_sample_vs_torchvision', '6.2f'):>6} {f('per_sample_vs_lightly', '11.2f'):>11} "
          f"{f('peak_mem_mb', '8.0f'):>8}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
