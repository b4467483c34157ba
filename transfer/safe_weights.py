"""Reading detection weights without trusting them (no detectron2 import).

detectron2 reads a ``.pkl`` with plain ``pickle.load``, which runs whatever code the file names.
Here a ``.pkl`` is read with a restricted unpickler that admits only numpy arrays and plain
containers (dict, list, tuple, str, numbers, ``OrderedDict``); any other global (for example
``posix.system``) is refused with :class:`UnsafeWeightsError` before it is called. A ``.pth``
(a detectron2 fine-tuning checkpoint) is read with ``torch.load(weights_only=True)``.

:func:`check_weights` then checks that the file holds the whole ResNet-50 backbone of the R50-C4
model (stem, res2-res4 and the ROI head's res5) with the right shapes, so a wrong file can never
turn into a silently random-initialised backbone. ``train_net.py`` runs it before any dataset is
read and hands detectron2 the state dict read here (``SafeCheckpointer`` in ``train_net.py``).
"""
from __future__ import annotations

import pickle
from collections import OrderedDict
from pathlib import Path

import numpy as np

from hallucinator import safe_pickle


class WeightsError(Exception):
    """The weights file cannot be used; the message says why."""


class UnsafeWeightsError(WeightsError):
    """The file pickles an object beyond numpy arrays and plain containers."""


# converted weights: numpy arrays in (ordered) dicts, nothing else
WEIGHT_GLOBALS = safe_pickle.NUMPY_ARRAYS | {("collections", "OrderedDict")}


def read_pkl(path: str | Path) -> dict:
    """The content of a ``.pkl`` weights file, unpickling nothing beyond ``WEIGHT_GLOBALS``.

    Raises:
        UnsafeWeightsError: the pickle references any other global (nothing of it is run).
        WeightsError: missing, truncated or not a pickled dict.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = safe_pickle.load(f, WEIGHT_GLOBALS)  # safe: numpy arrays and plain containers only
    except FileNotFoundError:
        raise WeightsError(f"{path}: no such file") from None
    except safe_pickle.RefusedGlobal as err:
        raise UnsafeWeightsError(
            f"{path}: refused for safety: the pickle references {err.qualname}, and only "
            "numpy arrays and plain containers are unpickled here (convert the checkpoint "
            "with transfer/convert.py)") from None
    except pickle.UnpicklingError as err:
        raise WeightsError(f"{path}: corrupt pickle ({err})") from None
    except Exception as err:  # EOF, bad opcode, ... of a truncated or foreign file
        raise WeightsError(f"{path}: corrupt pickle ({type(err).__name__}: {err})") from None
    if not isinstance(data, dict):
        raise WeightsError(f"{path}: expected a dict, got {type(data).__name__}")
    return data


def backbone_shapes() -> OrderedDict:
    """detectron2 name (as written by convert.py) -> shape, for all 318 ResNet-50 tensors."""
    import convert  # torchvision's ResNet-50 is the reference

    return OrderedDict((convert.rename(k), tuple(s))
                       for k, s in convert.reference_resnet50_shapes().items())


def model_name(name: str) -> str:
    """Where a converted backbone tensor lives in the R50-C4 model (res5 is in the ROI head)."""
    return ("roi_heads." if name.startswith("res5.") else "backbone.") + name


def _shape(value) -> tuple:
    return tuple(getattr(value, "shape", np.shape(value)))


def backbone_problems(model: dict, exact: bool) -> list[str]:
    """Missing, wrong-shaped and (``exact``) unexpected backbone keys of ``model``."""
    ref = backbone_shapes()
    if not exact:  # a detectron2 checkpoint of the whole detector: model names, heads allowed
        ref = OrderedDict((model_name(k), s) for k, s in ref.items())
    problems = [f"missing {k}" for k in ref if k not in model]
    problems += [f"wrong shape {k}: {_shape(model[k])} != {s}" for k, s in ref.items()
                 if k in model and _shape(model[k]) != s]
    if exact:
        problems += [f"unexpected {k}" for k in model if k not in ref]
    return problems


def load_weights(path: str | Path) -> dict:
    """The checked content of a weights file: ``{"model": {...}, ...}``.

    ``.pkl``: a converted file (convert.py): exactly the 318 backbone tensors, restricted
    unpickling. ``.pth``: a detectron2 checkpoint holding the backbone under its model names.

    Raises:
        UnsafeWeightsError / WeightsError: see :func:`read_pkl`; any backbone key missing,
            unexpected or of the wrong shape (all are listed); any other file type.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such file")
    if path.suffix == ".pkl":
        data, exact = read_pkl(path), True
    elif path.suffix == ".pth":
        import torch

        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:
            raise UnsafeWeightsError(f"{path}: refused for safety: not loadable with "
                                     f"torch.load(weights_only=True) ({str(err)[:200]})") from None
        except Exception as err:
            raise WeightsError(f"{path}: corrupt or not a torch file ({err})") from None
        exact = False
    else:
        raise WeightsError(f"{path}: expected converted weights (.pkl, transfer/convert.py) or a "
                           "detectron2 checkpoint (.pth)")
    if not isinstance(data.get("model") if isinstance(data, dict) else None, dict):
        raise WeightsError(f"{path}: no 'model' state dict; a torchvision or pretraining "
                           "checkpoint must first be converted with transfer/convert.py")
    problems = backbone_problems(data["model"], exact)
    if problems:
        raise WeightsError(f"{path}: not a converted ResNet-50 backbone, {len(problems)} "
                           "problem(s) (nothing is randomly initialised in its place):\n  "
                           + "\n  ".join(problems))
    return data
