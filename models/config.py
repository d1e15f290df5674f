"""The dataclasses a codec preset is made of, validated once at load time.

Presets are YAML data (``configs/*.yaml``); ``load_codec_config`` merges ``extends:`` chains,
applies ``key=value`` overrides and builds a ``CodecConfig``. Everything that shapes a model
is here, including the numbers the original AcademiCodec code hard-codes (HiFi-Codec's
encoder width 32, GroupNorm 16 channels a group, latent 512), so smaller models build the
same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from academicodec.config import apply_overrides, from_dict, load_preset_data, resolve_preset_path
from academicodec.errors import UserError
from academicodec.models.families import NETWORKS
from academicodec.models.families.dac.arch import DacArch
from academicodec.models.families.mimi.arch import MimiArch
from academicodec.models.families.snac.arch import SnacArch
from academicodec.models.families.xcodec2.arch import Xcodec2Arch

# Ours (trained here), then the released families that only import weights (building and
# inference, no training recipe: models/families/).
TRAINED_FAMILIES = ("encodec", "soundstream", "hificodec")
IMPORT_ONLY_FAMILIES = NETWORKS
FAMILIES = TRAINED_FAMILIES + IMPORT_ONLY_FAMILIES
DISCRIMINATORS = ("mpd", "msd", "msstft")


@dataclass(frozen=True)
class HiFiCodecArch:
    """HiFi-GAN V1 style encoder/decoder and the group-residual quantizer (GRVQ)."""

    encoder_base_channels: int = 32
    groupnorm_channels_per_group: int = 16
    encoder_resblock_kernel_sizes: tuple[int, ...] = (11, 7, 3)
    upsample_initial_channel: int = 512
    upsample_kernel_sizes: tuple[int, ...] = (16, 11, 8, 4)
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    n_code_groups: int = 2
    residual_layers: int = 2
    codebook_loss_weight: float = 1.0
    commitment_loss_weight: float = 0.25
    # 0: codes live in each group's latent space, matched by L2 distance (the original);
    # N > 0: DAC's factorised codes, an N-dim projection matched by cosine similarity.
    code_dim: int = 0


@dataclass(frozen=True)
class EncodecArch:
    """SEANet encoder/decoder with a 2-layer LSTM and an EMA residual VQ."""

    n_filters: int = 32
    n_residual_layers: int = 1
    kernel_size: int = 7
    last_kernel_size: int = 7
    residual_kernel_size: int = 3
    dilation_base: int = 2
    compress: int = 2
    lstm_layers: int = 2
    # "zeros" (ours) or "reflect" (encodec's; applied per item at its own end when batched)
    pad_mode: str = "zeros"
    # Meta's EnCodec 24 kHz: every conv pads on the left only (no look-ahead).
    causal: bool = False
    bandwidths: tuple[float, ...] = (1.5, 3.0, 6.0, 12.0)
    ema_decay: float = 0.99
    commitment_weight: float = 1.0
    # "none" (encodec's 24 kHz encoder: weight norm only), "time_group_norm" (a length-aware
    # GroupNorm of one group after every encoder block) or "instance_norm" (the same with a
    # group per channel: level-invariant, models/seanet.py).
    encoder_norm: str = "none"


@dataclass(frozen=True)
class CodebookConfig:
    """How training keeps every codebook in use (``training/upkeep.py``), for both quantizer
    kinds. Inference never reads these: released checkpoints import unchanged."""

    # "kmeans": fit each codebook to the first batch's latents (stage by stage);
    # "none": keep the constructor's start (the original GRVQ's uniform +-1/size).
    init: str = "kmeans"
    kmeans_iters: int = 10
    # A code whose usage (an EMA of assignment counts) falls below this fraction of its
    # codebook's mean usage is moved onto a recent latent; 0 turns restarts off. Relative,
    # so it means the same at 200 frames a step (CPU) as at 20,000 (a GPU node).
    dead_code_ratio: float = 0.2
    usage_decay: float = 0.9
    # Move the codebooks with the latent after every generator update (CodebookUpkeep.follow:
    # the per-dimension affine map one item's latent went through): early in training one
    # update moves the encoder's whole output by more than the distance between neighbouring
    # codewords.
    follow_encoder: bool = True

    def __post_init__(self) -> None:
        _one_of("codebooks.init", self.init, ("kmeans", "none"))
        if self.kmeans_iters < 1:
            raise ValueError(f"codebooks.kmeans_iters must be >= 1, not {self.kmeans_iters}")
        if not 0.0 <= self.dead_code_ratio < 1.0:
            raise ValueError(
                f"codebooks.dead_code_ratio must be in [0, 1), not {self.dead_code_ratio}"
            )
        if not 0.0 < self.usage_decay < 1.0:
            raise ValueError(f"codebooks.usage_decay must be in (0, 1), not {self.usage_decay}")


@dataclass(frozen=True)
class DiscriminatorConfig:
    kinds: tuple[str, ...] = ("msstft",)
    periods: tuple[int, ...] = (2, 3, 5, 7, 11)
    msd_scales: int = 3
    stft_n_ffts: tuple[int, ...] = (1024, 2048, 512, 256, 128)
    stft_filters: int = 32
    # Channel scale of the MPD/MSD stacks (1.0 = HiFi-GAN's 32..1024); tiny presets shrink it.
    width: float = 1.0


@dataclass(frozen=True)
class MelLossConfig:
    """Multi-resolution log-mel L1: one entry per (n_fft, hop) pair."""

    n_ffts: tuple[int, ...] = (1024,)
    hops: tuple[int, ...] = (256,)
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float | None = None


@dataclass(frozen=True)
class LossWeights:
    adversarial: float = 1.0
    feature_matching: float = 2.0
    mel: float = 45.0
    quantizer: float = 10.0


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of the GAN loop, as AcademiCodec used them for the family."""

    optimizer: str = "adamw"
    lr: float = 2e-4
    betas: tuple[float, float] = (0.8, 0.99)
    weight_decay: float = 0.0
    scheduler: str = "exponential"
    lr_decay: float = 0.999
    batch_size: int = 16
    segment_length: int = 16000
    disc_start_step: int = 0
    # Clip each optimizer's gradient norm to this (None: no clipping).
    grad_clip: float | None = None
    # Linear learning-rate warm-up over the first N steps (0: none), both optimizers.
    warmup_steps: int = 0
    # Steps in a row whose loss or gradients are not finite before training stops (each such
    # step is skipped: weights, optimizer state and codebooks stay as they were).
    max_bad_steps: int = 20
    adversarial_loss: str = "lsgan"
    use_balancer: bool = False
    loss_weights: LossWeights = field(default_factory=LossWeights)
    mel_loss: MelLossConfig = field(default_factory=MelLossConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)

    def __post_init__(self) -> None:
        _one_of("train.optimizer", self.optimizer, ("adam", "adamw"))
        _one_of("train.scheduler", self.scheduler, ("exponential", "none"))
        _one_of("train.adversarial_loss", self.adversarial_loss, ("lsgan", "hinge"))
        for kind in self.discriminator.kinds:
            _one_of("train.discriminator.kinds", kind, DISCRIMINATORS)
        if len(self.mel_loss.n_ffts) != len(self.mel_loss.hops):
            raise ValueError("train.mel_loss: n_ffts and hops must have the same length")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"train.grad_clip must be > 0 (or null: none), not {self.grad_clip}")
        if self.warmup_steps < 0:
            raise ValueError(f"train.warmup_steps must be >= 0, not {self.warmup_steps}")
        if self.max_bad_steps < 1:
            raise ValueError(f"train.max_bad_steps must be >= 1, not {self.max_bad_steps}")


@dataclass(frozen=True)
class CodecConfig:
    """One codec preset: what to build and how it trains."""

    name: str
    family: str
    sample_rate: int
    ratios: tuple[int, ...]
    latent_dim: int
    codebook_size: int = 1024
    description: str = ""
    hificodec: HiFiCodecArch | None = None
    encodec: EncodecArch | None = None
    dac: DacArch | None = None
    mimi: MimiArch | None = None
    snac: SnacArch | None = None
    xcodec2: Xcodec2Arch | None = None
    codebooks: CodebookConfig = field(default_factory=CodebookConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    # The original AcademiCodec framing, for reproducing its numbers (docs/models.md):
    # HiFi-Codec floor(T / hop) frames and GroupNorm over the whole input; Encodec's
    # per-conv padding of a ragged end. Items are then encoded one at a time.
    compat: bool = False
    # What the weights were imported from ("meta-encodec encodec_24khz-d7cc33bc.th"); empty
    # for models trained here.
    source: str = ""

    def __post_init__(self) -> None:
        _one_of("family", self.family, FAMILIES)
        if self.codebook_size < 2:
            raise ValueError(f"codebook_size must be at least 2, not {self.codebook_size}")
        if self.encodec is not None:
            _one_of("encodec.pad_mode", self.encodec.pad_mode, ("zeros", "reflect"))
            _one_of(
                "encodec.encoder_norm",
                self.encodec.encoder_norm,
                ("none", "time_group_norm", "instance_norm"),
            )
            if not 0.0 < self.encodec.ema_decay < 1.0:
                raise ValueError(
                    f"encodec.ema_decay must be in (0, 1), not {self.encodec.ema_decay}"
                )
        if not self.ratios or any(r < 1 for r in self.ratios):
            raise ValueError(f"ratios must be positive integers, got {self.ratios}")
        if self.family == "hificodec":
            arch = self.hificodec
            if arch is None:
                raise ValueError("family hificodec needs a 'hificodec:' section")
            if len(arch.upsample_kernel_sizes) != len(self.ratios):
                raise ValueError("hificodec.upsample_kernel_sizes needs one kernel per ratio")
            if arch.n_code_groups < 1 or arch.residual_layers < 1:
                raise ValueError("hificodec.n_code_groups and residual_layers must be >= 1")
            if arch.code_dim < 0:
                raise ValueError(f"hificodec.code_dim must be >= 0, not {arch.code_dim}")
            if self.latent_dim % arch.n_code_groups:
                raise ValueError(
                    f"hificodec.n_code_groups ({arch.n_code_groups}) must divide latent_dim "
                    f"({self.latent_dim})"
                )
        elif self.family in IMPORT_ONLY_FAMILIES:
            section = getattr(self, self.family)
            if section is None:
                raise ValueError(f"family {self.family} needs a '{self.family}:' section")
            section.check(self)
        elif self.encodec is None:
            raise ValueError(f"family {self.family} needs an 'encodec:' section")

    @property
    def hop_length(self) -> int:
        """Samples per code frame: the product of the ratios, or what a released family's
        section says (Mimi resamples after its encoder; a SNAC frame spans several encoder
        frames)."""
        section = getattr(self, self.family, None)
        if self.family in IMPORT_ONLY_FAMILIES and section is not None:
            return section.hop_length(self)
        return math.prod(self.ratios)

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    @property
    def bits_per_code(self) -> float:
        return math.log2(self.codebook_size)

    @property
    def num_codebooks(self) -> int:
        if self.hificodec is not None and self.family == "hificodec":
            return self.hificodec.n_code_groups * self.hificodec.residual_layers
        if self.family in IMPORT_ONLY_FAMILIES:
            return getattr(self, self.family).num_codebooks
        assert self.encodec is not None
        return self.codebooks_for_bandwidth(max(self.encodec.bandwidths))

    def codebooks_for_bandwidth(self, kbps: float) -> int:
        """RVQ stages that fit in ``kbps`` (as Encodec counts: frame rate x log2(bins))."""
        return max(1, int(kbps * 1000 // (self.frame_rate * self.bits_per_code)))


def _one_of(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{key} must be one of {list(allowed)}, not {value!r}")


def load_codec_config(
    name_or_path: str | Path,
    overrides: dict[str, Any] | None = None,
    overrides_source: str = "--set",
) -> CodecConfig:
    """Load a preset by name (``configs/NAME.yaml``) or path, with dotted-key overrides
    (errors they cause are attributed to ``overrides_source``, not to the file)."""
    source = str(resolve_preset_path(name_or_path))
    data = load_preset_data(name_or_path)
    data.setdefault("name", Path(source).stem)
    if overrides:
        # The preset alone first, so an error after the overrides is theirs to name.
        codec_config_from_dict(data, source)
        data = apply_overrides(data, overrides)
        source = f"{overrides_source} {', '.join(overrides)}"
    return codec_config_from_dict(data, source)


def codec_config_from_dict(data: dict[str, Any], source: str) -> CodecConfig:
    try:
        config = from_dict(CodecConfig, data, source)
        check_ranges(config)
        return config
    except ValueError as exc:  # raised by __post_init__ checks
        raise UserError(f"{source}: {exc}") from exc


# Real-valued settings and their ranges (low, high, whether each end is allowed). Integer
# settings need no entry: sizes, counts, kernels and strides are >= 1, and those whose
# default is 0 (an "off": code_dim, warmup_steps, disc_start_step, ...) are >= 0.
REAL_RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "train.lr": (0.0, math.inf, False, False),
    "train.betas": (0.0, 1.0, True, False),
    "train.weight_decay": (0.0, math.inf, True, False),
    "train.lr_decay": (0.0, 1.0, False, True),
    "train.loss_weights": (0.0, math.inf, True, False),
    "train.mel_loss.fmin": (0.0, math.inf, True, False),
    "train.mel_loss.fmax": (0.0, math.inf, False, False),
    "train.discriminator.width": (0.0, math.inf, False, False),
    "hificodec.codebook_loss_weight": (0.0, math.inf, True, False),
    "hificodec.commitment_loss_weight": (0.0, math.inf, True, False),
    "encodec.commitment_weight": (0.0, math.inf, True, False),
}  # a released family's section adds its own (``real_ranges`` of its arch.py)


def check_ranges(config: CodecConfig) -> None:
    """Every number of a preset in its range, named by its dotted key: a value torch would
    only reject deep inside a run (``train.batch_size: 0``, ``train.lr: -1``) is refused at
    load, before a run writes anything."""
    _check_numbers(config, "")
    segment, hop = config.train.segment_length, config.hop_length
    if segment < hop:
        raise ValueError(
            f"train.segment_length must be >= the hop ({hop} samples: one code frame), "
            f"not {segment}"
        )
    mel = config.train.mel_loss
    if mel.fmax is not None and mel.fmax <= mel.fmin:
        raise ValueError(f"train.mel_loss.fmax ({mel.fmax}) must be above fmin ({mel.fmin})")


def _check_numbers(
    section: Any, prefix: str, ranges: dict[str, tuple[float, float, bool, bool]] = REAL_RANGES
) -> None:
    for spec in fields(section):
        key, value = f"{prefix}{spec.name}", getattr(section, spec.name)
        if is_dataclass(value):
            own = getattr(value, "real_ranges", {})
            _check_numbers(value, f"{key}.", ranges | {f"{key}.{k}": r for k, r in own.items()})
            continue
        numbers = list(_flatten_numbers(value))
        if not numbers:
            continue
        real = next(
            (r for name, r in ranges.items() if key == name or key.startswith(f"{name}.")),
            None,
        )  # a section's name covers its keys (train.loss_weights.mel), not a longer name
        if real is not None:
            low, high, low_ok, high_ok = real
            for number in numbers:
                above = number >= low if low_ok else number > low
                below = number <= high if high_ok else number < high
                if not (above and below and math.isfinite(number)):
                    raise ValueError(f"{key} must be in {_interval(real)}, not {value}")
        elif all(isinstance(n, int) for n in numbers):
            least = 0 if spec.default == 0 else 1
            if min(numbers) < least:
                raise ValueError(f"{key} must be >= {least}, not {value}")


def _flatten_numbers(value: Any) -> list[Any]:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return []
    if isinstance(value, int | float):
        return [value]
    if isinstance(value, tuple | list):
        return [n for item in value for n in _flatten_numbers(item)]
    return []


def _interval(spec: tuple[float, float, bool, bool]) -> str:
    low, high, low_ok, high_ok = spec
    return f"{'[' if low_ok else '('}{low:g}, {high:g}{']' if high_ok else ')'}"
