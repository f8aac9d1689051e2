"""The bundled small VLA and its drafter: one architecture (policy.py) at two sizes (config.py)."""
from heisd_ros.vla.config import VLAConfig
from heisd_ros.vla.inputs import PROPRIO_FEATURES, InputSpec, raw_proprio, resize_images
from heisd_ros.vla.policy import SmallVLA, normalize_instruction

__all__ = ["VLAConfig", "InputSpec", "PROPRIO_FEATURES", "raw_proprio", "resize_images", "SmallVLA", "normalize_instruction"]
