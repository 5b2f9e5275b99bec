"""SOSD-Net and its baselines (§3.2): backbone, ASPP, decoder, semantic-to-depth, depth-to-semantic."""
from sosd.models.sosd_net import DEPTH_SIDE, SEMANTIC_SIDE, SHARED, SOSDNet, build_model

__all__ = ["SOSDNet", "build_model", "DEPTH_SIDE", "SEMANTIC_SIDE", "SHARED"]
