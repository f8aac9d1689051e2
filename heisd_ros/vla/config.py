"""Configuration of the bundled small VLA and of its drafter (one dataclass for both sizes).

Why one typed record: the same architecture is built at two sizes (the VLA and the
much smaller drafter), saved as ``config.json`` beside the weights, and validated
when constructed, so a bundle with a nonsensical config fails at load with a message
instead of deep inside torch.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from heisd_ros.core.errors import InvalidInputError



@dataclass
class VLAConfig:
    """Architecture of a small OpenVLA-style policy.

    cameras / image_size: camera views (in prefix order) and the square side they are
    resized to. conv_channels: the CNN's channels, one stride-2 conv each (the last
    feature map has side image_size / 2**len(conv_channels)). grid: side of the
    average-pooled grid whose cells become visual tokens (grid**2 per camera), plus
    one keypoint token per camera (spatial softmax over ``keypoints`` channels).
    proprio_dim: length of the (normalised) proprio vector, one prefix embedding.
    words: the instruction vocabulary (built from the demonstrations' instructions).
    hidden/layers/heads/intermediate: the Llama decoder. action_dim (D), horizon (H),
    n_bins: the action tokens, the last n_bins ids of the vocabulary.
    """

    cameras: list[str] = field(default_factory=lambda: ["agentview", "robot0_eye_in_hand"])
    image_size: int = 64
    conv_channels: list[int] = field(default_factory=lambda: [16, 32, 32])
    grid: int = 2
    keypoints: int = 16
    proprio_dim: int = 10
    hidden: int = 128
    layers: int = 4
    heads: int = 4
    intermediate: int = 344
    action_dim: int = 7
    horizon: int = 1
    n_bins: int = 256
    words: list[str] = field(default_factory=list)
    max_positions: int = 128
    coord_channels: bool = False  # CoordConv: x/y ramps as extra input channels (where things are, not only what)

    def __post_init__(self) -> None:
        if not self.cameras or len(set(self.cameras)) != len(self.cameras) or not all(isinstance(c, str) and c for c in self.cameras):
            raise InvalidInputError(f"cameras must be distinct non-empty names, got {self.cameras!r}")
        for name in ("image_size", "grid", "keypoints", "proprio_dim", "hidden", "layers", "heads",
                     "intermediate", "action_dim", "horizon", "n_bins", "max_positions"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InvalidInputError(f"{name} must be an integer >= 1, got {value!r}")
        if not isinstance(self.coord_channels, bool):
            raise InvalidInputError(f"coord_channels must be true or false, got {self.coord_channels!r}")
        if not self.conv_channels or not all(isinstance(c, int) and c > 0 for c in self.conv_channels):
            raise InvalidInputError(f"conv_channels must be positive integers, got {self.conv_channels!r}")
        side = self.feature_side
        if side * 2 ** len(self.conv_channels) != self.image_size:
            raise InvalidInputError(
                f"image_size {self.image_size} must be divisible by 2**{len(self.conv_channels)} (one stride-2 conv per channel entry)"
            )
        if side % self.grid:
            raise InvalidInputError(f"the {side}x{side} feature map cannot be pooled to a {self.grid}x{self.grid} grid")
        if self.hidden % self.heads:
            raise InvalidInputError(f"hidden {self.hidden} must be divisible by heads {self.heads}")
        if len(set(self.words)) != len(self.words) or not all(isinstance(w, str) and w and w == w.lower() and " " not in w for w in self.words):
            raise InvalidInputError(f"words must be distinct lower-case words without spaces, got {self.words!r}")
        if self.n_bins < 3:
            raise InvalidInputError(f"n_bins must be >= 3, got {self.n_bins}")

    @property
    def feature_side(self) -> int:
        """Side of the CNN's last feature map."""
        return self.image_size // 2 ** len(self.conv_channels)

    @property
    def visual_tokens(self) -> int:
        """Visual prefix length: grid cells plus one keypoint token, per camera."""
        return len(self.cameras) * (self.grid**2 + 1)

    @property
    def text_vocab(self) -> int:
        """Ids of the word vocabulary (id 0 = a word not seen in training)."""
        return len(self.words) + 1

    @property
    def vocab_size(self) -> int:
        """Text ids followed by the n_bins action tokens."""
        return self.text_vocab + self.n_bins

    @property
    def tokens_per_step(self) -> int:
        return self.horizon * self.action_dim

    @property
    def embed_dim(self) -> int:
        """Length of the retrieval key: 2 coordinates per keypoint per camera, plus the proprio vector."""
        return 2 * self.keypoints * len(self.cameras) + self.proprio_dim

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "VLAConfig":
        """Inverse of ``to_dict``; unknown keys raise InvalidInputError (a config from another version)."""
        if not isinstance(d, dict):
            raise InvalidInputError(f"a VLA config must be a JSON object, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise InvalidInputError(f"VLA config has unknown keys {sorted(unknown)}")
        return cls(**d)
