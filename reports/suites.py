"""Suite registry: what each benchmark suite varies and how a run config maps to a table row.

Every suite is described by data (``SUITES``) so that one table builder per *shape* serves
all of them: Tables 1-2 are "gain" tables (methods x datasets x {w/o, w/}); Tables 3-6 are
"ablation" tables pivoted by the suite's varying key; Table 7 is the transfer table.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

BASELINE_METHODS = ("random-init", "raw-pixels")
METHOD_ORDER = ("mocov1", "mocov2", "simclr", "simsiam", "random-init", "raw-pixels",
                "supervised", "infomin")
METHOD_LABELS = {"mocov1": "MoCoV1", "mocov2": "MoCoV2", "simclr": "SimCLR",
                 "simsiam": "SimSiam", "random-init": "Random init", "raw-pixels": "Raw pixels",
                 "supervised": "Supervised", "infomin": "InfoMin"}

# Canonical dataset names; aliases let run configs and the paper meet.
DATASET_ALIASES = {"cifar-10": "cifar10", "cifar-100": "cifar100", "tinyimagenet": "tiny_imagenet",
                   "tiny-imagenet": "tiny_imagenet", "stl-10": "stl10", "in200": "imagenet200",
                   "imagenet-200": "imagenet200", "in1k": "imagenet1k", "imagenet": "imagenet1k",
                   "imagenet-1k": "imagenet1k", "fashion-mnist": "fashion_mnist",
                   "fashionmnist": "fashion_mnist"}
DATASET_LABELS = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "tiny_imagenet": "Tiny ImageNet",
                  "stl10": "STL-10", "imagenet200": "IN-200", "imagenet1k": "IN-1K",
                  "fashion_mnist": "Fashion-MNIST", "voc": "VOC", "coco": "COCO"}

# Probe -> human label; "linear_best" is derived from the linear probe's best-epoch figure.
PROBE_ORDER = ("linear", "linear_best", "fast_linear", "fast_linear_1k", "knn")
PROBE_LABELS = {"linear": "linear probe, final epoch",
                "linear_best": "linear probe, BEST epoch (as the released code reports)",
                "fast_linear": "fast linear probe (all labels)",
                "fast_linear_1k": "fast linear probe (1000 labels)",
                "knn": "kNN probe"}


@dataclass(frozen=True)
class Suite:
    """One benchmark suite.

    Attributes:
        name: suite id as written in run configs (``config["suite"]``).
        shape: ``"gain"``, ``"ablation"``, ``"transfer"`` or ``"figure"``.
        paper_table: the paper table its numbers are compared with (or ``None``).
        key: the varying config key of an ablation (``"modules"`` is derived, see ``level_of``).
        title: one-line description for captions and title pages.
    """

    name: str
    shape: str
    paper_table: str | None
    key: str = ""
    title: str = ""
    second_control: str = ""   # ablation: a level also compared against (besides the baseline)


SUITES = {s.name: s for s in (
    Suite("table1", "gain", "table1", title="Linear classification, small-scale datasets"),
    Suite("table2", "gain", "table2", title="Linear classification, IN-200 and IN-1K"),
    Suite("table3", "ablation", "table3", "modules", "Ablation of the modules"),
    Suite("table4", "ablation", "table4", "crop_p", "Ablation of the center-crop ratio p"),
    Suite("table5", "ablation", "table5", "beta_range", "Ablation of the extrapolation range"),
    Suite("table6", "ablation", "table6", "hallucinator_layers",
          "Ablation of the number of Hallucinator layers n"),
    Suite("table7", "transfer", "table7", title="Detection / segmentation transfer"),
    Suite("stabilise", "ablation", None, "hallucinator_preset",
          "Stabilised Hallucinator variants vs the baseline and the paper's Hallucinator", "paper"),
    Suite("fig4", "figure", None, title="Positive-pair similarity over training (Fig. 4)"),
    Suite("fig5", "figure", None, title="Uniformity of 2-D features (Fig. 5)"),
)}


def canonical_dataset(name: str | None) -> str:
    """Lower-case ``name`` and map known aliases to the canonical dataset id."""
    if name is None:
        return ""
    low = str(name).strip().lower()
    return DATASET_ALIASES.get(low, low)


def variant_of(config: dict) -> str:
    """``"hallucinator"``, ``"symmetric extrapolation"`` or ``"baseline"`` for a run config."""
    if config.get("hallucinator"):
        return "hallucinator"
    if config.get("extrapolation") == "symmetric":
        return "symmetric extrapolation"
    return "baseline"


def _num(x: float) -> str:
    return "%g" % float(x)


# Mirror of the engine's ``hallucinator.hallucinator.HALLUCINATOR_PRESETS`` (beta range, layers n):
# a config's ``beta_range`` / ``hallucinator_layers`` of None means "the preset's value".
HALLUCINATOR_PRESETS = {"paper": ((0.0, 0.1), 3), "table5": ((0.0, 1.0), 3),
                        "non-parametric": ((0.0, 0.1), 0), "warmup": ((0.0, 0.1), 3),
                        "residual": ((0.0, 0.1), 3), "normalized": ((0.0, 0.1), 3)}


def hallucinator_settings(config: dict) -> tuple[tuple[float, float] | None, int | None]:
    """(beta_range, layers) of a config: explicit keys, else its ``hallucinator_preset``."""
    beta, layers = HALLUCINATOR_PRESETS.get(config.get("hallucinator_preset", "paper"), (None, None))
    if config.get("beta_range") is not None:
        beta = tuple(float(b) for b in config["beta_range"])
    if config.get("hallucinator_layers") is not None:
        layers = int(config["hallucinator_layers"])
    return beta, layers


def modules_of(config: dict) -> str:
    """Table 3 label: enabled modules among cc (center crop), ae (asymm. extrapolation), h.

    Explicit boolean keys ``center_crop`` / ``asymmetric_extrapolation`` / ``hallucination`` win.
    Otherwise cc = ``crop_p`` set in (0, 1); ae = the Hallucinator is on (its Eq. 3 is the
    asymmetric extrapolation) or ``extrapolation == "asymmetric"``; h = the Hallucinator is on
    with n > 0 layers (n = 0, the non-parametric preset, is extrapolation only).
    """
    crop_p = config.get("crop_p")
    on = bool(config.get("hallucinator"))
    cc = config.get("center_crop",
                    crop_p is not None and not _isnan(crop_p) and 0 < float(crop_p) < 1)
    beta, layers = hallucinator_settings(config)
    # beta_range (0, 0) makes lambda = 0, so q' = q: the Hallucinator without extrapolation.
    extrapolates = beta is None or any(float(b) != 0.0 for b in beta)
    ae = config.get("asymmetric_extrapolation",
                    (on and extrapolates) or config.get("extrapolation") == "asymmetric")
    h = config.get("hallucination", on and (layers or 0) > 0)
    parts = [n for n, on in (("cc", cc), ("ae", ae), ("h", h)) if on]
    return "+".join(parts) if parts else "none"


def _isnan(x) -> bool:
    try:
        return math.isnan(float(x))
    except (TypeError, ValueError):
        return False


def level_of(suite: str, config: dict) -> str:
    """The row label of ``config`` in ``suite``'s ablation table ('' for non-ablation suites).

    Runs without the Hallucinator in Tables 4-6 are the baseline row (``"baseline"``); a
    Hallucinator run with ``crop_p`` None (no center crop) is ``"none"`` in Table 4.
    """
    spec = SUITES.get(suite)
    if spec is None or spec.shape != "ablation":
        return ""
    if spec.key == "modules":
        return modules_of(config)
    if not config.get("hallucinator"):
        return "baseline"
    beta, layers = hallucinator_settings(config)
    value = {"beta_range": beta, "hallucinator_layers": layers}.get(spec.key, config.get(spec.key))
    if value is None:
        return "none"
    if isinstance(value, str):      # a named choice (stabilise: the Hallucinator preset)
        return value
    if spec.key == "beta_range":
        lo, hi = value
        return "(%s, %s)" % (_num(lo), _num(hi))
    return _num(value)


def level_sort_key(suite: str, level: str):
    """Sort ablation levels: baseline/none first, then numerically where possible."""
    if level in ("baseline", "none"):
        return (0, 0.0, level)
    if SUITES.get(suite) and SUITES[suite].key == "modules":
        order = ["cc", "ae", "h", "ae+h", "cc+ae", "cc+h", "cc+ae+h"]
        return (1, float(order.index(level)) if level in order else 99.0, level)
    try:
        return (1, float(level.strip("()").split(",")[0]), level)
    except ValueError:
        return (2, 0.0, level)
