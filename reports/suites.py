"""Suite registry: what each benchmark suite varies and how a run config maps to a table row.

Every suite is described by data (``SUITES``) so that one table builder per *shape* serves
all of them: Tables 1-2 are "gain" tables (methods x datasets x {w/o, w/}); Tables 3-6 are
"ablation" tables pivoted by the suite's varying key; Table 7 is the transfer table.
"""
from __future__ import annotations

from dataclasses import dataclass

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
        shape: ``"gain"``, ``"ablation"``, ``"transfer"``, ``"figure"`` or ``"schedule"``.
        paper_table: the paper table its numbers are compared with (or ``None``).
        key: the column heading of an ablation's levels (the runs record their level as ``row``).
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
    Suite("schedule", "schedule", None, "steps",
          "Gain against training length: MoCoV2 with and without the Hallucinator, seed-paired"),
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


def level_of(suite: str, row: str) -> str:
    """The level a cell is split by: the recorded row label in Tables 3-6 and in the schedule
    suite (its arm: the paper's Hallucinator and the warm-up variant are different cells), ''
    for other suites."""
    spec = SUITES.get(suite)
    return row if spec is not None and spec.shape in ("ablation", "schedule") else ""


def level_sort_key(suite: str, level: str):
    """Sort ablation levels: baseline first, then numerically where possible."""
    if level == "baseline":
        return (0, 0.0, level)
    if SUITES.get(suite) and SUITES[suite].key == "modules":
        order = ["cc", "ae", "h", "ae+h", "cc+ae", "cc+h", "cc+ae+h"]
        return (1, float(order.index(level)) if level in order else 99.0, level)
    try:
        return (1, float(level.strip("()").split(",")[0]), level)
    except ValueError:
        return (2, 0.0, level)
