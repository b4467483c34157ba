#!/usr/bin/env python
"""Convert a ResNet-50 pretraining checkpoint into detectron2's weight format.

Usage:
    python transfer/convert.py CHECKPOINT OUT.pkl [--verbose] [--method NAME]
        [--hallucinator | --no-hallucinator]

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
from pathlib import Path

import torch
import torchvision

CHECKPOINT_FORMAT = "hallucinator-checkpoint/1"
BACKBONE_PREFIX = "encoder.backbone."
MOCO_PREFIX = "module.encoder_q."


class ConversionError(Exception):
    """The input cannot be converted; the message says why."""


def reference_resnet50_shapes() -> dict[str, torch.Size]:
    """Key -> shape of torchvision's ResNet-50 backbone (no fc)."""
    state = torchvision.models.resnet50(weights=None).state_dict()
    return {k: v.shape for k, v in state.items() if not k.startswith("fc.")}


def load_checkpoint(path: str | Path) -> object:
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"{path}: no such file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        msg = str(err)
        found = re.search(r"Unsupported global: GLOBAL (\S+)", msg)
        if found:
            raise ConversionError(
                f"{path}: refused, not loadable with torch.load(weights_only=True): it pickles "
                f"the Python object {found.group(1)}, which is never unpickled here; save a "
                "plain dict of tensors instead") from None
        detail = re.search(r"WeightsUnpickler error:\s*(.+)", msg)
        raise ConversionError(f"{path}: corrupt or not a torch checkpoint (unpickling failed: "
                              f"{detail.group(1).strip() if detail else msg[:200]})") from None
    except Exception as err:  # zip/EOF/magic-number errors of a truncated or foreign file
        raise ConversionError(
            f"{path}: corrupt or not a torch checkpoint ({type(err).__name__}: {err})") from None


def _split(state: dict, prefix: str) -> tuple[dict, list[str]]:
    kept = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    return kept, [k for k in state if not k.startswith(prefix)]


def extract_backbone(obj: object) -> tuple[OrderedDict, list[str], str]:
    """Returns (torchvision-named backbone state, dropped keys, description of the input)."""
    if not isinstance(obj, dict):
        raise ConversionError(f"expected a dict checkpoint, got {type(obj).__name__}")
    if obj.get("format") == CHECKPOINT_FORMAT:
        config = obj.get("config") or {}
        backbone = config.get("backbone")
        if backbone != "resnet50":
            raise ConversionError(f"checkpoint backbone is {backbone!r}; the detection protocol "
                                  "(R50-C4) needs a 'resnet50' backbone")
        if not isinstance(obj.get("model"), dict):
            raise ConversionError("hallucinator checkpoint has no 'model' state dict")
        state, dropped = _split(obj["model"], BACKBONE_PREFIX)
        kind = f"hallucinator checkpoint (method {config.get('method', '?')}, backbone resnet50)"
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
    check_resnet50(state)
    return OrderedDict(sorted(state.items())), dropped, kind


def check_resnet50(state: dict) -> None:
    """Refuses anything that is not exactly a torchvision ResNet-50 backbone."""
    ref = reference_resnet50_shapes()
    missing = sorted(set(ref) - set(state))
    extra = sorted(set(state) - set(ref))
    blocks = {int(m.group(1)) for k in state if (m := re.match(r"layer3\.(\d+)\.", k))}
    hint = (f"layer3 has {len(blocks)} blocks, bottleneck conv3 "
            f"{'present' if any('.conv3.' in k for k in state) else 'absent'}")
    if missing or extra:
        raise ConversionError(
            f"not a ResNet-50 backbone ({hint}; ResNet-50 has 6 and conv3): "
            f"{len(missing)} missing keys {missing[:5]}, {len(extra)} unexpected {extra[:5]}")
    wrong = [f"{k}: {tuple(state[k].shape)} != {tuple(s)}" for k, s in ref.items()
             if state[k].shape != s]
    if wrong:
        raise ConversionError(f"not a ResNet-50 backbone, wrong shapes: {wrong[:5]}")


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


def convert(src: str | Path, dst: str | Path, verbose: bool = False, method: str | None = None,
            hallucinator: bool | None = None) -> dict:
    """Converts ``src`` and writes ``dst``.

    Returns {"mapped": {old: new}, "dropped": [...], "source": the stored ``__source__``};
    ``method`` / ``hallucinator`` (not None) override the provenance found in ``src``.
    """
    obj = load_checkpoint(src)
    state, dropped, kind = extract_backbone(obj)
    source = source_of(obj, src, method, hallucinator)
    model = to_detectron2(state)
    mapping = {old: new for old, new in zip(state, model)}
    print(f"{src}: {kind}")
    for old, new in mapping.items() if verbose else []:
        print(f"  {old} -> {new} {tuple(state[old].shape)}")
    print(f"mapped {len(mapping)}/{len(reference_resnet50_shapes())} backbone tensors "
          "(all of ResNet-50)")
    for group, n in summarize_dropped(dropped).items():
        print(f"dropped {group}* ({n} entries)")
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(dst, "wb") as f:
        pickle.dump({"model": model, "__author__": "hallucinator transfer/convert.py",
                     "matching_heuristics": True, "__source__": source}, f)
    print(f"source: method {source['method']}, hallucinator {source['hallucinator']}, "
          f"pretrain_run {source['pretrain_run']}")
    print(f"wrote {dst}")
    return {"mapped": mapping, "dropped": dropped, "source": source}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("output", help="detectron2 weights, e.g. r50.pkl")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every old -> new")
    parser.add_argument("--method", default=None,
                        help="pre-training method recorded in the .pkl (default: the project "
                             "checkpoint's config, 'unknown' for torchvision/MoCo files)")
    parser.add_argument("--hallucinator", action=argparse.BooleanOptionalAction, default=None,
                        help="record whether the weights were pre-trained with the Hallucinator "
                             "(default: the project checkpoint's config, else no)")
    args = parser.parse_args(argv)
    try:
        convert(args.checkpoint, args.output, args.verbose, args.method, args.hallucinator)
    except ConversionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
