"""The Hallucinator library: four Siamese SSL methods, the Hallucinator (ICCV 2023), crops, metrics.

    from hallucinator import Hallucinator, ModelConfig, build_method
    model = build_method(ModelConfig(method="mocov2", hallucinator=True))
    out = model(x1, x2); out.loss.backward()
"""
from .augmentations import AugmentConfig, TwoViews, recipe
from .backbones import build_backbone
from .crops import CenterSuppressedResizedCrop, sample_crop_boxes
from .hallucinator import HALLUCINATOR_PRESETS, Hallucinator, SymmetricExtrapolation
from .methods import METHODS, ModelConfig, SiameseMethod, StepOutput, build_method
from .metrics import positive_similarity, uniformity

__version__ = "0.1.0"

__all__ = [
    "Hallucinator", "SymmetricExtrapolation", "HALLUCINATOR_PRESETS", "SiameseMethod", "StepOutput",
    "ModelConfig", "build_method", "METHODS", "build_backbone", "CenterSuppressedResizedCrop",
    "sample_crop_boxes", "AugmentConfig", "TwoViews", "recipe", "positive_similarity", "uniformity",
]
