"""Length-aware building blocks: frame masks, weight-normed convs, masked GroupNorm.

Batched encoding must give the same codes as encoding each clip alone. A clip encoded alone
sees zeros past its end (its own padding); in a batch, the frames past its end hold the
network's response to padding (conv biases, GroupNorm statistics). So every block zeroes the
positions past each item's valid length after it runs, and GroupNorm takes its statistics
over valid positions only. With ``mask=None`` every block behaves exactly like its plain
PyTorch counterpart.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrizations, parametrize

Mask = Tensor | None  # [B, 1, T] float, 1 on valid positions


@contextlib.contextmanager
def streaming_state(module: nn.Module, kinds: tuple[type[nn.Module], ...]) -> Iterator[None]:
    """Give every submodule of ``kinds`` an empty ``state`` dict for the length of the
    context (each keeps what the next chunk of the same input needs), then drop it, so a
    streamed item never leaks into the next call."""
    stateful = [m for m in module.modules() if isinstance(m, kinds)]
    for child in stateful:
        child.state = {}
    try:
        yield
    finally:
        for child in stateful:
            child.state = None


def stream_padded(
    state: dict[str, Tensor] | None, x: Tensor, left: int, right: int,
    pad: Callable[[Tensor, int, int], Tensor],
) -> Tensor:  # fmt: skip
    """``pad(x, left, right)`` for a causal conv. While streaming (``state`` set, see
    ``streaming_state``) a later chunk's left padding is the previous chunk's last
    ``left`` inputs, and this chunk's are kept for the next: a copy, since a view would
    keep the layer's whole padded input alive."""
    tail = None if state is None else state.get("tail")
    padded = pad(x, left, right) if tail is None else pad(torch.cat([tail, x], -1), 0, right)
    if state is not None:
        end = padded.shape[-1] - right
        state["tail"] = padded[..., end - left : end].clone()
    return padded


def length_mask(valid: Tensor | None, length: int) -> Mask:
    """``[B, 1, length]`` mask with ones before each item's ``valid`` length."""
    if valid is None:
        return None
    positions = torch.arange(length, device=valid.device)
    return (positions[None, :] < valid[:, None]).unsqueeze(1).float()


def apply_mask(x: Tensor, mask: Mask) -> Tensor:
    return x if mask is None else x * mask


def weight_norm(module: nn.Module) -> nn.Module:
    return parametrizations.weight_norm(module)


def remove_weight_norm(model: nn.Module) -> None:
    """Fold every weight-norm parametrisation into a plain weight (for inference/export)."""
    for module in model.modules():
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)


def inference_parameter_count(model: nn.Module) -> int:
    """Parameters with weight norm folded (the magnitude ``g`` is not counted), i.e. what
    the original code reports after ``remove_weight_norm``."""
    return sum(
        p.numel()
        for name, p in model.named_parameters()
        if not name.endswith("parametrizations.weight.original0")
    )


class MaskedGroupNorm(nn.GroupNorm):
    """GroupNorm whose mean and variance cover only the valid time steps of each item.

    The original HiFi-Codec normalises over the whole padded time axis, so a padded clip's
    codes depend on how much padding it got (9–32% of codes changed, measured); this is the
    fix that makes batched tokenizing exact.
    """

    def forward(self, x: Tensor, mask: Mask = None) -> Tensor:  # type: ignore[override]
        if mask is None:
            if x.shape[-1] * x.shape[1] > self.num_groups:
                return super().forward(x)
            # One value a group (a one-frame item under a per-channel norm): torch's group_norm
            # refuses it for a batch of one; normalised, one value is 0: the output is the shift.
            mask = torch.ones_like(x[:, :1])
        batch, channels, steps = x.shape
        grouped = x.reshape(batch, self.num_groups, -1, steps)
        weights = mask.unsqueeze(1)  # [B, 1, 1, T]
        count = weights.sum(dim=(2, 3), keepdim=True) * grouped.shape[2]
        mean = (grouped * weights).sum(dim=(2, 3), keepdim=True) / count.clamp(min=1)
        var = (((grouped - mean) * weights) ** 2).sum(dim=(2, 3), keepdim=True) / count.clamp(min=1)
        normed = ((grouped - mean) / torch.sqrt(var + self.eps)).reshape(batch, channels, steps)
        if self.affine:
            normed = normed * self.weight[None, :, None] + self.bias[None, :, None]
        return normed * mask


def conv_padding(kernel_size: int, dilation: int = 1) -> int:
    return (kernel_size * dilation - dilation) // 2
