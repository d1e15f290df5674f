"""The ``CodecModel`` interface every stage uses, our trained families, and ``build_codec``
(a released family's model is its folder's ``CODEC``, ``models/families/``).

Framing (DESIGN §4): ``encode`` pads the waveform with zeros to ``F * hop`` samples,
``F = ceil(T / hop)``, and returns ``F`` frames; ``decode`` returns ``F * hop`` samples. With
``lengths`` (valid samples per item), every layer masks past each item's ``ceil(len / hop)``
frames, so a clip's codes do not depend on what it was batched with.
"""

from __future__ import annotations

import contextlib
import math
import random
from abc import ABC
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from academicodec.config import dotted_keys
from academicodec.errors import UserError
from academicodec.models.config import CodecConfig, load_codec_config
from academicodec.models.families import codec_class
from academicodec.models.hifigan import HiFiEncoder, HiFiGenerator
from academicodec.models.layers import inference_parameter_count, length_mask
from academicodec.models.precision import exact_float32
from academicodec.models.quantizers import GroupResidualVQ, ResidualVQ
from academicodec.models.scheduling import GroupRunner, assemble, micro_batches, run_groups
from academicodec.models.seanet import SEANetDecoder, SEANetEncoder


@dataclass
class CodecOutput:
    """What a training forward returns."""

    audio: Tensor  # [B, 1, F * hop] reconstruction
    codes: Tensor  # [B, K, F]
    quantizer_loss: Tensor  # scalar
    perplexity: Tensor  # [K] per-codebook perplexity over valid frames
    usage: Tensor  # [K] fraction of each codebook used in the batch
    frames: Tensor | None  # [B] valid frames per item (None: all)
    n_q: int  # codebooks used in this forward (quantizer dropout)
    # Training mode: per codebook, valid input rows and their codes (for codebook upkeep).
    codebook_inputs: list[Tensor] = field(default_factory=list)
    codebook_assignments: list[Tensor] = field(default_factory=list)


class CodecModel(nn.Module, ABC):
    """Encoder -> quantizer -> decoder, with the framing and masking every family shares."""

    encoder: nn.Module
    quantizer: nn.Module  # GroupResidualVQ, ResidualVQ or a released family's quantizer
    decoder: nn.Module

    def __init__(self, config: CodecConfig) -> None:
        super().__init__()
        self.config = config

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def hop_length(self) -> int:
        return self.config.hop_length

    @property
    def frame_rate(self) -> float:
        return self.config.frame_rate

    @property
    def num_codebooks(self) -> int:
        return self.config.num_codebooks

    @property
    def codebook_size(self) -> int:
        return self.config.codebook_size

    def bitrate_kbps(self, n_q: int | None = None) -> float:
        codebooks = self.num_codebooks if n_q is None else n_q
        return codebooks * self.frame_rate * self.config.bits_per_code / 1000

    def supported_n_q(self) -> list[int]:
        """Codebook counts ``encode(n_q=...)`` accepts: any prefix of a residual stack; for
        GRVQ whole stages (a multiple of the groups)."""
        step = self.config.hificodec.n_code_groups if self.config.family == "hificodec" else 1  # type: ignore[union-attr]
        return list(range(step, self.num_codebooks + 1, step))

    def resolve_n_q(self, n_q: int | None = None, kbps: float | None = None) -> int | None:
        """The codebooks to use from ``--n-q`` or ``--bandwidth`` (kbps); ``None`` = all.
        One-line errors list what this model accepts."""
        allowed = self.supported_n_q()
        if n_q is not None and kbps is not None:
            raise UserError("give --n-q or --bandwidth, not both")
        if kbps is not None:
            per_codebook = self.bitrate_kbps(1)
            n_q = round(kbps / per_codebook)
            if n_q not in allowed or abs(n_q * per_codebook - kbps) > 0.01 * kbps:
                rates = ", ".join(f"{self.bitrate_kbps(n):g}" for n in allowed)
                raise UserError(f"--bandwidth {kbps:g}: not a bitrate of this model ({rates} kbps)")
        if n_q is not None and n_q not in allowed:
            listed = (
                f"{allowed[0]}..{allowed[-1]}"
                if allowed == list(range(1, allowed[-1] + 1))
                else str(allowed)
            )
            raise UserError(f"--n-q {n_q}: this model takes {listed} codebooks")
        return n_q

    @property
    def latent_steps(self) -> int:
        """Encoder latent steps in one code frame: 1, but for SNAC, whose frame spans
        several encoder frames (the mask of ``latent`` and ``decode`` count frames)."""
        return 1

    # What ``compat`` changes, as ``framing`` says it (per family; None: it only runs items
    # one at a time, the codes being the reference's by default).
    compat_framing: str | None = None
    default_framing = "zeros to a whole hop, ceil(T / hop) frames"

    def framing(self) -> str:
        """Which framing ``encode`` uses and what ``compat`` changes, in one sentence
        (``info`` and ``import`` print it: an LM trained on a reference's codes needs to
        know whether ours are the same for every length)."""
        if self.config.compat:
            return (
                f"compat: {self.compat_framing or self.default_framing}, each item encoded "
                "alone (--set compat=false: batched framing)"
            )
        change = (
            f"--set compat=true gives {self.compat_framing} (items then encode one at a time)"
            if self.compat_framing
            else "--set compat=true only encodes items one at a time (the same codes)"
        )
        return f"{self.default_framing}, batched = one at a time; {change}"

    def code_layout(self) -> dict[str, Any] | None:
        """How a frame's code rows split into codebooks of other rates; None when every
        row is one codebook at ``frame_rate`` (all families but SNAC)."""
        return None

    # Whether the encoder's ``streaming()`` carries its state from one chunk to the next.
    streams = False

    @property
    def stream_min_samples(self) -> int:
        """The shortest chunk ``streaming`` gives the whole item's codes with."""
        return self.hop_length

    def streaming(self) -> contextlib.AbstractContextManager[None]:
        """A context for encoding one long item in consecutive hop-aligned chunks, one
        ``encode`` call each. Where ``streams`` (Mimi, Meta's causal EnCodec), each call
        continues the previous one and the codes are the whole item's; elsewhere chunks are
        independent, so frames near a boundary see only their own chunk."""
        return self.encoder.streaming() if self.streams else contextlib.nullcontext()

    def num_frames(self, samples: int) -> int:
        return math.ceil(samples / self.hop_length)

    def generator_parameters(self) -> int:
        """Encoder + quantizer + decoder parameters, weight norm folded (as the originals
        are counted); EMA codebooks are buffers and not included."""
        return inference_parameter_count(self)

    def _frame(self, wav: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """[B, 1, T] zero-padded to F * hop (and zeroed past each length), valid frames."""
        if wav.dim() == 2:
            wav = wav[:, None]
        if wav.dim() != 3 or wav.shape[1] != 1:
            raise ValueError(f"expected a waveform [B, 1, T] or [B, T], got {tuple(wav.shape)}")
        if self.config.compat:  # the original's framing: the input as it is, no masks
            return wav, None
        frames = self.num_frames(wav.shape[-1])
        padded = torch.nn.functional.pad(wav, (0, frames * self.hop_length - wav.shape[-1]))
        if lengths is None:
            return padded, None
        lengths = lengths.to(wav.device)
        padded = padded * length_mask(lengths, padded.shape[-1])
        return padded, (lengths + self.hop_length - 1) // self.hop_length

    def encode(
        self,
        wav: Tensor,
        lengths: Tensor | None = None,
        n_q: int | None = None,
        runner: GroupRunner | None = None,
        one_call: bool | None = None,
    ) -> Tensor:
        """Codes [B, K, ceil(T / hop)] (int64); ``n_q`` keeps the first codebooks.

        With ``lengths``, frames past each item's ``ceil(length / hop)`` hold code 0. On CPU
        the batch runs in groups (``scheduling``), concurrently on the caller's ``runner``;
        ``one_call`` (the default on accelerators) runs it as one call at its padded length.
        Every grouping and padding gives the same codes.
        """
        if wav.dim() == 2:
            wav = wav[:, None]
        full = torch.full((wav.shape[0],), wav.shape[-1], device=wav.device)
        valid = full if lengths is None else lengths.to(wav.device)
        # In compat mode each item runs alone at its own length, as the original does.
        single = self.config.compat and lengths is not None
        if (wav.device.type != "cpu" if one_call is None else one_call) and not single:
            return self._encode_batch(wav, None if lengths is None else valid, n_q)
        groups = micro_batches(valid, wav.device, single)

        def work(rows: Tensor) -> Tensor:
            part = wav[rows, :, : int(valid[rows].max())]
            # One row, cut to its own length, is an item alone: no masks needed (they
            # would only cost copies - twice the memory on a long chunk).
            alone = single or len(rows) == 1
            return self._encode_batch(part, None if lengths is None or alone else valid[rows], n_q)

        parts = run_groups(groups, work, runner)
        if len(groups) == 1 and lengths is None:
            return parts[0]
        return assemble(groups, parts, wav.shape[0], self.num_frames(wav.shape[-1]))

    def _encode_batch(self, wav: Tensor, lengths: Tensor | None, n_q: int | None) -> Tensor:
        latent, mask, _ = self.latent(wav, lengths)
        with exact_float32(latent.device.type):  # bf16 distances would flip near-ties
            codes = self.quantizer.encode(latent.float(), mask, n_q)
        return codes if mask is None else codes * mask.long()

    def compile_encoder(self, backend: str = "inductor") -> None:
        """``torch.compile`` the per-call encoder (latent and codes); grouping stays eager."""
        self._encode_batch = torch.compile(self._encode_batch, backend=backend)  # type: ignore[method-assign]

    def decode(
        self, codes: Tensor, lengths: Tensor | None = None, runner: GroupRunner | None = None
    ) -> Tensor:
        """Waveform [B, 1, F * hop]; ``lengths`` are valid frames per item (zeros after).

        Runs in the same groups as ``encode``."""
        frames = codes.shape[-1]
        full = torch.full((codes.shape[0],), frames, device=codes.device)
        valid = full if lengths is None else lengths.to(codes.device)
        single = self.config.compat and lengths is not None
        groups = micro_batches(valid * self.hop_length, codes.device, single)

        def work(rows: Tensor) -> Tensor:
            part = codes[rows, :, : int(valid[rows].max())]
            latent = self.quantizer.decode(part)
            if lengths is None:
                return self.decoder(latent, None)
            # Zero the latent past each item's frames (the codewords of its padding codes),
            # which a non-causal decoder's first convolution would otherwise read.
            steps = valid[rows] * self.latent_steps
            latent = latent * length_mask(steps, latent.shape[-1])
            return self.decoder(latent, valid[rows])

        parts = run_groups(groups, work, runner)
        if len(groups) == 1 and lengths is None:
            return parts[0]
        return assemble(groups, parts, codes.shape[0], frames * self.hop_length)

    def forward(
        self, wav: Tensor, lengths: Tensor | None = None, n_q: int | None = None
    ) -> CodecOutput:
        """A training forward on ``n_q`` codebooks (all by default; the trainer passes
        ``training_n_q``). Runs no collective and changes no codebook."""
        latent, mask, frames = self.latent(wav, lengths)
        with exact_float32(latent.device.type):  # codebook distances: an fp32 island
            result = self.quantizer(latent.float(), mask, n_q)
        audio = self.decoder(result.quantized, frames)
        return CodecOutput(
            audio=audio,
            codes=result.codes,
            quantizer_loss=result.loss,
            perplexity=result.perplexity,
            usage=result.usage,
            frames=frames,
            n_q=result.codes.shape[1],
            codebook_inputs=result.inputs,
            codebook_assignments=result.assignments,
        )

    def latent(
        self, wav: Tensor, lengths: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """Encoder output [B, D, F], its frame mask and valid frames per item."""
        padded, frames = self._frame(wav, lengths)
        latent = self.encoder(padded, frames)
        steps = latent.shape[-1] // self.latent_steps
        mask = None if frames is None else length_mask(frames, steps)
        return latent, mask, frames

    def training_n_q(self, seed: int, step: int) -> int:
        """Quantizer dropout: the codebooks a training step uses, drawn from (seed, step)
        so every rank draws the same without a collective. All of them by default."""
        return self.num_codebooks


class HiFiCodec(CodecModel):
    """HiFi-Codec (Yang et al., 2023): HiFi-GAN encoder/decoder with GRVQ."""

    compat_framing = (
        "AcademiCodec's framing: floor(T / hop) frames, GroupNorm over the whole input "
        "(a ragged clip loses its tail)"
    )

    def __init__(self, config: CodecConfig) -> None:
        super().__init__(config)
        arch = config.hificodec
        assert arch is not None
        self.encoder = HiFiEncoder(config)
        self.quantizer = GroupResidualVQ(
            config.latent_dim,
            config.codebook_size,
            arch.n_code_groups,
            arch.residual_layers,
            arch.codebook_loss_weight,
            arch.commitment_loss_weight,
            arch.code_dim,
        )
        self.decoder = HiFiGenerator(config)


class EncodecCodec(CodecModel):
    """Encodec / SoundStream generator: SEANet + LSTM with an EMA residual VQ."""

    compat_framing = (
        "the encodec package's and transformers' framing: each convolution pads its own "
        "ragged end (only a ragged clip's last frame can differ)"
    )

    def __init__(self, config: CodecConfig) -> None:
        super().__init__(config)
        arch = config.encodec
        assert arch is not None
        self.encoder = SEANetEncoder(config)
        self.quantizer = ResidualVQ(
            config.latent_dim,
            config.codebook_size,
            config.num_codebooks,
            arch.ema_decay,
            arch.commitment_weight,
        )
        self.decoder = SEANetDecoder(config)

    @property
    def streams(self) -> bool:  # type: ignore[override]
        """Causal and without time-group norms (Meta's EnCodec 24 kHz): every output
        depends only on the past, through conv tails and the LSTM's state."""
        arch = self.config.encodec
        assert arch is not None
        return arch.causal and arch.encoder_norm == "none"

    @property
    def stream_min_samples(self) -> int:
        return self.encoder.stream_min_samples

    def training_n_q(self, seed: int, step: int) -> int:
        """A random bandwidth per step (Encodec's quantizer dropout). Every rank must use
        the same count (the codebook upkeep all-reduces per codebook), hence a draw from
        (seed, step) rather than from a rank's own RNG."""
        arch = self.config.encodec
        assert arch is not None
        draw = random.Random(seed * 1_000_003 + step).choice(arch.bandwidths)
        return self.config.codebooks_for_bandwidth(draw)


# Our trained families; a released family's class is its folder's CODEC (models/families/).
TRAINED_CLASSES: dict[str, type[CodecModel]] = {
    "hificodec": HiFiCodec,
    "encodec": EncodecCodec,
    "soundstream": EncodecCodec,
}


def build_codec(preset: str | Path | CodecConfig, **overrides: Any) -> CodecModel:
    """The only constructor the rest of the code calls.

    ``preset`` is a shipped preset name, a YAML path or a ``CodecConfig``. ``overrides`` set
    preset keys; nested keys use ``__`` (``train__lr=1e-4``) or a dotted string key.
    """
    if isinstance(preset, CodecConfig):
        if overrides:
            raise ValueError("overrides apply to preset names and paths, not a CodecConfig")
        config = preset
    else:
        config = load_codec_config(preset, dotted_keys(overrides))
    if config.family in TRAINED_CLASSES:
        return TRAINED_CLASSES[config.family](config)
    return codec_class(config.family)(config)
