"""The bundled small OpenVLA-style policy: CNN visual prefix + proprio + instruction + Llama decoder.

Why this shape: on this CPU the decoder's forward pass must dominate AR decoding, as
it does for a GPU-served 7B VLA, so the prefix is short (per camera a small grid of
visual tokens plus one spatial-softmax keypoint token, one proprio embedding, the
instruction as characters) and the decoder is a real ``LlamaForCausalLM`` whose
vocabulary ends with the action tokens. The engine's ``HFCausalVLA`` adapter runs it
(``as_vla_model``), so tree verification and KV-cache handling are the engine's own.

The same class at a much smaller size is the drafter (see training/distill.py).
Retrieval key (``keys``): the keypoint coordinates of every camera plus the
normalised proprio vector, computed by the CNN alone (no decoder pass).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from transformers import LlamaConfig, LlamaForCausalLM

from heisd_ros.core.errors import CorruptFileError, InvalidInputError
from heisd_ros.core.hf_adapter import HFCausalVLA
from heisd_ros.core.observation import Observation
from heisd_ros.core.tokenizer import ActionTokenizer
from heisd_ros.vla.config import VLAConfig

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
PROPRIO_KEY_WEIGHT = 0.5  # proprio vs keypoints in the retrieval key (keypoints lie in [-1, 1])


def normalize_instruction(text: str) -> str:
    """Lower-case, whitespace collapsed: training and inference see the same characters."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError("instruction must be a non-empty string")
    return " ".join(text.lower().split())


class InstructionPrompt:
    """PromptBuilder for HFCausalVLA: one id per word of the instruction (0 = unknown word).

    Words, not characters: the instruction is then a handful of tokens, which keeps
    the prefix short on this CPU.
    """

    def __init__(self, words: list[str]) -> None:
        self.ids_of = {w: i + 1 for i, w in enumerate(words)}

    def ids(self, instruction: str) -> list[int]:
        """Word ids of a normalised instruction (what training uses)."""
        return [self.ids_of.get(w, 0) for w in normalize_instruction(instruction).split()]

    def __call__(self, obs: Observation) -> list[int]:
        return self.ids(obs.instruction)


class CameraEncoder(nn.Module):
    """One camera: stride-2 convs -> (grid**2 pooled tokens, 1 keypoint token) and the keypoint coordinates."""

    def __init__(self, cfg: VLAConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        self.coord = cfg.coord_channels
        prev = 5 if self.coord else 3
        ramp = torch.linspace(-1.0, 1.0, cfg.image_size)
        self.register_buffer("coord_maps", torch.stack([ramp.expand(cfg.image_size, -1), ramp[:, None].expand(-1, cfg.image_size)]),
                             persistent=False)
        for ch in cfg.conv_channels:
            layers += [nn.Conv2d(prev, ch, 3, stride=2, padding=1), nn.GroupNorm(8 if ch % 8 == 0 else 1, ch), nn.SiLU()]
            prev = ch
        layers += [nn.Conv2d(prev, prev, 3, padding=1), nn.SiLU()]
        self.convs = nn.Sequential(*layers)
        self.grid = cfg.grid
        self.to_keypoints = nn.Conv2d(prev, cfg.keypoints, 1)
        self.grid_proj = nn.Linear(prev, cfg.hidden)
        self.grid_pos = nn.Parameter(torch.randn(cfg.grid**2, cfg.hidden) * 0.02)
        self.keypoint_proj = nn.Linear(2 * cfg.keypoints, cfg.hidden)
        side = cfg.feature_side
        lin = torch.linspace(-1.0, 1.0, side)
        self.register_buffer("coord_x", lin.repeat(side), persistent=False)
        self.register_buffer("coord_y", lin.repeat_interleave(side), persistent=False)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, S, S) in [0, 1] -> tokens (B, grid**2 + 1, hidden), keypoints (B, 2 * keypoints)."""
        x = images * 2.0 - 1.0
        if self.coord:
            x = torch.cat([x, self.coord_maps.expand(x.shape[0], -1, -1, -1)], dim=1)
        feats = self.convs(x)
        pooled = F.adaptive_avg_pool2d(feats, self.grid).flatten(2).transpose(1, 2)  # (B, g*g, C)
        grid_tokens = self.grid_proj(pooled) + self.grid_pos
        attention = torch.softmax(self.to_keypoints(feats).flatten(2), dim=-1)  # (B, K, side*side)
        keypoints = torch.cat([attention @ self.coord_x, attention @ self.coord_y], dim=-1)
        return torch.cat([grid_tokens, self.keypoint_proj(keypoints)[:, None]], dim=1), keypoints


class SmallVLA(nn.Module):
    """Prefix encoder + Llama decoder; see the module docstring."""

    def __init__(self, cfg: VLAConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.cameras = nn.ModuleList([CameraEncoder(cfg) for _ in cfg.cameras])
        self.proprio = nn.Sequential(nn.Linear(cfg.proprio_dim, cfg.hidden), nn.SiLU(), nn.Linear(cfg.hidden, cfg.hidden))
        llama = LlamaConfig(
            vocab_size=cfg.vocab_size,
            hidden_size=cfg.hidden,
            intermediate_size=cfg.intermediate,
            num_hidden_layers=cfg.layers,
            num_attention_heads=cfg.heads,
            num_key_value_heads=cfg.heads,
            max_position_embeddings=cfg.max_positions,
            tie_word_embeddings=False,
            pad_token_id=0,
            bos_token_id=None,
            eos_token_id=None,
        )
        self.lm = LlamaForCausalLM(llama)
        self.prompt = InstructionPrompt(cfg.words)
        self.register_buffer(
            "action_ids", torch.arange(cfg.vocab_size - 1, cfg.vocab_size - 1 - cfg.n_bins, -1), persistent=False
        )  # column b = vocabulary id of bin b (OpenVLA: last ids, reversed)

    # ------------------------------------------------------------ tensors
    @staticmethod
    def image_tensor(images: np.ndarray) -> torch.Tensor:
        """(..., S, S, 3) uint8 -> (..., 3, S, S) float in [0, 1]."""
        t = torch.from_numpy(np.ascontiguousarray(images))
        return t.movedim(-1, -3).float() / 255.0

    def observation_tensors(self, obs: Observation) -> tuple[torch.Tensor, torch.Tensor]:
        """One observation -> images (1, cams, 3, S, S), proprio (1, P); missing/mis-sized inputs raise."""
        cfg = self.cfg
        missing = [c for c in cfg.cameras if c not in obs.images]
        if missing:
            raise InvalidInputError(f"observation lacks camera image(s) {missing}; the model needs {cfg.cameras}")
        for c in cfg.cameras:
            if obs.images[c].shape != (cfg.image_size, cfg.image_size, 3):
                raise InvalidInputError(
                    f"image {c!r} has shape {obs.images[c].shape}, the model needs ({cfg.image_size}, {cfg.image_size}, 3); "
                    "build observations with Bundle.make_observation"
                )
        if np.asarray(obs.proprio).shape != (cfg.proprio_dim,):
            raise InvalidInputError(f"observation proprio must have {cfg.proprio_dim} values, got {np.shape(obs.proprio)}")
        images = self.image_tensor(np.stack([obs.images[c] for c in cfg.cameras]))[None]
        proprio = torch.as_tensor(np.asarray(obs.proprio, np.float32))[None]
        return images, proprio

    # ------------------------------------------------------------ prefix
    def encode(self, images: torch.Tensor, proprio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """images (B, cams, 3, S, S), proprio (B, P) -> prefix embeddings (B, visual + 1, hidden), keys (B, embed_dim)."""
        tokens, keypoints = [], []
        for i, encoder in enumerate(self.cameras):
            t, k = encoder(images[:, i])
            tokens.append(t)
            keypoints.append(k)
        tokens.append(self.proprio(proprio)[:, None])
        keys = torch.cat(keypoints + [PROPRIO_KEY_WEIGHT * proprio], dim=-1)
        return torch.cat(tokens, dim=1), keys

    def sequence(self, images: torch.Tensor, proprio: torch.Tensor, text_ids: list[list[int]],
                 action_bins: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-padded input embeddings (B, T, hidden) and attention mask (B, T) of prefix + text (+ action tokens)."""
        prefix, _ = self.encode(images, proprio)
        embed = self.lm.get_input_embeddings()
        longest = max(len(t) for t in text_ids)
        rows, masks = [], []
        for b, ids in enumerate(text_ids):
            parts = [prefix[b], embed(torch.as_tensor(ids, device=prefix.device))]
            if action_bins is not None and action_bins.shape[1]:
                parts.append(embed(self.action_ids[action_bins[b]]))
            row = torch.cat(parts, dim=0)
            pad = longest - len(ids)
            rows.append(F.pad(row, (0, 0, pad, 0)))
            masks.append(torch.cat([torch.zeros(pad), torch.ones(row.shape[0])]))
        return torch.stack(rows), torch.stack(masks).to(prefix.device)

    def action_logits(self, images: torch.Tensor, proprio: torch.Tensor, text_ids: list[list[int]],
                      action_bins: torch.Tensor) -> torch.Tensor:
        """Teacher-forced (B, T, n_bins) logits: [b, j] predicts action token j given tokens < j."""
        steps = action_bins.shape[1]
        embeds, mask = self.sequence(images, proprio, text_ids, action_bins[:, :-1])
        positions = (mask.cumsum(-1) - 1).clamp(min=0).long()
        out = self.lm(inputs_embeds=embeds, attention_mask=mask.long(), position_ids=positions, use_cache=False)
        return out.logits[:, -steps:, :][..., self.action_ids]

    @torch.no_grad()
    def greedy_bins(self, images: torch.Tensor, proprio: torch.Tensor, text_ids: list[list[int]]) -> torch.Tensor:
        """Batched greedy (B, H*D) bins, recomputing the short sequence per token (for distillation and metrics)."""
        bins = torch.zeros(images.shape[0], 0, dtype=torch.long, device=images.device)
        for _ in range(self.cfg.tokens_per_step):
            embeds, mask = self.sequence(images, proprio, text_ids, bins)
            positions = (mask.cumsum(-1) - 1).clamp(min=0).long()
            logits = self.lm(inputs_embeds=embeds, attention_mask=mask.long(), position_ids=positions, use_cache=False).logits
            bins = torch.cat([bins, logits[:, -1, self.action_ids].argmax(-1, keepdim=True)], dim=1)
        return bins

    # ------------------------------------------------------------ engine
    def as_vla_model(self, tokenizer: ActionTokenizer) -> HFCausalVLA:
        """This network behind the engine's VLAModel protocol (eval mode)."""
        cfg = self.cfg
        if tokenizer.dim != cfg.action_dim or tokenizer.n_bins != cfg.n_bins:
            raise InvalidInputError(
                f"tokenizer (D={tokenizer.dim}, {tokenizer.n_bins} bins) does not match the model (D={cfg.action_dim}, {cfg.n_bins} bins)"
            )
        self.eval()
        last: list = [None, None, None]  # observation, prefix embeddings, retrieval key

        @torch.inference_mode()
        def encoded(obs: Observation) -> tuple[torch.Tensor, np.ndarray]:
            # Why a one-entry memo: the retrieval drafter embeds the observation and the
            # verification pass encodes the same one right after; the camera encoder is
            # about half of a verification's cost on a CPU. Keyed by identity: an
            # Observation is not changed in place once built.
            if last[0] is not obs:
                prefix, key = self.encode(*self.observation_tensors(obs))
                last[:] = [obs, prefix[0], key[0].numpy()]
            return last[1], last[2]

        def image_prefix(obs: Observation) -> torch.Tensor:
            return encoded(obs)[0]

        def embedder(obs: Observation) -> np.ndarray:
            return encoded(obs)[1].copy()

        return HFCausalVLA(self.lm, tokenizer, cfg.horizon, self.prompt, vocab_size=cfg.vocab_size,
                           image_prefix=image_prefix, embedder=embedder)

    # ------------------------------------------------------------ files
    def save(self, folder: str | Path, half: bool = True) -> None:
        """config.json + model.safetensors (fp16 storage by default: half the bundle size, loaded as fp32)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / CONFIG_FILE).write_text(json.dumps(self.cfg.to_dict(), indent=1))
        dtype = torch.float16 if half else torch.float32
        state = {k: v.detach().to(dtype).contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(folder / WEIGHTS_FILE), metadata={"format": "heisd-small-vla"})

    @classmethod
    def load(cls, folder: str | Path) -> "SmallVLA":
        """Inverse of ``save``; a missing, unreadable or mismatched file raises CorruptFileError naming it."""
        folder = Path(folder)
        cfg_path, weights = folder / CONFIG_FILE, folder / WEIGHTS_FILE
        for path in (cfg_path, weights):
            if not path.is_file():
                raise CorruptFileError(f"{path}: missing")
        try:
            cfg = VLAConfig.from_dict(json.loads(cfg_path.read_text()))
        except (json.JSONDecodeError, UnicodeDecodeError, InvalidInputError, TypeError) as exc:
            raise CorruptFileError(f"{cfg_path}: invalid model config ({exc})") from None
        model = cls(cfg)
        try:
            state = load_file(str(weights))
        except Exception as exc:  # safetensors raises its own error types for truncated/garbled files
            raise CorruptFileError(f"{weights}: unreadable safetensors file ({exc})") from None
        try:
            model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
        except RuntimeError as exc:
            raise CorruptFileError(f"{weights}: weights do not match {cfg_path} ({str(exc).splitlines()[0]})") from None
        return model.eval()


def instruction_words(instructions: list[str]) -> list[str]:
    """Sorted vocabulary of the normalised instructions (stored in the config)."""
    return sorted({w for text in instructions for w in normalize_instruction(text).split()})
