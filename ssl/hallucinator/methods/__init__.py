"""MoCoV1, MoCoV2, SimCLR and SimSiam behind one contract: ``forward(x1, x2) -> StepOutput``."""
from .base import SiameseMethod, StepOutput
from .factory import METHODS, ModelConfig, build_method, model_config_from
from .moco import MoCo
from .simclr import SimCLR
from .simsiam import SimSiam

__all__ = ["SiameseMethod", "StepOutput", "MoCo", "SimCLR", "SimSiam", "METHODS", "ModelConfig",
           "build_method", "model_config_from"]
