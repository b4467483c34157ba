"""The R50-C4 ROI head of MoCo's detection protocol: detectron2's Res5ROIHeads plus one extra
normalization layer after res5 (the backbone's last stage lives in the ROI head in C4 models,
and with BN fine-tuning the protocol normalizes its output once more)."""
from detectron2.layers import get_norm
from detectron2.modeling.roi_heads import ROI_HEADS_REGISTRY, Res5ROIHeads


class Res5ROIHeadsExtraNorm(Res5ROIHeads):
    """Res5ROIHeads whose res5 block ends with ``get_norm(MODEL.RESNETS.NORM, 2048)``."""

    @classmethod
    def _build_res5_block(cls, cfg):
        seq, out_channels = super()._build_res5_block(cfg)
        norm = get_norm(cfg.MODEL.RESNETS.NORM, out_channels)
        if norm is not None:
            seq.add_module("norm", norm)
        return seq, out_channels


if "Res5ROIHeadsExtraNorm" not in ROI_HEADS_REGISTRY:
    ROI_HEADS_REGISTRY.register(Res5ROIHeadsExtraNorm)
