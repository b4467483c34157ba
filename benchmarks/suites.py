"""What each suite runs, per profile: a list of ``RunSpec`` (one run directory each).

Profiles:
  * ``paper``: the paper's settings (presets ``<method>[-hal]-<dataset>``), data under DATA_ROOT,
    the 100-epoch linear probe; GPU work (torchrun on all local GPUs).
  * ``demo``: real runs on a 2-core CPU on the real Fashion-MNIST (Debian package): a narrow
    ResNet-18 (width 4), 3 seeds, fast linear probes (all labels and 1000 labels) and kNN, with
    a random-weights encoder and raw-pixel logistic regression beside them.
  * ``smoke``: the demo pipeline shrunk to minutes (2k images, 2 epochs, 1 seed), for tests.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from hallucinator.hallucinator import STABILISED_PRESETS
from hallucinator.methods.factory import METHODS
from hallucinator.presets import LARGE_DATASETS, SMALL_DATASETS

PROFILES = ("smoke", "demo", "paper")
SUITE_NAMES = ("table1", "table2", "table3", "table4", "table5", "table6", "table7", "fig4", "fig5", "stabilise",
               "schedule")
SEEDS = {"smoke": (0,), "demo": (0, 1, 2), "paper": (0,)}
CPU_PROBES = ["fast_linear", "fast_linear_1k", "knn"]
PAPER_PROBES = ["linear", "knn"]


@dataclass(frozen=True)
class RunSpec:
    """One run directory: pretrain ``preset + overrides`` (unless ``baseline``), then evaluate.

    ``row`` is the run's row label in its suite's table; it is recorded in config.json (with suite
    and profile) and the reports read it back: the method (or reference encoder) in Tables 1-2, the
    ablation level in Tables 3-6 (spelled as ``reports/paper_numbers.csv`` spells it), the variant
    in Figs 4-5.
    """

    name: str
    preset: str
    row: str
    overrides: tuple[str, ...] = ()
    probes: tuple[str, ...] = ()
    baseline: Optional[str] = None        # random-init | raw-pixels: no pretraining


def _preset(profile: str, method: str, hal: bool, dataset: str) -> str:
    tag = f"{method}-hal" if hal else method
    return f"{tag}-{dataset}" if profile == "paper" else f"{profile}/{tag}"


def _data_root(profile: str, dataset: str, data_root: Optional[str]) -> tuple[str, ...]:
    if profile != "paper":
        return ()
    if not data_root:
        raise SystemExit("the paper profile needs the datasets: pass --data-root DIR or set DATA_ROOT "
                         "(DIR/cifar-10-batches-py, DIR/cifar-100-python, DIR/stl10_binary, "
                         "DIR/tiny-imagenet-200, DIR/imagenet/{train,val})")
    return (f"data_root={data_root}/imagenet" if dataset in LARGE_DATASETS else f"data_root={data_root}",)


def _probes(profile: str) -> tuple[str, ...]:
    return tuple(PAPER_PROBES if profile == "paper" else CPU_PROBES)


def _gain_table(profile: str, datasets, seeds, methods, data_root) -> list[RunSpec]:
    specs = []
    for ds in datasets:
        for seed in seeds:
            for m in methods:
                for hal in (False, True):
                    specs.append(RunSpec(f"{m}{'-hal' if hal else ''}-{ds}-s{seed}", _preset(profile, m, hal, ds), m,
                                         (f"seed={seed}", *_data_root(profile, ds, data_root)), _probes(profile)))
            if profile != "paper":  # reference encoders beside the pretrained ones
                specs.append(RunSpec(f"random-init-{ds}-s{seed}", _preset(profile, "mocov2", False, ds),
                                     "random-init", (f"seed={seed}",), _probes(profile), baseline="random-init"))
        if profile != "paper":
            specs.append(RunSpec(f"raw-pixels-{ds}", _preset(profile, "mocov2", False, ds), "raw-pixels", ("seed=0",),
                                 ("fast_linear", "fast_linear_1k"), baseline="raw-pixels"))
    return specs


# Ablation rows (Tables 3-6): MoCoV2 on IN-200 in the paper; on Fashion-MNIST in the CPU profiles.
# (run name, row label, hallucinator?, overrides); "baseline" rows are the plain MoCoV2 control
# (Table 3's row with no module enabled).
ABLATIONS = {
    "table3": [("baseline", "baseline", False, ()),
               ("cc", "cc", False, ("crop_p=0.5",)),
               ("ae", "ae", True, ("crop_p=none", "hallucinator_layers=0")),
               ("h", "h", True, ("crop_p=none", "beta_range=0,0")),
               ("ae+h", "ae+h", True, ("crop_p=none",)),
               ("cc+ae+h", "cc+ae+h", True, ())],
    "table4": [("baseline", "baseline", False, ())]
    + [(f"p{p}", f"{p:g}", True, (f"crop_p={p}",)) for p in (0.9, 0.8, 0.7, 0.6, 0.5, 0.4)],
    "table5": [("baseline", "baseline", False, ())]
    + [(f"beta{a}_{b}", f"({a:g}, {b:g})", True, (f"beta_range={a},{b}",))
       for a, b in ((-0.5, 0.0), (0.0, 0.5), (0.5, 1.0), (1.0, 1.5), (0.0, 1.0))],
    "table6": [("baseline", "baseline", False, ())]
    + [(f"n{n}", str(n), True, (f"hallucinator_layers={n}",)) for n in range(5)],
}


# Stabilised variants (hallucinator.hallucinator docstring) against the baseline and the paper's
# Hallucinator, MoCoV2 + center crop, every seed, on the profile's own recipe (demo: 468 steps),
# with step diagnostics every 20 steps and the fast linear probe on all labels. The warm-up
# variant raises the extra pair's weight over the first third of the demo run.
STABILISE_VARIANTS = ("baseline", "paper", *STABILISED_PRESETS)
STABILISE_PROFILE = {
    "demo": ("knn_every=0", "diag_every=20"),
    "smoke": ("diag_every=2",),
    "paper": (),
}
STABILISE_WARMUP_STEPS = {"demo": 150, "smoke": 8, "paper": 10000}


def _stabilise_overrides(variant: str, profile: str) -> tuple[str, ...]:
    if variant in ("baseline", "paper"):
        return ()
    warmup = (f"hallucinator_warmup_steps={STABILISE_WARMUP_STEPS[profile]}",) if variant == "warmup" else ()
    return (f"hallucinator_preset={variant}", *warmup)


def _stabilise(profile: str, seeds, data_root) -> list[RunSpec]:
    ds = "cifar10" if profile == "paper" else "fashion_mnist"
    probes = ("fast_linear",) if profile != "paper" else _probes(profile)
    specs = [RunSpec(f"{v}-s{seed}", _preset(profile, "mocov2", v != "baseline", ds), v,
                     (f"seed={seed}", *_stabilise_overrides(v, profile), *STABILISE_PROFILE[profile],
                      *_data_root(profile, ds, data_root)), probes)
             for seed in seeds for v in STABILISE_VARIANTS]
    if profile != "paper":  # the same encoder with random weights, on the same probe, per seed
        specs += [RunSpec(f"random-init-s{seed}", _preset(profile, "mocov2", False, ds), "random-init",
                          (f"seed={seed}", *STABILISE_PROFILE[profile]), probes, baseline="random-init")
                  for seed in seeds]
    return specs


# Schedule suite (does the gain grow with training length?): MoCoV2 on the profile's recipe at 1x,
# 3x and 10x its steps, baseline and the paper's Hallucinator seed-paired, the ``warmup`` variant
# at the longest length, and random weights per seed. Longer runs take more epochs over the SAME
# training subset, so the number of steps is the only thing that changes (over all 60k images the
# data would change with the length, and the 1x run would no longer be the demo's own run).
SCHEDULE_MULTIPLES = (1, 3, 10)
SCHEDULE_SEEDS = {"demo": (0, 1, 2, 3, 4), "smoke": (0, 1), "paper": (0,)}
SCHEDULE_WARMUP_SEEDS = {"demo": (0, 1, 2), "smoke": (0,), "paper": (0,)}
SCHEDULE_PROFILE = {"demo": ("knn_every=0", "diag_every=20"), "smoke": ("knn_every=0", "diag_every=2"), "paper": ()}


def schedule_length(run_name: str) -> int:
    """The multiple of the profile's steps a schedule run trains for (``x10-paper-s0`` -> 10)."""
    head = run_name.split("-", 1)[0]
    if not (head.startswith("x") and head[1:].isdigit()):
        raise ValueError(f"{run_name!r} is not a schedule run name (x<multiple>-<arm>-s<seed>)")
    return int(head[1:])


def _schedule(profile: str, explicit_seeds, data_root) -> list[RunSpec]:
    from hallucinator.presets import PRESETS
    ds = "cifar10" if profile == "paper" else "fashion_mnist"
    seeds = explicit_seeds or SCHEDULE_SEEDS[profile]
    base_epochs = PRESETS[_preset(profile, "mocov2", False, ds)].epochs
    probes = _probes(profile)
    common = lambda seed: (f"seed={seed}", *SCHEDULE_PROFILE[profile], *_data_root(profile, ds, data_root))
    specs = [RunSpec(f"random-init-s{seed}", _preset(profile, "mocov2", False, ds), "random-init",
                     common(seed), probes, baseline="random-init") for seed in seeds if profile != "paper"]
    longest = SCHEDULE_MULTIPLES[-1]
    warm = set(SCHEDULE_WARMUP_SEEDS[profile]) & set(seeds) or {seeds[0]}
    for seed in seeds:  # seed-major: an interrupted suite holds whole seeds at every length
        for mult in SCHEDULE_MULTIPLES:
            for arm in ("baseline", "paper"):
                specs.append(RunSpec(f"x{mult}-{arm}-s{seed}", _preset(profile, "mocov2", arm == "paper", ds), arm,
                                     (*common(seed), f"epochs={base_epochs * mult}"), probes))
        if seed in warm:
            specs.append(RunSpec(f"x{longest}-warmup-s{seed}", _preset(profile, "mocov2", True, ds), "warmup",
                                 (*common(seed), f"epochs={base_epochs * longest}",
                                  *_stabilise_overrides("warmup", profile)), probes))
    return specs


def _ablation(suite: str, profile: str, seeds, data_root) -> list[RunSpec]:
    ds = "in200" if profile == "paper" else "fashion_mnist"
    return [RunSpec(f"{name}-s{seed}", _preset(profile, "mocov2", hal, ds), row,
                    (f"seed={seed}", *ov, *_data_root(profile, ds, data_root)), _probes(profile))
            for name, row, hal, ov in ABLATIONS[suite] for seed in seeds]


def _figure(suite: str, profile: str, seeds, data_root) -> list[RunSpec]:
    ds = "cifar10" if profile == "paper" else "fashion_mnist"
    variants = [("mocov2", False, ()), ("mocov2-hal", True, ())]
    if suite == "fig4":
        variants.append(("mocov2-symmetric", False, ("extrapolation=symmetric",)))
        probes: tuple[str, ...] = ("knn",)
    else:  # Fig 5: 2-D embeddings on the circle
        variants = [(n, h, ("dim=2",)) for n, h, _ in variants]
        probes = ("features_2d", "knn")
    return [RunSpec(f"{name}-s{seed}", _preset(profile, "mocov2", hal, ds), name,
                    (f"seed={seed}", *ov, *_data_root(profile, ds, data_root)), probes)
            for name, hal, ov in variants for seed in seeds]


def build_suite(suite: str, profile: str, seeds=None, methods=None, data_root: Optional[str] = None) -> list[RunSpec]:
    """The runs of ``suite`` under ``profile`` (optionally restricted to some seeds / methods)."""
    if profile not in PROFILES:
        raise SystemExit(f"unknown profile {profile!r}; choose one of {PROFILES}")
    explicit = tuple(seeds) if seeds else None
    seeds = explicit or SEEDS[profile]
    methods = tuple(methods) if methods else METHODS
    bad = sorted(set(methods) - set(METHODS))
    if bad:
        raise SystemExit(f"unknown method(s) {bad}; choose from {METHODS}")
    if suite == "table1":
        datasets = SMALL_DATASETS if profile == "paper" else ("fashion_mnist",)
        return _gain_table(profile, datasets, seeds, methods, data_root)
    if suite == "table2":
        if profile != "paper":
            raise SystemExit("table2 (ResNet-50 on IN-200 / IN-1K) exists only in the paper profile: it needs "
                             "ImageNet and GPUs. Use PROFILE=paper with DATA_ROOT.")
        return _gain_table(profile, LARGE_DATASETS, seeds, methods, data_root)
    if suite in ABLATIONS:
        return _ablation(suite, profile, seeds[:1] if profile == "demo" else seeds, data_root)
    if suite == "stabilise":
        return _stabilise(profile, seeds, data_root)
    if suite == "schedule":
        return _schedule(profile, explicit, data_root)
    if suite in ("fig4", "fig5"):
        return _figure(suite, profile, seeds[:1], data_root)
    if suite == "table7":
        raise SystemExit("table7 runs are detection fine-tunes: see `python transfer/train_net.py --help` "
                         "(results land in runs/table7/<profile>/ and `make report` tabulates them)")
    raise SystemExit(f"unknown suite {suite!r}; choose from {', '.join(SUITE_NAMES)}")
