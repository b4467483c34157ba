"""One loss per module: MoCo's InfoNCE with a queue, SimCLR's NT-Xent, SimSiam's negative cosine."""
from .info_nce import info_nce
from .negative_cosine import negative_cosine
from .nt_xent import nt_xent

__all__ = ["info_nce", "nt_xent", "negative_cosine"]
