#!/usr/bin/env python
"""Convert a ResNet-50 pretraining checkpoint into detectron2's weight format.

Usage:
    python transfer/convert.py CHECKPOINT OUT.pkl [--verbose] [--method NAME]
        [--hallucinator | --no-hallucinator]
    python transfer/convert.py CHECKPOINT OUT.pth --to torchvision   # ResNet-50 or ResNet-18

Accepted inputs (all loaded with ``torch.load(..., weights_only=True)``):
  * this project's checkpoints (``{"format": "hallucinator-checkpoint/1", "config": ...,
    "model": ...}``): the online backbone under ``encoder.backbone.`` is kept; projector,
    momentum encoder, predictor, Hallucinator and queue are dropped and listed;
  * a plain torchvision ResNet-50 state dict (``fc.*`` dropped);
  * MoCo's own format ``{"state_dict": {"module.encoder_q.*": ...}}``.

The backbone must be exactly torchvision's ResNet-50 key set with ResNet-50 shapes (checked
against a freshly built ``torchvision.models.resnet50``), otherwise the file is refused.
Keys are renamed to detectron2's ResNet names (stem.conv1, res2..res5, convK.norm, shortcut)
and saved as ``{"model": numpy arrays, "__author__", "matching_heuristics": True,
"__source__": provenance}``; with the heuristics, detectron2 finds res5 under ``roi_heads.res5``
in the C4 model, and it ignores the extra ``__source__`` key.

Also refused: non-finite weights (a diverged model), an output path equal to the input or
that is a directory, and pickles of anything but tensors and plain containers ("refused for
safety"); a failed write (a full disk) is one ``error:`` line with exit code 1. A first conv
trained on grey images (one input channel, e.g. the smoke profile on Fashion-MNIST) is made RGB by
replicating its kernel over the three channels divided by 3 (``grey_to_rgb``), recorded as
``__source__["grey_conv1"]``. ``--to torchvision`` writes the same backbone as a plain
``torchvision.models.resnet50`` (or ``resnet18``) state dict with a zero ``fc``, which
``load_state_dict`` takes with no missing or unexpected keys.

``__source__`` says what the weights are, for ``train_net.py``'s ``results.json`` and the reports'
Table 7: ``{"method", "hallucinator", "pretrain_run", "checkpoint", "input", "pretrain"}``. A
project checkpoint gives its config's method and Hallucinator flag and its directory as
``pretrain_run`` (the run whose linear probe the reports show as IN-1k top-1). A torchvision or
MoCo file has no such record: method ``unknown``, no Hallucinator, no ``pretrain_run``, unless
``--method`` / ``--hallucinator`` say otherwise (they also override a project checkpoint's).
"""
from __future__ import annotations

import argparse
import pickle
import re
import sys
from collections import Counter, OrderedDict
from functools import lru_cache
from pathlib import Path

import torch
import torchvision

from hallucinator import rundir

CHECKPOINT_FORMAT = "hallucinator-checkpoint/1"
BACKBONE_PREFIX = "encoder.backbone."
GREY_NOTE = "; grey conv1 replicated over RGB / 3"
TARGETS = ("detectron2", "torchvision")
MOCO_PREFIX = "module.encoder_q."


class ConversionError(Exception):
    """The input cannot be converted; the message says why."""


ARCHS = ("resnet50", "resnet18")  # torchvision ImageNet-stem ResNets; detectron2 takes resnet50


@lru_cache(maxsize=2)
def reference_state(arch: str = "resnet50") -> dict[str, torch.Tensor]:
    """A freshly built torchvision ``arch`` (``resnet50`` / ``resnet18``), fc included."""
    return getattr(torchvision.models, arch)(weights=None).state_dict()


def reference_resnet50_shapes(arch: str = "resnet50") -> dict[str, torch.Size]:
    """Key -> shape of torchvision's ``arch`` backbone (no fc); ResNet-50 by default."""
    return {k: v.shape for k, v in reference_state(arch).items() if not k.startswith("fc.")}


def load_checkpoint(path: str | Path) -> object:
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"{path}: no such file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        msg = str(err)
        found = re.search(r"GLOBAL (\S+?)[:,\s]", msg + " ")
        if found:
            raise ConversionError(
                f"{path}: refused for safety: it pickles the Python object {found.group(1)}, and "
                "only tensors and plain containers are unpickled here (torch.load with "
                "weights_only=True); save a plain dict of tensors instead") from None
        detail = re.search(r"WeightsUnpickler error:\s*(.+)", msg)
        raise ConversionError(f"{path}: corrupt or not a torch checkpoint (unpickling failed: "
                              f"{detail.group(1).strip() if detail else msg[:200]})") from None
    except Exception as err:  # zip/EOF/magic-number errors of a truncated or foreign file
        raise ConversionError(
            f"{path}: corrupt or not a torch checkpoint ({type(err).__name__}: {err})") from None


def _split(state: dict, prefix: str) -> tuple[dict, list[str]]:
    kept = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    return kept, [k for k in state if not k.startswith(prefix)]


def extract_backbone(obj: object, archs: tuple[str, ...] = ("resnet50",)
                     ) -> tuple[OrderedDict, list[str], str]:
    """Returns (torchvision-named backbone state, dropped keys, description of the input).

    ``archs``: the torchvision ResNets accepted (detectron2's R50-C4 takes only ``resnet50``).
    A one-channel (grey) first conv becomes RGB (:func:`grey_to_rgb`); every tensor must be
    finite."""
    if not isinstance(obj, dict):
        raise ConversionError(f"expected a dict checkpoint, got {type(obj).__name__}")
    if obj.get("format") == CHECKPOINT_FORMAT:
        config = obj.get("config") or {}
        backbone = config.get("backbone")
        if backbone not in archs:
            raise ConversionError(f"checkpoint backbone is {backbone!r}; this output needs "
                                  f"{' or '.join(repr(a) for a in archs)} (the detection "
                                  "protocol, R50-C4, needs 'resnet50')")
        if config.get("width", 64) != 64:
            raise ConversionError(f"checkpoint backbone has width {config['width']}; torchvision's "
                                  "and detectron2's ResNets have width 64")
        if not isinstance(obj.get("model"), dict):
            raise ConversionError("hallucinator checkpoint has no 'model' state dict")
        state, dropped = _split(obj["model"], BACKBONE_PREFIX)
        kind = f"hallucinator checkpoint (method {config.get('method', '?')}, backbone {backbone})"
    elif isinstance(obj.get("state_dict"), dict):
        state, dropped = _split(obj["state_dict"], MOCO_PREFIX)
        kind = "MoCo checkpoint (module.encoder_q.)"
    elif "format" in obj:
        raise ConversionError(f"unknown checkpoint format {obj['format']!r}")
    else:
        state, dropped = dict(obj), []
        if state and all(k.startswith("module.") for k in state):
            state = {k[len("module."):]: v for k, v in state.items()}
        kind = "plain torchvision state dict"
    dropped += [k for k in state if k.startswith("fc.")]
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    if not state:
        raise ConversionError(f"{kind}: no backbone tensors found")
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConversionError(f"{kind}: backbone entries must all be tensors")
    bad = sorted(k for k, v in state.items() if v.is_floating_point() and not v.isfinite().all())
    if bad:
        raise ConversionError(f"{kind}: non-finite weights (NaN/inf) in {len(bad)} tensors "
                              f"{bad[:5]}; refusing to convert a diverged model")
    if state.get("conv1.weight") is not None and state["conv1.weight"].dim() == 4 \
            and state["conv1.weight"].shape[1] == 1:
        state, kind = grey_to_rgb(state), kind + GREY_NOTE
    arch = archs[0] if len(archs) == 1 else ("resnet50" if any(".conv3." in k for k in state)
                                             else "resnet18")
    check_resnet50(state, arch)
    return OrderedDict(sorted(state.items())), dropped, kind


def grey_to_rgb(state: dict) -> dict:
    """A first conv trained on one-channel (grey) images, made to take RGB input.

    Its kernel is replicated over the three channels and divided by 3, so the converted network
    responds to an RGB image exactly as the grey network did to that image's channel mean
    (R+G+B)/3. (detectron2 then normalises with its own per-channel PIXEL_MEAN/STD, not the
    grey dataset's statistics.)"""
    w = state["conv1.weight"]
    return dict(state, **{"conv1.weight": w.repeat(1, 3, 1, 1) / 3})


def check_resnet50(state: dict, arch: str = "resnet50") -> None:
    """Refuses anything that is not exactly a torchvision ``arch`` backbone (ResNet-50)."""
    ref = reference_resnet50_shapes(arch)
    missing = sorted(set(ref) - set(state))
    extra = sorted(set(state) - set(ref))
    blocks = {int(m.group(1)) for k in state if (m := re.match(r"layer3\.(\d+)\.", k))}
    hint = (f"layer3 has {len(blocks)} blocks, bottleneck conv3 "
            f"{'present' if any('.conv3.' in k for k in state) else 'absent'}")
    if arch == "resnet18" and (missing or extra):
        raise ConversionError(f"not a ResNet-18 or ResNet-50 backbone: {len(missing)} missing "
                              f"keys {missing[:5]}, {len(extra)} unexpected {extra[:5]}")
    if missing or extra:
        raise ConversionError(
            f"not a ResNet-50 backbone ({hint}; ResNet-50 has 6 and conv3): "
            f"{len(missing)} missing keys {missing[:5]}, {len(extra)} unexpected {extra[:5]}")
    wrong = [f"{k}: {tuple(state[k].shape)} != {tuple(s)}" for k, s in ref.items()
             if state[k].shape != s]
    if wrong:
        raise ConversionError(f"not a {arch} backbone, wrong shapes: {wrong[:5]}")


def rename(key: str) -> str:
    """torchvision ResNet name -> detectron2 ResNet name."""
    m = re.fullmatch(r"(conv1|bn1)\.(\w+)", key)
    if m:
        return f"stem.conv1.{'norm.' if m.group(1) == 'bn1' else ''}{m.group(2)}"
    m = re.fullmatch(r"layer(\d)\.(\d+)\.(.+)", key)
    if not m:
        raise ConversionError(f"unmapped backbone key {key}")
    stage, block, rest = f"res{int(m.group(1)) + 1}", m.group(2), m.group(3)
    for pattern, repl in [(r"conv(\d)\.(\w+)", r"conv\1.\2"), (r"bn(\d)\.(\w+)", r"conv\1.norm.\2"),
                          (r"downsample\.0\.(\w+)", r"shortcut.\1"),
                          (r"downsample\.1\.(\w+)", r"shortcut.norm.\1")]:
        if re.fullmatch(pattern, rest):
            return f"{stage}.{block}.{re.sub(pattern, repl, rest)}"
    raise ConversionError(f"unmapped backbone key {key}")


def to_detectron2(state: dict) -> OrderedDict:
    out = OrderedDict((rename(k), v.detach().cpu().numpy()) for k, v in state.items())
    if len(out) != len(state):
        raise ConversionError("two backbone keys mapped to the same detectron2 name")
    return out


def source_of(obj: dict, src: str | Path, method: str | None = None,
              hallucinator: bool | None = None) -> dict:
    """Provenance stored as ``__source__`` in the .pkl (see the module docstring)."""
    src = Path(src).resolve()
    source = {"method": "unknown", "hallucinator": False, "pretrain_run": None,
              "checkpoint": str(src), "input": "torchvision", "pretrain": None}
    if obj.get("format") == CHECKPOINT_FORMAT:
        config = obj.get("config") or {}
        source.update(method=str(config.get("method") or "unknown"),
                      hallucinator=bool(config.get("hallucinator", False)),
                      pretrain_run=str(src.parent), input="hallucinator-checkpoint",
                      pretrain={k: config.get(k) for k in ("dataset", "epochs", "seed",
                                                           "suite", "profile", "run_name")})
    elif isinstance(obj.get("state_dict"), dict):
        source["input"] = "moco"
    if method is not None:
        source["method"] = method
    if hallucinator is not None:
        source["hallucinator"] = bool(hallucinator)
    return source


def summarize_dropped(dropped: list[str]) -> dict[str, int]:
    groups = Counter()
    for k in dropped:
        parts = k.split(".")
        groups[".".join(parts[:2]) if parts[0] in ("encoder", "module") else parts[0]] += 1
    return dict(sorted(groups.items()))


def to_torchvision(state: dict, arch: str) -> OrderedDict:
    """A plain torchvision ``arch`` state dict (``load_state_dict`` strict): the backbone plus a
    zero ``fc`` (no classifier was pre-trained; replace or train it)."""
    ref = reference_state(arch)
    out = OrderedDict((k, state[k].detach().cpu().clone() if k in state else torch.zeros_like(v))
                      for k, v in ref.items())
    return out


def convert(src: str | Path, dst: str | Path, verbose: bool = False, method: str | None = None,
            hallucinator: bool | None = None, to: str = "detectron2") -> dict:
    """Converts ``src`` and writes ``dst`` (atomically, never over ``src``).

    ``to="detectron2"``: the ``.pkl`` described above (ResNet-50 only). ``to="torchvision"``: a
    plain ``torchvision.models.resnet50`` / ``resnet18`` state dict saved with ``torch.save``
    (:func:`to_torchvision`). Returns {"mapped": {old: new}, "dropped": [...], "source": the
    provenance}; ``method`` / ``hallucinator`` (not None) override the provenance found in ``src``.
    """
    if to not in TARGETS:
        raise ConversionError(f"unknown output format {to!r}; choose from {TARGETS}")
    if Path(dst).resolve() == Path(src).resolve():
        raise ConversionError(f"output {dst} is the input checkpoint; choose another path")
    if Path(dst).is_dir():
        raise ConversionError(f"output {dst} is a directory; give a file path, e.g. {Path(dst) / 'r50.pkl'}")
    obj = load_checkpoint(src)
    state, dropped, kind = extract_backbone(obj, ("resnet50",) if to == "detectron2" else ARCHS)
    source = source_of(obj, src, method, hallucinator)
    source["grey_conv1"] = kind.endswith(GREY_NOTE)
    if to == "detectron2":
        model = to_detectron2(state)
        mapping = {old: new for old, new in zip(state, model)}
        payload = {"model": model, "__author__": "hallucinator transfer/convert.py",
                   "matching_heuristics": True, "__source__": source}
    else:
        arch = "resnet50" if any(".conv3." in k for k in state) else "resnet18"
        payload = to_torchvision(state, arch)
        mapping = {k: k for k in state}
    print(f"{src}: {kind}")
    for old, new in mapping.items() if verbose else []:
        print(f"  {old} -> {new} {tuple(state[old].shape)}")
    print(f"mapped {len(mapping)}/{len(state)} backbone tensors (all of "
          f"{'ResNet-50' if len(state) == 318 else 'ResNet-18'})")
    for group, n in summarize_dropped(dropped).items():
        print(f"dropped {group}* ({n} entries)")
    write = (lambda f: pickle.dump(payload, f)) if to == "detectron2" else (lambda f: torch.save(payload, f))
    rundir.write_atomic(dst, write, binary=True)
    print(f"source: method {source['method']}, hallucinator {source['hallucinator']}, "
          f"pretrain_run {source['pretrain_run']}")
    print(f"wrote {dst}" + (" (torchvision state dict, fc zero)" if to == "torchvision" else ""))
    return {"mapped": mapping, "dropped": dropped, "source": source}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("output", help="detectron2 weights, e.g. r50.pkl (or a .pth with --to "
                                       "torchvision)")
    parser.add_argument("--to", choices=TARGETS, default="detectron2",
                        help="output format: detectron2 .pkl (default) or a plain torchvision "
                             "ResNet-50/18 state dict")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every old -> new")
    parser.add_argument("--method", default=None,
                        help="pre-training method recorded in the .pkl (default: the project "
                             "checkpoint's config, 'unknown' for torchvision/MoCo files)")
    parser.add_argument("--hallucinator", action=argparse.BooleanOptionalAction, default=None,
                        help="record whether the weights were pre-trained with the Hallucinator "
                             "(default: the project checkpoint's config, else no)")
    args = parser.parse_args(argv)
    try:
        convert(args.checkpoint, args.output, args.verbose, args.method, args.hallucinator,
                args.to)
    except ConversionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # e.g. a full disk or a read-only output folder while writing
        print(f"error: cannot write {args.output}: {err.strerror or err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
