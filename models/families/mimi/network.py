"""Kyutai's Mimi (Défossez et al., 2024, the Moshi tokenizer): causal SEANet, a causal
transformer with RoPE and a limited context, stride-2 convolutional resampling, and a split
residual VQ (one semantic codebook, then acoustic ones, each half with its own projections).

Module names follow the ``moshi`` package (``encoder.model.N.conv.conv.weight``,
``encoder_transformer.transformer.layers.N.self_attn.in_projs.0.weight``,
``downsample.conv.conv.conv.weight``, ``quantizer.rvq_first.vq.layers.K._codebook.*``), so
its ``tokenizer-*.safetensors`` loads as it is; ``convert.py`` maps the
``transformers`` names. Weights are plain (moshi folds weight norm before release).

Length-aware by construction: every layer is causal (convolutions pad on the left only,
attention looks back only), so the frames of a clip never see what follows them. The
framing is moshi's own (zeros to a whole frame, ``ceil(T / hop)`` frames), so a clip's
codes are the same alone, in any padded batch, and as the reference computes them.
``compat`` gives transformers' framing instead: each strided convolution pads its own
input's ragged end (zeros; the downsample repeats its last step), which changes a ragged
clip's last frame.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from academicodec.models.codec import CodecModel
from academicodec.models.config import CodecConfig
from academicodec.models.families.mimi.arch import MimiArch
from academicodec.models.layers import stream_padded, streaming_state
from academicodec.models.seanet import extra_padding

# Queries attended in one call: beyond this the attention runs block by block, each block
# seeing only its keys in context, so memory grows linearly with the input's length.
ATTENTION_BLOCK = 1024


class _Holder(nn.Module):
    """One child under a given name: reproduces moshi's wrapper nesting in parameter names
    (``StreamingConv1d.conv`` -> ``NormConv1d.conv`` -> ``nn.Conv1d``)."""

    def __init__(self, name: str, child: nn.Module) -> None:
        super().__init__()
        self.add_module(name, child)


class CausalConv1d(nn.Module):
    """moshi's ``StreamingConv1d`` run on a whole input: pad ``(kernel - 1) * dilation + 1 -
    stride`` on the left (zeros, or the first step repeated), none on the right; with
    ``compat``, also the right end up to a whole last window in the same mode (what
    transformers' ``MimiConv1d`` does)."""

    def __init__(
        self, channels_in: int, channels_out: int, kernel: int, stride: int = 1,
        dilation: int = 1, groups: int = 1, bias: bool = True, replicate: bool = False,
        compat: bool = False,
    ) -> None:  # fmt: skip
        super().__init__()
        conv = nn.Conv1d(
            channels_in, channels_out, kernel, stride, dilation=dilation, groups=groups, bias=bias
        )
        self.conv = _Holder("conv", conv)
        self.kernel, self.stride = (kernel - 1) * dilation + 1, stride
        self.left = self.kernel - stride
        self.replicate, self.compat = replicate, compat
        self.state: dict[str, Tensor] | None = None  # set while streaming (MimiEncoder)

    def forward(self, x: Tensor) -> Tensor:
        mode = "replicate" if self.replicate else "constant"
        right = (
            extra_padding(x.shape[-1], self.kernel, self.stride, self.left) if self.compat else 0
        )
        if self.left == right == 0:  # a 1x1 conv: nothing to pad, no copy
            return self.conv.conv(x)

        def pad(t: Tensor, left: int, right: int) -> Tensor:
            return F.pad(t, (left, right), mode=mode)

        return self.conv.conv(stream_padded(self.state, x, self.left, right, pad))


class CausalConvTranspose1d(nn.Module):
    """moshi's ``StreamingConvTranspose1d``: the transposed conv, ``kernel - stride`` steps
    trimmed on the right."""

    def __init__(
        self, channels_in: int, channels_out: int, kernel: int, stride: int, groups: int = 1,
        bias: bool = True,
    ) -> None:  # fmt: skip
        super().__init__()
        convtr = nn.ConvTranspose1d(
            channels_in, channels_out, kernel, stride, groups=groups, bias=bias
        )
        self.convtr = _Holder("convtr", convtr)
        self.trim = kernel - stride

    def forward(self, x: Tensor) -> Tensor:
        y = self.convtr.convtr(x)
        return y[..., : y.shape[-1] - self.trim]


class ResnetBlock(nn.Module):
    """ELU, causal conv k (dilated), ELU, conv 1, plus the input (moshi's ``true_skip``).
    ELUs whose input nothing else reads run in place (3% of Mimi's encode time on CPU: no
    activation-sized allocation per layer); the first here keeps the input for the skip."""

    def __init__(self, dim: int, kernel: int, dilation: int, compress: int) -> None:
        super().__init__()
        hidden = dim // compress
        self.block = nn.Sequential(
            nn.ELU(),
            CausalConv1d(dim, hidden, kernel, dilation=dilation),
            nn.ELU(inplace=True),
            CausalConv1d(hidden, dim, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.block(x).add_(x)  # the block's output is its own: add in place


def _resblocks(arch: MimiArch, dim: int) -> list[nn.Module]:
    return [
        ResnetBlock(dim, arch.residual_kernel_size, arch.dilation_base**j, arch.compress)
        for j in range(arch.n_residual_layers)
    ]


class MimiSEANetEncoder(nn.Module):
    """Waveform [B, 1, T] -> [B, D, T / prod(ratios)]; ratios in the decoder's order."""

    def __init__(self, config: CodecConfig) -> None:
        super().__init__()
        arch = config.mimi
        assert arch is not None
        mult = 1
        layers: list[nn.Module] = [CausalConv1d(1, arch.n_filters, arch.kernel_size)]
        for ratio in reversed(config.ratios):
            dim = mult * arch.n_filters
            layers += _resblocks(arch, dim)
            down = CausalConv1d(dim, dim * 2, ratio * 2, stride=ratio, compat=config.compat)
            layers += [nn.ELU(inplace=True), down]
            mult *= 2
        last = CausalConv1d(mult * arch.n_filters, config.latent_dim, arch.last_kernel_size)
        layers += [nn.ELU(inplace=True), last]
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class MimiSEANetDecoder(nn.Module):
    """[B, D, F] -> waveform [B, 1, F * prod(ratios)]."""

    def __init__(self, config: CodecConfig) -> None:
        super().__init__()
        arch = config.mimi
        assert arch is not None
        mult = 2 ** len(config.ratios)
        layers: list[nn.Module] = [
            CausalConv1d(config.latent_dim, mult * arch.n_filters, arch.kernel_size)
        ]
        for ratio in config.ratios:
            dim = mult * arch.n_filters
            layers += [nn.ELU(inplace=True), CausalConvTranspose1d(dim, dim // 2, ratio * 2, ratio)]
            layers += _resblocks(arch, dim // 2)
            mult //= 2
        layers += [nn.ELU(inplace=True), CausalConv1d(arch.n_filters, 1, arch.last_kernel_size)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class _LayerScale(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(channels))

    def forward(self, x: Tensor) -> Tensor:
        return self.scale * x


class _Attention(nn.Module):
    """Causal multi-head self-attention over at most ``context`` steps, with interleaved
    RoPE (moshi's ``StreamingMultiheadAttention``). While streaming (``state`` set) it keeps
    the last ``context - 1`` rotated keys and values and the position reached, as moshi's
    cache does, so a chunk's queries see what they would see in the whole input."""

    def __init__(self, dim: int, heads: int, context: int, max_period: float) -> None:
        super().__init__()
        self.in_projs = nn.ModuleList([nn.Linear(dim, 3 * dim, bias=False)])
        self.out_projs = nn.ModuleList([nn.Linear(dim, dim, bias=False)])
        self.heads, self.context, self.max_period = heads, context, max_period
        self.state: dict[str, Any] | None = None

    def forward(self, x: Tensor) -> Tensor:
        batch, steps, dim = x.shape
        qkv = self.in_projs[0](x).view(batch, steps, 3, self.heads, dim // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each [B, H, T, d]
        state = self.state
        offset = 0 if state is None else state.get("offset", 0)
        q, k = self._rope(q, offset), self._rope(k, offset)
        if state is not None:
            if "k" in state:
                k, v = torch.cat([state["k"], k], 2), torch.cat([state["v"], v], 2)
            keep = k.shape[2] - min(k.shape[2], self.context - 1)
            state.update(k=k[:, :, keep:].clone(), v=v[:, :, keep:].clone(), offset=offset + steps)
        past = k.shape[2] - steps  # keys before the first query
        out = torch.cat(
            [self._block(q, k, v, start, past) for start in range(0, steps, ATTENTION_BLOCK)], 2
        )
        return self.out_projs[0](out.transpose(1, 2).reshape(batch, steps, dim))

    def _block(self, q: Tensor, k: Tensor, v: Tensor, start: int, past: int) -> Tensor:
        """Queries ``start`` up to ``ATTENTION_BLOCK`` later, with only the keys in their
        context (memory linear in the input's length); query i is key ``i + past``."""
        end = min(start + ATTENTION_BLOCK, q.shape[2])
        first = max(0, start + past - self.context + 1)
        mask = self._mask(start + past, end + past, first, end + past, q)
        return F.scaled_dot_product_attention(
            q[:, :, start:end], k[:, :, first : end + past], v[:, :, first : end + past], mask
        )

    def _mask(self, q0: int, q1: int, k0: int, k1: int, like: Tensor) -> Tensor:
        delta = (
            torch.arange(q0, q1, device=like.device)[:, None]
            - torch.arange(k0, k1, device=like.device)[None, :]
        )
        return (delta >= 0) & (delta < self.context)

    def _rope(self, x: Tensor, offset: int) -> Tensor:
        """Rotate pairs (2i, 2i + 1) by t / max_period^(2i / d), t counted from ``offset``,
        in float32 as moshi does."""
        steps, dim = x.shape[2], x.shape[3]
        freqs = torch.exp(
            torch.arange(dim // 2, device=x.device, dtype=torch.float32)
            * (-math.log(self.max_period) * 2 / dim)
        )
        positions = torch.arange(offset, offset + steps, device=x.device, dtype=torch.float32)
        angles = freqs * positions[:, None]
        cos, sin = torch.cos(angles), torch.sin(angles)
        pairs = x.view(*x.shape[:-1], dim // 2, 2)
        real, imag = pairs[..., 0].float(), pairs[..., 1].float()
        rotated = torch.stack([real * cos - imag * sin, real * sin + imag * cos], dim=-1)
        return rotated.to(x.dtype).view(x.shape)


class _TransformerLayer(nn.Module):
    def __init__(self, arch: MimiArch) -> None:
        super().__init__()
        dim = arch.d_model
        self.self_attn = _Attention(dim, arch.num_heads, arch.context, arch.max_period)
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.linear1 = nn.Linear(dim, arch.dim_feedforward, bias=False)
        self.linear2 = nn.Linear(arch.dim_feedforward, dim, bias=False)
        scale = _LayerScale if arch.layer_scale else (lambda _: nn.Identity())
        self.layer_scale_1 = scale(dim)
        self.layer_scale_2 = scale(dim)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.layer_scale_1(self.self_attn(self.norm1(x)))
        return x + self.layer_scale_2(self.linear2(F.gelu(self.linear1(self.norm2(x)))))


class _Transformer(nn.Module):
    def __init__(self, arch: MimiArch) -> None:
        super().__init__()
        self.layers = nn.ModuleList([_TransformerLayer(arch) for _ in range(arch.num_layers)])

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class ProjectedTransformer(nn.Module):
    """[B, D, T] -> [B, D, T] through the transformer (with projections when its width
    differs from the latent's)."""

    def __init__(self, latent_dim: int, arch: MimiArch) -> None:
        super().__init__()
        self.transformer = _Transformer(arch)
        differs = arch.d_model != latent_dim
        self.input_proj = nn.Linear(latent_dim, arch.d_model, bias=False) if differs else None
        self.output_projs = nn.ModuleList(
            [nn.Linear(arch.d_model, latent_dim, bias=False) if differs else nn.Identity()]
        )

    def forward(self, x: Tensor) -> Tensor:
        x = x.transpose(1, 2)
        if self.input_proj is not None:
            x = self.input_proj(x)
        return self.output_projs[0](self.transformer(x)).transpose(1, 2)


class MimiEncoder(nn.Module):
    """Waveform -> latent at the code frame rate: SEANet, transformer, stride-2 conv."""

    def __init__(self, config: CodecConfig) -> None:
        super().__init__()
        arch = config.mimi
        assert arch is not None
        self.seanet = MimiSEANetEncoder(config)
        self.transformer = ProjectedTransformer(config.latent_dim, arch)
        stride = arch.downsample_stride
        self.downsample = _Holder(
            "conv",
            CausalConv1d(
                config.latent_dim, config.latent_dim, 2 * stride, stride, bias=False,
                replicate=True, compat=config.compat,
            ),
        )  # fmt: skip

    def forward(self, x: Tensor, frames: Tensor | None = None) -> Tensor:
        return self.downsample.conv(self.transformer(self.seanet(x)))

    def streaming(self) -> contextlib.AbstractContextManager[None]:
        """Within it, successive calls on consecutive chunks of one input (each a whole
        number of frames) continue one another: every convolution keeps its last inputs,
        every attention layer its keys in context and position. The codes are then those
        of the whole input, at the memory of one chunk."""
        return streaming_state(self, (CausalConv1d, _Attention))


class MimiDecoder(nn.Module):
    """Latent -> waveform: channel-wise transposed conv (moshi's "channel-wise bug",
    kept), transformer, SEANet decoder."""

    def __init__(self, config: CodecConfig) -> None:
        super().__init__()
        arch = config.mimi
        assert arch is not None
        stride, dim = arch.downsample_stride, config.latent_dim
        self.upsample = _Holder(
            "convtr", CausalConvTranspose1d(dim, dim, 2 * stride, stride, groups=dim, bias=False)
        )
        self.transformer = ProjectedTransformer(dim, arch)
        self.seanet = MimiSEANetDecoder(config)

    def forward(self, x: Tensor, frames: Tensor | None = None) -> Tensor:
        return self.seanet(self.transformer(self.upsample.convtr(x)))


class _Codebook(nn.Module):
    """moshi's ``EuclideanCodebook`` at inference: centroids ``embedding_sum / usage``."""

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        self.register_buffer("_initialized", torch.ones(1))
        self.register_buffer("cluster_usage", torch.ones(size))
        self.register_buffer("embedding_sum", torch.zeros(size, dim))

    def embedding(self) -> Tensor:
        return self.embedding_sum / self.cluster_usage.clamp(min=1e-5)[:, None]


class _VQ(nn.Module):
    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        self._codebook = _Codebook(size, dim)


class _Layers(nn.Module):
    def __init__(self, count: int, size: int, dim: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList([_VQ(size, dim) for _ in range(count)])


class _ResidualQuantizer(nn.Module):
    """One half of the split RVQ: 1x1 projections around a Euclidean residual VQ."""

    def __init__(self, count: int, size: int, dim: int, latent_dim: int) -> None:
        super().__init__()
        self.input_proj = nn.Conv1d(latent_dim, dim, 1, bias=False)
        self.output_proj = nn.Conv1d(dim, latent_dim, 1, bias=False)
        self.vq = _Layers(count, size, dim)

    def encode(self, latent: Tensor, n_q: int) -> Tensor:
        residual = self.input_proj(latent).transpose(1, 2)  # [B, F, d]
        rows = residual.reshape(-1, residual.shape[-1])
        codes = []
        for layer in self.vq.layers[:n_q]:
            table = layer._codebook.embedding()
            index = torch.cdist(rows[None], table[None], p=2)[0].argmin(dim=-1)
            rows = rows - F.embedding(index, table)
            codes.append(index.view(residual.shape[:2]))
        return torch.stack(codes, dim=1)

    def decode(self, codes: Tensor) -> Tensor:
        quantized = sum(
            F.embedding(codes[:, k], self.vq.layers[k]._codebook.embedding())
            for k in range(codes.shape[1])
        )
        return self.output_proj(quantized.transpose(1, 2))


class SplitResidualVQ(nn.Module):
    """``rvq_first`` (semantic, ``n_q_semantic`` codebooks) and ``rvq_rest`` (acoustic)
    both quantize the same latent; codes are concatenated, decodings summed."""

    def __init__(self, config: CodecConfig) -> None:
        super().__init__()
        arch = config.mimi
        assert arch is not None
        size, dim, latent = config.codebook_size, arch.codebook_dim, config.latent_dim
        self.n_semantic = arch.n_q_semantic
        self.rvq_first = _ResidualQuantizer(arch.n_q_semantic, size, dim, latent)
        self.rvq_rest = _ResidualQuantizer(arch.n_q - arch.n_q_semantic, size, dim, latent)

    def encode(self, latent: Tensor, mask: Tensor | None = None, n_q: int | None = None) -> Tensor:
        total = n_q or self.n_semantic + len(self.rvq_rest.vq.layers)
        codes = self.rvq_first.encode(latent, min(total, self.n_semantic))
        if total > self.n_semantic:
            rest = self.rvq_rest.encode(latent, total - self.n_semantic)
            codes = torch.cat([codes, rest], dim=1)
        return codes

    def decode(self, codes: Tensor) -> Tensor:
        quantized = self.rvq_first.decode(codes[:, : self.n_semantic])
        if codes.shape[1] > self.n_semantic:
            quantized = quantized + self.rvq_rest.decode(codes[:, self.n_semantic :])
        return quantized


class MimiCodec(CodecModel):
    """Kyutai's Mimi (this module): any first 1..n_q codebooks (8 is Moshi's)."""

    default_framing = "moshi's framing (zeros to a whole 1920-sample frame, ceil(T / hop))"
    compat_framing = (
        "transformers' framing: each strided convolution pads its own ragged end (a ragged "
        "clip's last frame can differ)"
    )

    def __init__(self, config: CodecConfig) -> None:
        super().__init__(config)
        self.encoder = MimiEncoder(config)
        self.quantizer = SplitResidualVQ(config)
        self.decoder = MimiDecoder(config)

    streams = True  # causal: ``MimiEncoder.streaming``, as moshi's streaming encoder


CODEC = MimiCodec
