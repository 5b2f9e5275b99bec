"""sosd: SOSD-Net, joint semantic segmentation and depth estimation from one RGB image (He et al.)."""
__version__ = "0.1.0"
