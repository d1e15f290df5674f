"""X-Codec2 (Ye et al., 2025), the codec Llasa TTS speaks in: one FSQ codebook of 65,536
codes at 50 Hz (16 kHz audio), made from two encoders side by side.

- Semantic: the Kaldi log-mel filterbank of the waveform (``KaldiFbank``; 80 bins, 25/10 ms,
  povey window, normalised per utterance, two frames stacked -> 160 features at 50 Hz),
  a w2v-BERT 2.0 Conformer (``Conformer``: 16 of its 24 layers in the released model), and
  a small conv adapter.
- Acoustic: DAC's encoder with BigVGAN's anti-aliased SnakeBeta (``AntiAliased``: 2x
  Kaiser-sinc up-sampling, the activation, 2x down-sampling, replicate padding).
- Both concatenated, ``fc_encoder``, then finite scalar quantization (``FSQ``).
- Decoder: Vocos-style - conv, ResNet blocks with GroupNorm, a bidirectional transformer,
  ResNet blocks, LayerNorm and an inverse-STFT head ("same" padding).

Module names follow transformers' ``Xcodec2Model`` (``semantic_encoder.encoder.layers.N``,
``acoustic_encoder.block.N.res_unit1``, ``acoustic_decoder.prior_net.N``), under our
``encoder``/``quantizer``/``decoder``, so its ``model.safetensors`` loads by prefix.

Length-aware: with ``frames`` every stage treats each item as if it were alone - the
filterbank statistics cover its own frames, attention masks other items' padding, a conv
sees zeros past the item's end, the anti-aliasing filters see the item's last value repeated
(their replicate padding), GroupNorm takes statistics over valid steps, and the inverse STFT
overlaps only the item's frames. So batched codes equal codes alone (transformers' are not:
2.9-9.5% of a padded clip's codes change, docs/models.md).

Framing: the reference's, not DESIGN §4's ``ceil(T / 320)``: it appends one zero sample
before padding to a whole hop (``Xcodec2FeatureExtractor``, and the original's
``encode_code``), so a clip of exactly ``k * 320`` samples gets ``k + 1`` frames. An LM
trained on its codes (Llasa) needs them for every length; batched, each item gets its own
``T // 320 + 1`` frames (``Xcodec2Codec._frame``). ``compat`` runs items one at a time
instead (the same codes).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from academicodec.models.codec import CodecModel
from academicodec.models.config import CodecConfig
from academicodec.models.families.xcodec2.arch import Xcodec2Arch
from academicodec.models.layers import MaskedGroupNorm, apply_mask, length_mask
from academicodec.models.precision import exact_float32

MEL_BINS = 80
STACK = 2  # filterbank frames per semantic frame


def _zero_past(x: Tensor, lengths: Tensor | None) -> Tensor:
    """``x`` [B, C, T] with zeros past each item's length (what a conv sees alone)."""
    return apply_mask(x, length_mask(lengths, x.shape[-1]))


def _repeat_past(x: Tensor, lengths: Tensor | None) -> Tensor:
    """``x`` [B, C, T] with each item's last valid step repeated past its length (what a
    replicate-padded filter sees alone)."""
    if lengths is None:
        return x
    last = x.gather(-1, (lengths - 1).view(-1, 1, 1).expand(-1, x.shape[1], 1))
    return torch.where(length_mask(lengths, x.shape[-1]).bool(), x, last)


# --- semantic branch: Kaldi filterbank + w2v-BERT 2.0 Conformer + adapter ------------------


class KaldiFbank(nn.Module):
    """``torchaudio.compliance.kaldi.fbank`` as the X-Codec2 feature extractor calls it
    (80 log-mel bins, 25 ms povey windows every 10 ms, pre-emphasis 0.97, DC removed, snipped
    edges, 20 Hz to Nyquist, no dither), batched, then each item's frames normalised by its
    own mean and unbiased variance and stacked in pairs."""

    def __init__(self, sample_rate: int) -> None:
        super().__init__()
        self.window_size = int(sample_rate * 0.025)
        self.shift = int(sample_rate * 0.010)
        self.fft_size = 1 << (self.window_size - 1).bit_length()
        window = torch.hann_window(self.window_size, periodic=False).pow(0.85)
        self.register_buffer("window", window, persistent=False)
        banks = F.pad(_mel_banks(MEL_BINS, self.fft_size, sample_rate, 20.0), (0, 1))
        self.register_buffer("banks", banks.t().contiguous(), persistent=False)

    def forward(self, wav: Tensor, frames: Tensor | None) -> Tensor:
        """Waveform [B, 1, F * hop] -> features [B, F, 160] (``frames`` valid per item)."""
        hop = STACK * self.shift
        padded = F.pad(wav[:, 0] * 2**15, (hop // 2, hop // 2))
        windows = padded.unfold(-1, self.window_size, self.shift)  # [B, 2F, 400]
        windows = windows - windows.mean(dim=-1, keepdim=True)
        previous = torch.cat([windows[..., :1], windows[..., :-1]], dim=-1)
        windows = (windows - 0.97 * previous) * self.window
        power = torch.fft.rfft(windows, n=self.fft_size).abs().pow(2.0)
        eps = torch.finfo(power.dtype).eps
        features = torch.matmul(power, self.banks).clamp_min(eps).log()  # [B, 2F, 80]
        count = features.shape[1]
        if frames is None:
            mean = features.mean(dim=1, keepdim=True)
            var = features.var(dim=1, keepdim=True, unbiased=True)
        else:
            weights = length_mask(frames * STACK, count).transpose(1, 2)  # [B, 2F, 1]
            n = (frames * STACK).view(-1, 1, 1).to(features.dtype)
            mean = (features * weights).sum(dim=1, keepdim=True) / n
            var = (((features - mean) * weights) ** 2).sum(dim=1, keepdim=True) / (n - 1)
        features = (features - mean) / torch.sqrt(var + 1e-7)
        return features.reshape(features.shape[0], count // STACK, STACK * MEL_BINS)


def _mel_banks(bins: int, fft_size: int, sample_rate: int, low: float) -> Tensor:
    """Kaldi's triangular mel filters [bins, fft_size / 2] (no VTLN warping)."""

    def mel(freq: float) -> float:
        return 1127.0 * math.log(1.0 + freq / 700.0)

    low_mel, high_mel = mel(low), mel(sample_rate / 2)
    delta = (high_mel - low_mel) / (bins + 1)
    index = torch.arange(bins).unsqueeze(1)
    left = low_mel + index * delta
    center = low_mel + (index + 1.0) * delta
    right = low_mel + (index + 2.0) * delta
    fft_mel = 1127.0 * (1.0 + sample_rate / fft_size * torch.arange(fft_size / 2) / 700.0).log()
    up = (fft_mel[None] - left) / (center - left)
    down = (right - fft_mel[None]) / (right - center)
    return torch.max(torch.zeros(1), torch.min(up, down))


class FeatureProjection(nn.Module):
    def __init__(self, features: int, dim: int, eps: float) -> None:
        super().__init__()
        self.layer_norm = nn.LayerNorm(features, eps=eps)
        self.projection = nn.Linear(features, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.projection(self.layer_norm(x))


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.intermediate_dense = nn.Linear(dim, hidden)
        self.output_dense = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.output_dense(F.silu(self.intermediate_dense(x)))


class RelativeKeyAttention(nn.Module):
    """w2v-BERT's self-attention: every query also scores learned embeddings of its
    distance to each key, clamped to ``[-left, right]`` (Shaw et al.'s relative keys)."""

    def __init__(self, dim: int, heads: int, left: int, right: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.left, self.right = left, right
        self.linear_q = nn.Linear(dim, dim)
        self.linear_k = nn.Linear(dim, dim)
        self.linear_v = nn.Linear(dim, dim)
        self.linear_out = nn.Linear(dim, dim)
        self.distance_embedding = nn.Embedding(left + right + 1, self.head_dim)

    def forward(self, x: Tensor, keys: Tensor | None) -> Tensor:
        """``x`` [B, T, C]; ``keys`` [B, T] bool, the valid positions (None: all)."""
        batch, steps, dim = x.shape

        def heads(t: Tensor) -> Tensor:
            return t.view(batch, steps, self.heads, self.head_dim).transpose(1, 2)

        q, k, v = heads(self.linear_q(x)), heads(self.linear_k(x)), heads(self.linear_v(x))
        positions = torch.arange(steps, device=x.device)
        distance = (positions[None, :] - positions[:, None]).clamp(-self.left, self.right)
        scale = self.head_dim**-0.5
        # q . e(distance) for the few distances there are, then spread over [T, T]
        relative = torch.matmul(q, self.distance_embedding.weight.t()) * scale
        index = (distance + self.left).expand(batch, self.heads, steps, steps)
        bias = relative.gather(-1, index)
        if keys is not None:
            bias = bias.masked_fill(~keys[:, None, None, :], float("-inf"))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=scale)
        return self.linear_out(out.transpose(1, 2).reshape(batch, steps, dim))


class ConvolutionModule(nn.Module):
    """Conformer convolution: LayerNorm, pointwise conv + GLU, causal depthwise conv,
    LayerNorm, swish, pointwise conv (no biases)."""

    def __init__(self, dim: int, kernel: int, eps: float) -> None:
        super().__init__()
        self.layer_norm = nn.LayerNorm(dim, eps=eps)
        self.pointwise_conv1 = nn.Conv1d(dim, 2 * dim, 1, bias=False)
        self.depthwise_conv = nn.Conv1d(dim, dim, kernel, groups=dim, bias=False)
        self.depthwise_layer_norm = nn.LayerNorm(dim, eps=eps)
        self.pointwise_conv2 = nn.Conv1d(dim, dim, 1, bias=False)

    def forward(self, x: Tensor, keys: Tensor | None) -> Tensor:
        x = self.layer_norm(x)
        if keys is not None:
            x = x * keys[..., None]
        x = F.glu(self.pointwise_conv1(x.transpose(1, 2)), dim=1)
        x = self.depthwise_conv(F.pad(x, (self.depthwise_conv.kernel_size[0] - 1, 0)))
        x = F.silu(self.depthwise_layer_norm(x.transpose(1, 2)))
        return self.pointwise_conv2(x.transpose(1, 2)).transpose(1, 2)


class ConformerLayer(nn.Module):
    def __init__(self, arch: Xcodec2Arch) -> None:
        super().__init__()
        dim, eps = arch.semantic_dim, arch.semantic_eps
        self.ffn1_layer_norm = nn.LayerNorm(dim, eps=eps)
        self.ffn1 = FeedForward(dim, arch.semantic_intermediate)
        self.self_attn_layer_norm = nn.LayerNorm(dim, eps=eps)
        self.self_attn = RelativeKeyAttention(
            dim, arch.semantic_heads, arch.semantic_left, arch.semantic_right
        )
        self.conv_module = ConvolutionModule(dim, arch.semantic_kernel, eps)
        self.ffn2_layer_norm = nn.LayerNorm(dim, eps=eps)
        self.ffn2 = FeedForward(dim, arch.semantic_intermediate)
        self.final_layer_norm = nn.LayerNorm(dim, eps=eps)

    def forward(self, x: Tensor, keys: Tensor | None) -> Tensor:
        x = x + 0.5 * self.ffn1(self.ffn1_layer_norm(x))
        x = x + self.self_attn(self.self_attn_layer_norm(x), keys)
        x = x + self.conv_module(x, keys)
        x = x + 0.5 * self.ffn2(self.ffn2_layer_norm(x))
        return self.final_layer_norm(x)


class ConformerStack(nn.Module):
    def __init__(self, arch: Xcodec2Arch) -> None:
        super().__init__()
        self.layers = nn.ModuleList(ConformerLayer(arch) for _ in range(arch.semantic_layers))


class Conformer(nn.Module):
    """w2v-BERT 2.0 (``Wav2Vec2BertModel``) up to its last kept layer: features [B, F, 160]
    -> hidden states [B, F, C]."""

    def __init__(self, arch: Xcodec2Arch) -> None:
        super().__init__()
        self.feature_projection = FeatureProjection(
            STACK * MEL_BINS, arch.semantic_dim, arch.semantic_eps
        )
        self.encoder = ConformerStack(arch)

    def forward(self, features: Tensor, frames: Tensor | None) -> Tensor:
        x = self.feature_projection(features)
        keys = None
        if frames is not None:
            keys = length_mask(frames, x.shape[1])[:, 0].bool()
            x = x * keys[..., None]
        for layer in self.encoder.layers:
            x = layer(x, keys)
        return x


class SemanticAdapter(nn.Module):
    """Four 3-wide convs with a ReLU residual in the middle, on [B, C, F]."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(dim, dim, 3, padding=1, bias=False)
        self.conv2 = nn.Conv1d(dim, dim, 3, padding=1)
        self.conv3 = nn.Conv1d(dim, dim, 3, padding=1)
        self.conv4 = nn.Conv1d(dim, dim, 3, padding=1, bias=False)

    def forward(self, x: Tensor, frames: Tensor | None) -> Tensor:
        x = F.relu(self.conv1(_zero_past(x, frames)))
        residual = x
        x = F.relu(self.conv2(_zero_past(x, frames)))
        x = self.conv3(_zero_past(x, frames)) + residual
        return self.conv4(_zero_past(x, frames))


# --- acoustic branch: DAC encoder with anti-aliased SnakeBeta -------------------------------


class SnakeBeta(nn.Module):
    """``x + sin^2(x e^alpha) / e^beta`` (log-scale parameters, per channel)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        alpha = self.alpha.exp()[None, :, None]
        scale = 1.0 / (self.beta.exp()[None, :, None] + 1e-9)
        if torch.is_grad_enabled():
            return x + scale * torch.sin(x * alpha).pow(2)
        # inference: one new tensor, the rest in place (a third faster on the 2x-rate
        # activations that dominate the acoustic encoder), the same numbers
        y = (x * alpha).sin_()
        return y.mul_(y).mul_(scale).add_(x)


def kaiser_sinc(cutoff: float, half_width: float, taps: int) -> Tensor:
    """BigVGAN's Kaiser-windowed sinc low-pass, [taps], summing to 1 (``taps`` even)."""
    half = taps // 2
    attenuation = 2.285 * (half - 1) * math.pi * 4 * half_width + 7.95
    if attenuation > 50.0:
        beta = 0.1102 * (attenuation - 8.7)
    elif attenuation >= 21.0:
        beta = 0.5842 * (attenuation - 21) ** 0.4 + 0.07886 * (attenuation - 21.0)
    else:
        beta = 0.0
    window = torch.kaiser_window(taps, beta=beta, periodic=False, dtype=torch.float32)
    time = torch.arange(-half, half) + 0.5
    taps_ = 2 * cutoff * window * torch.sinc(2 * cutoff * time)
    return taps_ / taps_.sum()


class AntiAliased(nn.Module):
    """SnakeBeta at twice the rate: Kaiser-sinc up-sampling (12 taps), the activation,
    Kaiser-sinc down-sampling; both filters pad by repeating the edge value."""

    RATIO, TAPS = 2, 12
    # Long inputs run in tiles of TILE steps, each with HALO steps of real input on either
    # side (an output reads 6 input steps each way; a tile's own edge padding reaches only
    # its halo's outputs, which are dropped): the same numbers at a tile's memory, and
    # faster (in cache) - whole, a 20 s chunk's first block took 400 MB, 6.5x its input.
    TILE, HALO = 1 << 14, 16

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.act = SnakeBeta(channels)
        self.register_buffer(
            "filter", kaiser_sinc(0.5 / self.RATIO, 0.6 / self.RATIO, self.TAPS), persistent=False
        )

    def forward(self, x: Tensor, lengths: Tensor | None) -> Tensor:
        """With ``lengths``, each item as if alone: past its end the up-sampling filter
        reads its last value repeated (``_repeat_past``), and its last outputs - whose
        down-sampling filter reads past the end of the up-sampled item, which alone is
        that end repeated - are computed again from its last steps alone."""
        steps = x.shape[-1]
        x = _repeat_past(x, lengths)
        out = self._tiled(x) if steps > self.TILE + 2 * self.HALO else self._whole(x)
        if lengths is not None:
            tail = self.HALO // 2
            for i, length in enumerate(int(n) for n in lengths):
                if length < steps:
                    start = max(0, length - 2 * self.HALO)
                    alone = self._whole(x[i : i + 1, :, start:length])
                    keep = min(tail, length)
                    out[i, :, length - keep : length] = alone[0, :, -keep:]
        return out

    def _tiled(self, x: Tensor) -> Tensor:
        steps, out = x.shape[-1], torch.empty_like(x)
        for start in range(0, steps, self.TILE):
            end = min(steps, start + self.TILE)
            first, last = max(0, start - self.HALO), min(steps, end + self.HALO)
            part = self._whole(x[..., first:last])
            out[..., start:end] = part[..., start - first : end - first]
        return out

    def _whole(self, x: Tensor) -> Tensor:
        ratio, taps, channels = self.RATIO, self.TAPS, x.shape[1]
        weight = self.filter.to(x.dtype).view(1, 1, -1).expand(channels, 1, taps)
        pad = taps // ratio - 1
        # the gain of 2 in the taps: exact (a power of two), and one pass fewer
        up = F.conv_transpose1d(
            F.pad(x, (pad, pad), mode="replicate"), weight * ratio, stride=ratio, groups=channels
        )
        trim = pad * ratio + (taps - ratio) // 2
        up = self.act(up[..., trim : up.shape[-1] - trim])
        down = F.pad(up, (taps // 2 - 1, taps // 2), mode="replicate")
        return F.conv1d(down, weight, stride=ratio, groups=channels)


class ResidualUnit(nn.Module):
    def __init__(self, dim: int, dilation: int) -> None:
        super().__init__()
        self.snake1 = AntiAliased(dim)
        self.conv1 = nn.Conv1d(dim, dim, 7, dilation=dilation, padding=3 * dilation)
        self.snake2 = AntiAliased(dim)
        self.conv2 = nn.Conv1d(dim, dim, 1)

    def forward(self, x: Tensor, lengths: Tensor | None) -> Tensor:
        # one expression: no intermediate outlives the layer that reads it
        y = self.snake2(self.conv1(_zero_past(self.snake1(x, lengths), lengths)), lengths)
        return self.conv2(y).add_(x)


class EncoderBlock(nn.Module):
    def __init__(self, dim: int, stride: int) -> None:
        super().__init__()
        half = dim // 2
        self.res_unit1 = ResidualUnit(half, 1)
        self.res_unit2 = ResidualUnit(half, 3)
        self.res_unit3 = ResidualUnit(half, 9)
        self.snake1 = AntiAliased(half)
        self.conv1 = nn.Conv1d(half, dim, 2 * stride, stride, padding=math.ceil(stride / 2))

    def forward(self, x: Tensor, lengths: Tensor | None) -> Tensor:
        for unit in (self.res_unit1, self.res_unit2, self.res_unit3):
            x = unit(x, lengths)
        return self.conv1(_zero_past(self.snake1(x, lengths), lengths))


class AcousticEncoder(nn.Module):
    """Waveform [B, 1, F * hop] -> [B, hidden, F]."""

    def __init__(self, config: CodecConfig, arch: Xcodec2Arch) -> None:
        super().__init__()
        width = arch.encoder_dim
        self.conv1 = nn.Conv1d(1, width, 7, padding=3)
        self.block = nn.ModuleList(
            EncoderBlock(width * 2 ** (i + 1), stride) for i, stride in enumerate(config.ratios)
        )
        top = width * 2 ** len(config.ratios)
        self.snake1 = AntiAliased(top)
        self.conv2 = nn.Conv1d(top, arch.hidden_size, 3, padding=1)

    def forward(self, wav: Tensor, lengths: Tensor | None) -> Tensor:
        x = self.conv1(wav)
        for block in self.block:
            x = block(x, lengths)
            lengths = None if lengths is None else lengths // block.conv1.stride[0]
        return self.conv2(_zero_past(self.snake1(x, lengths), lengths))


class Xcodec2Encoder(nn.Module):
    """Waveform [B, 1, F * hop] -> the latent FSQ quantizes, [B, semantic + hidden, F]."""

    def __init__(self, config: CodecConfig) -> None:
        super().__init__()
        arch = config.xcodec2
        assert arch is not None
        self.hop_length = config.hop_length
        self.fbank = KaldiFbank(config.sample_rate)
        self.semantic_encoder = Conformer(arch)
        self.semantic_adapter = SemanticAdapter(arch.semantic_dim)
        self.acoustic_encoder = AcousticEncoder(config, arch)
        self.fc_encoder = nn.Linear(config.latent_dim, config.latent_dim)

    def forward(self, wav: Tensor, frames: Tensor | None = None) -> Tensor:
        with exact_float32(wav.device.type):  # log-mel of x 2^15 audio: no bf16 here
            features = self.fbank(wav.float(), frames)
        semantic = self.semantic_encoder(features.to(wav.dtype), frames).transpose(1, 2)
        semantic = self.semantic_adapter(semantic, frames)
        lengths = None if frames is None else frames * self.hop_length
        acoustic = self.acoustic_encoder(wav, lengths)
        both = torch.cat([semantic, acoustic], dim=1).transpose(1, 2)
        return self.fc_encoder(both).transpose(1, 2)


# --- quantizer ------------------------------------------------------------------------------


class FSQ(nn.Module):
    """Finite scalar quantization: a projection to ``len(levels)`` numbers, each bounded
    (by a shifted tanh, twice, as the released checkpoint was used) and rounded to one of
    its levels; the code is their mixed-radix index. One codebook of ``prod(levels)``."""

    def __init__(self, config: CodecConfig) -> None:
        super().__init__()
        arch = config.xcodec2
        assert arch is not None
        levels = torch.tensor(arch.levels)
        self.project_in = nn.Linear(config.latent_dim, len(arch.levels))
        self.project_out = nn.Linear(len(arch.levels), config.latent_dim)
        basis = torch.cumprod(torch.tensor([1, *arch.levels[:-1]]), dim=0)
        self.register_buffer("levels", levels, persistent=False)
        self.register_buffer("basis", basis, persistent=False)

    def _bound(self, x: Tensor) -> Tensor:
        half_range = (self.levels - 1) * (1 + 1e-3) / 2
        offset = torch.where(self.levels % 2 == 0, 0.5, 0.0)
        shift = (offset / half_range).atanh()
        return (x + shift).tanh() * half_range - offset

    @torch.no_grad()
    def encode(self, latent: Tensor, mask: Tensor | None = None, n_q: int | None = None) -> Tensor:
        """Codes [B, 1, F] from a latent [B, D, F]."""
        bounded = self._bound(self._bound(self.project_in(latent.transpose(1, 2)).float()))
        digits = bounded.round() + (self.levels // 2)
        codes = (digits * self.basis).sum(dim=-1).long()
        return codes[:, None]

    def decode(self, codes: Tensor) -> Tensor:
        """Latent [B, D, F] from codes [B, 1, F]."""
        digits = (codes[:, 0, :, None] // self.basis) % self.levels
        half = self.levels // 2
        values = ((digits - half) / half).to(self.project_out.weight.dtype)
        return self.project_out(values).transpose(1, 2)


# --- decoder --------------------------------------------------------------------------------


class ResNetBlock(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm1 = MaskedGroupNorm(32, dim, eps=1e-6)
        self.conv1 = nn.Conv1d(dim, dim, 3, padding=1)
        self.norm2 = MaskedGroupNorm(32, dim, eps=1e-6)
        self.conv2 = nn.Conv1d(dim, dim, 3, padding=1)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        y = self.conv1(F.silu(self.norm1(x, mask)))
        return x + self.conv2(F.silu(self.norm2(y, mask)))


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        y = x.float()
        y = y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * y.to(x.dtype)


class SelfAttention(nn.Module):
    """Bidirectional attention. The reference's rotary embedding takes the head index as
    its position (one angle per head, the same at every step: it leaves every q . k as it
    is); applied all the same, for the same rounding."""

    def __init__(self, dim: int, heads: int, head_dim: int, theta: float) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        self.q_proj = nn.Linear(dim, heads * head_dim, bias=False)
        self.k_proj = nn.Linear(dim, heads * head_dim, bias=False)
        self.v_proj = nn.Linear(dim, heads * head_dim, bias=False)
        self.o_proj = nn.Linear(heads * head_dim, dim, bias=False)
        inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float) / head_dim))
        angles = torch.arange(heads).float()[:, None] * inv_freq[None]
        angles = torch.cat([angles, angles], dim=-1)[:, None, :]  # [H, 1, d]
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def _rotate(self, x: Tensor) -> Tensor:
        first, second = x.chunk(2, dim=-1)
        rotated = torch.cat([-second, first], dim=-1)
        return x * self.cos.to(x.dtype) + rotated * self.sin.to(x.dtype)

    def forward(self, x: Tensor, keys: Tensor | None) -> Tensor:
        batch, steps, _ = x.shape

        def heads(t: Tensor) -> Tensor:
            return t.view(batch, steps, self.heads, self.head_dim).transpose(1, 2)

        q, k = self._rotate(heads(self.q_proj(x))), self._rotate(heads(self.k_proj(x)))
        mask = None if keys is None else keys[:, None, None, :]
        out = F.scaled_dot_product_attention(q, k, heads(self.v_proj(x)), attn_mask=mask)
        return self.o_proj(out.transpose(1, 2).reshape(batch, steps, -1))


class MLP(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden, bias=False)
        self.fc2 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.silu(self.fc1(x)))


class TransformerLayer(nn.Module):
    def __init__(self, arch: Xcodec2Arch) -> None:
        super().__init__()
        dim = arch.hidden_size
        self.input_layernorm = RMSNorm(dim, arch.rms_norm_eps)
        self.self_attn = SelfAttention(dim, arch.num_heads, arch.head_dim, arch.rope_theta)
        self.post_attention_layernorm = RMSNorm(dim, arch.rms_norm_eps)
        self.mlp = MLP(dim, arch.intermediate_size)

    def forward(self, x: Tensor, keys: Tensor | None) -> Tensor:
        x = x + self.self_attn(self.input_layernorm(x), keys)
        return x + self.mlp(self.post_attention_layernorm(x))


class ISTFTHead(nn.Module):
    """Magnitude and phase per frame -> waveform by inverse STFT with Vocos' "same"
    padding; with ``frames`` each item overlaps only its own frames (its window envelope
    too), as it would alone."""

    def __init__(self, dim: int, hop: int) -> None:
        super().__init__()
        self.n_fft, self.hop = 4 * hop, hop
        self.padding = (self.n_fft - hop) // 2
        self.linear = nn.Linear(dim, self.n_fft + 2)
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)

    def _overlap_add(self, frames: Tensor) -> Tensor:
        """[B, n_fft, F] -> [B, F * hop]."""
        size = (frames.shape[-1] - 1) * self.hop + self.n_fft
        out = F.fold(
            frames, output_size=(1, size), kernel_size=(1, self.n_fft), stride=(1, self.hop)
        )
        return out[:, 0, 0, self.padding : size - self.padding]

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        magnitude, phase = self.linear(x).float().chunk(2, dim=-1)  # [B, F, n_fft / 2 + 1]
        spectrum = torch.polar(magnitude.exp().clamp(max=1e2), phase)
        frames = torch.fft.irfft(spectrum, self.n_fft, dim=-1).transpose(1, 2)
        weights = self.window[None, :, None]
        if mask is not None:
            frames = frames * mask
        audio = self._overlap_add(frames * weights)
        square = weights.square()
        envelope_frames = square.expand(1, -1, x.shape[1]) if mask is None else square * mask
        envelope = self._overlap_add(envelope_frames.contiguous()).clamp(min=1e-11)
        audio = audio / envelope
        if mask is not None:  # past an item's end: 0 / 1e-11, not silence
            audio = audio * mask[:, 0].repeat_interleave(self.hop, dim=-1)
        return audio[:, None]


class Xcodec2Decoder(nn.Module):
    """Latent [B, semantic + hidden, F] -> waveform [B, 1, F * hop]."""

    def __init__(self, config: CodecConfig) -> None:
        super().__init__()
        arch = config.xcodec2
        assert arch is not None
        dim = arch.hidden_size
        self.fc = nn.Linear(config.latent_dim, dim)
        self.embed = nn.Conv1d(dim, dim, 7, padding=3)
        self.prior_net = nn.ModuleList([ResNetBlock(dim), ResNetBlock(dim)])
        self.layers = nn.ModuleList(TransformerLayer(arch) for _ in range(arch.num_layers))
        self.post_net = nn.ModuleList([ResNetBlock(dim), ResNetBlock(dim)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = ISTFTHead(dim, config.hop_length)

    def forward(self, latent: Tensor, frames: Tensor | None = None) -> Tensor:
        x = self.fc(latent.transpose(1, 2)).transpose(1, 2)
        mask = length_mask(frames, x.shape[-1])
        x = self.embed(_zero_past(x, frames))
        for block in self.prior_net:
            x = block(x, mask)
        keys = None if mask is None else mask[:, 0].bool()
        x = x.transpose(1, 2)
        for layer in self.layers:
            x = layer(x, keys)
        x = x.transpose(1, 2)
        for block in self.post_net:
            x = block(x, mask)
        return self.head(self.norm(x.transpose(1, 2)), mask)


class Xcodec2Codec(CodecModel):
    """X-Codec2 (this module): one FSQ codebook of 65,536 codes."""

    default_framing = (
        "the reference's framing (one zero appended, then zeros to a whole hop: "
        "T // hop + 1 frames)"
    )

    def __init__(self, config: CodecConfig) -> None:
        super().__init__(config)
        self.encoder = Xcodec2Encoder(config)
        self.quantizer = FSQ(config)
        self.decoder = Xcodec2Decoder(config)

    def num_frames(self, samples: int) -> int:
        """The reference's framing (the codes Llasa was trained on): it appends one zero
        sample before padding to a whole hop, so ``k * hop`` samples give ``k + 1`` frames."""
        return samples // self.hop_length + 1

    def _frame(self, wav: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """Each item padded with zeros to ``num_frames(length)`` whole hops (the base pads
        the batch to its longest item's frames and zeroes past each length)."""
        framed, frames = super()._frame(wav, lengths)
        if self.config.compat:  # unpadded input: pad it here, each item runs alone
            samples = self.num_frames(framed.shape[-1]) * self.hop_length
            return torch.nn.functional.pad(framed, (0, samples - framed.shape[-1])), None
        if lengths is None:
            return framed, None
        return framed, lengths.to(framed.device) // self.hop_length + 1


CODEC = Xcodec2Codec
