"""Encodec's SEANet encoder/decoder (Défossez et al., 2022), as AcademiCodec and Meta ship it.

Module indices and names follow encodec's ``SEANetEncoder``/``SEANetDecoder`` (``model.N``,
``block.1``/``block.3``, ``shortcut``, ``lstm``) so AcademiCodec and Meta checkpoints map
directly. ``encodec.causal`` gives Meta's causal variant (all padding on the left, transposed
convs trimmed on the right), in which no output depends on later input.
Differences on purpose: convolutions pad with zeros (the original reflect-pads, which makes
a clip's last frames depend on how much padding a batch gave it) and every block re-zeroes
the steps past each item's length, so batched encoding equals one-at-a-time encoding. The
LSTM is unidirectional, so right padding never reaches the valid frames.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from academicodec.models.config import CodecConfig
from academicodec.models.layers import (
    Mask,
    MaskedGroupNorm,
    apply_mask,
    length_mask,
    stream_padded,
    streaming_state,
    weight_norm,
)


class SConv1d(nn.Module):
    """Weight-normed Conv1d with encodec's non-causal "same" padding.

    ``pad_mode``: ``"zeros"`` (our default), or ``"reflect"`` as encodec. With a mask,
    reflect padding mirrors each item at its own end, so a batched item sees exactly what
    it sees alone. ``compat=True`` adds encodec's extra right padding that completes the
    last window for inputs that are not a multiple of the stride (the original's framing).
    ``causal=True`` puts all the padding on the left.
    """

    def __init__(
        self, channels_in: int, channels_out: int, kernel_size: int, stride: int = 1,
        dilation: int = 1, pad_mode: str = "zeros", compat: bool = False, causal: bool = False,
    ) -> None:  # fmt: skip
        super().__init__()
        self.conv = weight_norm(
            nn.Conv1d(channels_in, channels_out, kernel_size, stride, dilation=dilation)
        )
        self.kernel = (kernel_size - 1) * dilation + 1
        self.stride = stride
        self.padding_total = self.kernel - stride
        total = self.padding_total
        self.padding = (total, 0) if causal else (total - total // 2, total // 2)
        self.pad_mode, self.compat = pad_mode, compat
        self.state: dict[str, Tensor] | None = None  # set while streaming (causal only)

    def forward(self, x: Tensor, mask: Mask = None) -> Tensor:
        left, right = self.padding
        if self.compat:
            right += extra_padding(x.shape[-1], self.kernel, self.stride, self.padding_total)

        def pad(t: Tensor, left: int, right: int) -> Tensor:
            # (a later streamed chunk pads only on the right, and only in compat: no masks)
            if self.pad_mode == "zeros" or left == right == 0:
                return F.pad(t, (left, right))
            if mask is None:
                return _reflect_pad(t, left, right)
            valid = mask[:, 0].sum(-1).long()
            return _reflect_pad_per_item(t, valid, left, right)

        return self.conv(stream_padded(self.state, x, left, right, pad))


def extra_padding(length: int, kernel: int, stride: int, padding_total: int) -> int:
    """encodec's ``get_extra_padding_for_conv1d``: pad so the last window is complete."""
    frames = (length - kernel + padding_total) / stride + 1
    ideal = (math.ceil(frames) - 1) * stride + (kernel - padding_total)
    return ideal - length


def _reflect_pad(x: Tensor, left: int, right: int) -> Tensor:
    """encodec's ``pad1d``: reflect, zero-extending first when the input is too short."""
    length = x.shape[-1]
    extra = max(left, right) - length + 1 if length <= max(left, right) else 0
    if extra:
        x = F.pad(x, (0, extra))
    padded = F.pad(x, (left, right), mode="reflect")
    return padded[..., : padded.shape[-1] - extra]


def _reflect_pad_per_item(x: Tensor, valid: Tensor, left: int, right: int) -> Tensor:
    """``_reflect_pad`` of every item at its own valid length, as if it ran alone: an item
    shorter than the padding is first zero-extended (as ``pad1d`` does), and no position
    past an item's length is read (they count as zeros)."""
    positions = torch.arange(-left, x.shape[-1] + right, device=x.device)[None, :]
    valid = valid[:, None]
    last = valid.clamp(min=max(left, right) + 1) - 1  # the zero-extended item's last index
    index = positions.abs()
    index = torch.where(index > last, 2 * last - index, index)
    inside = (index < valid).unsqueeze(1)
    index = index.clamp(0, x.shape[-1] - 1)
    return torch.gather(x, 2, index[:, None, :].expand(-1, x.shape[1], -1)) * inside


class SConvTranspose1d(nn.Module):
    """Weight-normed ConvTranspose1d, trimmed to exactly ``stride`` x the input length
    (causal: trimmed on the right only, so no output depends on later input)."""

    def __init__(
        self, channels_in: int, channels_out: int, kernel_size: int, stride: int,
        causal: bool = False,
    ) -> None:  # fmt: skip
        super().__init__()
        self.convtr = weight_norm(
            nn.ConvTranspose1d(channels_in, channels_out, kernel_size, stride)
        )
        total = kernel_size - stride
        self.trim = (0, total) if causal else (total - total // 2, total // 2)

    def forward(self, x: Tensor) -> Tensor:
        y = self.convtr(x)
        return y[..., self.trim[0] : y.shape[-1] - self.trim[1]]


class ResnetBlock(nn.Module):
    """``shortcut(x) + block(x)``, block = ELU, conv k (dilated), ELU, conv 1 (compressed)."""

    def __init__(
        self, dim: int, kernel_size: int, dilation: int, compress: int, **conv: Any
    ) -> None:
        super().__init__()
        hidden = dim // compress
        self.block = nn.ModuleList(
            [
                nn.ELU(),
                _Wrapped(SConv1d(dim, hidden, kernel_size, dilation=dilation, **conv)),
                nn.ELU(),
                _Wrapped(SConv1d(hidden, dim, 1, **conv)),
            ]
        )
        self.shortcut = _Wrapped(SConv1d(dim, dim, 1, **conv))

    def forward(self, x: Tensor, mask: Mask = None) -> Tensor:
        y = x
        for layer in self.block:
            y = layer(y) if isinstance(layer, nn.ELU) else apply_mask(layer(y, mask), mask)
        return apply_mask(self.shortcut(x, mask), mask) + y


class _Wrapped(nn.Module):
    """Holds an SConv1d as ``.conv`` so parameter names read ``block.1.conv.conv.*`` as in
    encodec (its ``SConv1d`` wraps a ``NormConv1d`` that wraps the ``nn.Conv1d``)."""

    def __init__(self, conv: SConv1d) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: Tensor, mask: Mask = None) -> Tensor:
        return self.conv(x, mask)


class SLSTM(nn.Module):
    """Unidirectional LSTM over time with a skip connection."""

    def __init__(self, dim: int, layers: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(dim, dim, layers)
        self.state: dict[str, tuple[Tensor, Tensor]] | None = None  # set while streaming

    def forward(self, x: Tensor) -> Tensor:
        carried = None if self.state is None else self.state.get("hc")
        y, hc = self.lstm(x.permute(2, 0, 1), carried)
        if self.state is not None:
            self.state["hc"] = hc
        return (y + x.permute(2, 0, 1)).permute(1, 2, 0)


class SEANetEncoder(nn.Module):
    """Waveform [B, 1, T] -> latent [B, D, T / hop], T a multiple of the hop."""

    def __init__(self, config: CodecConfig) -> None:
        super().__init__()
        arch = config.encodec
        assert arch is not None
        conv = {"pad_mode": arch.pad_mode, "compat": config.compat, "causal": arch.causal}
        mult = 1
        layers: list[nn.Module] = [_Wrapped(SConv1d(1, arch.n_filters, arch.kernel_size, **conv))]
        self.hop_length = config.hop_length
        for ratio in reversed(config.ratios):
            dim = mult * arch.n_filters
            for j in range(arch.n_residual_layers):
                layers.append(
                    ResnetBlock(
                        dim,
                        arch.residual_kernel_size,
                        arch.dilation_base**j,
                        arch.compress,
                        **conv,
                    )  # fmt: skip
                )
                layers += _norm(arch.encoder_norm, dim)
            down = SConv1d(dim, dim * 2, ratio * 2, stride=ratio, **conv)
            layers += [nn.ELU(), _Wrapped(down), *_norm(arch.encoder_norm, dim * 2)]
            mult *= 2
        layers.append(SLSTM(mult * arch.n_filters, arch.lstm_layers))
        layers += _norm(arch.encoder_norm, mult * arch.n_filters)
        last = SConv1d(mult * arch.n_filters, config.latent_dim, arch.last_kernel_size, **conv)
        layers += [nn.ELU(), _Wrapped(last)]
        self.model = nn.ModuleList(layers)

    def forward(self, x: Tensor, frames: Tensor | None = None) -> Tensor:
        return _run_masked(self.model, x, frames, x.shape[-1] // self.hop_length)

    def streaming(self) -> contextlib.AbstractContextManager[None]:
        """Successive calls on consecutive whole-frame chunks of one input continue one
        another (convolution tails, LSTM state): the whole input's latent, chunk by chunk.
        Exact only for a causal encoder without time-group norms (``EncodecCodec.streams``)
        and a first chunk of at least ``stream_min_samples``."""
        return streaming_state(self, (SConv1d, SLSTM))

    @property
    def stream_min_samples(self) -> int:
        """Reflect padding at the very start reads the ``left`` inputs after it, at every
        conv: a first chunk shorter than ``left + 1`` inputs of some conv would be padded
        from less than the whole input gives it. In whole frames."""
        need, stride = 1, 1
        for conv in (m for m in self.modules() if isinstance(m, SConv1d)):  # in order
            if conv.pad_mode != "zeros":
                need = max(need, (conv.padding[0] + 1) * stride)
            stride *= conv.stride
        return math.ceil(need / self.hop_length) * self.hop_length


class SEANetDecoder(nn.Module):
    """Latent [B, D, F] -> waveform [B, 1, F * hop]."""

    def __init__(self, config: CodecConfig) -> None:
        super().__init__()
        arch = config.encodec
        assert arch is not None
        conv = {"pad_mode": arch.pad_mode, "compat": config.compat, "causal": arch.causal}
        mult = 2 ** len(config.ratios)
        first = SConv1d(config.latent_dim, mult * arch.n_filters, arch.kernel_size, **conv)
        layers: list[nn.Module] = [
            _Wrapped(first),
            SLSTM(mult * arch.n_filters, arch.lstm_layers),
        ]
        for ratio in config.ratios:
            dim = mult * arch.n_filters
            layers += [
                nn.ELU(),
                _WrappedTr(SConvTranspose1d(dim, dim // 2, ratio * 2, ratio, arch.causal)),
            ]
            for j in range(arch.n_residual_layers):
                layers.append(
                    ResnetBlock(
                        dim // 2,
                        arch.residual_kernel_size,
                        arch.dilation_base**j,
                        arch.compress,
                        **conv,
                    )  # fmt: skip
                )
            mult //= 2
        last = SConv1d(arch.n_filters, 1, arch.last_kernel_size, **conv)
        layers += [nn.ELU(), _Wrapped(last)]
        self.model = nn.ModuleList(layers)

    def forward(self, x: Tensor, frames: Tensor | None = None) -> Tensor:
        return _run_masked(self.model, x, frames, x.shape[-1])


def _norm(kind: str, channels: int) -> list[nn.Module]:
    """A length-aware GroupNorm after every encoder block (where HiFi-Codec has them), over
    each item's valid time steps: ``time_group_norm`` one group (encodec's 48 kHz norm),
    ``instance_norm`` one group per channel. Why a norm: at init a SEANet encoder's output
    varies over time by only ~14% of a per-utterance constant vector (measured, tiny and
    full width), and that constant moves by more than the variation each early step, so no
    codebook can follow it and every frame maps to one code. Why per channel: the first
    convs' biases are a per-channel constant that one group keeps, and on a quiet input
    (-36 dBFS) it outweighs the signal, so quiet speech lands on a few codes (an ideal
    256-code codebook gives such clips a perplexity of 21-24 at init, 93 once they are at
    the training level); a per-channel norm removes each channel's offset and scale, so
    the latent does not depend on the input's level while the convs are near-linear
    (docs/training.md, codebook health)."""
    groups = {"time_group_norm": 1, "instance_norm": channels}.get(kind)
    return [] if groups is None else [MaskedGroupNorm(groups, channels, eps=1e-5)]


def _run_masked(
    layers: nn.ModuleList, x: Tensor, frames: Tensor | None, total_frames: int
) -> Tensor:
    """Run a SEANet stack, re-zeroing past each item's length after every layer that can
    write there. A stage of length L holds L / total_frames steps per latent frame."""

    def mask_for(length: int) -> Mask:
        return None if frames is None else length_mask(frames * (length // total_frames), length)

    mask = mask_for(x.shape[-1])
    for layer in layers:
        if isinstance(layer, (ResnetBlock, MaskedGroupNorm)):
            x = layer(x, mask)
        elif isinstance(layer, nn.ELU):
            x = layer(x)  # ELU(0) = 0: padding stays zero
        else:  # convs (which may pad by reflection inside each item), the LSTM
            x = layer(x, mask) if isinstance(layer, _Wrapped) else layer(x)
            if mask is not None and mask.shape[-1] != x.shape[-1]:
                mask = mask_for(x.shape[-1])
            x = apply_mask(x, mask)
    return x


class _WrappedTr(nn.Module):
    """Holds an SConvTranspose1d as ``.convtr`` (encodec's ``convtr.convtr.*`` names)."""

    def __init__(self, convtr: SConvTranspose1d) -> None:
        super().__init__()
        self.convtr = convtr

    def forward(self, x: Tensor) -> Tensor:
        return self.convtr(x)
