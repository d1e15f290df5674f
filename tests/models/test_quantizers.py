"""Quantizers: straight-through gradients, EMA updates, dead-code restart, k-means init,
GRVQ code order and codebook statistics."""

import pytest
import torch

from academicodec.models import build_codec
from academicodec.models.quantizers import (
    EuclideanCodebook,
    GroupResidualVQ,
    ResidualVQ,
    codebook_stats,
)


@pytest.mark.parametrize("name", ["tiny_hificodec_16k", "tiny_encodec_16k"])
def test_gradients_reach_the_encoder_through_the_quantizer(name: str) -> None:
    """Only a reconstruction loss (no quantizer loss): the encoder must still get gradient,
    which can only come through the straight-through estimator."""
    torch.manual_seed(0)
    model = build_codec(name).train()
    wav = 0.1 * torch.randn(2, 1, 3200)
    out = model(wav)
    (out.audio - wav).abs().mean().backward()
    grads = [p.grad for p in model.encoder.parameters()]
    assert all(g is not None for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


def test_straight_through_is_identity_for_gradients() -> None:
    quantizer = GroupResidualVQ(dim=8, size=16, groups=2, stages=2)
    latent = torch.randn(2, 8, 5, requires_grad=True)
    result = quantizer(latent)
    result.quantized.sum().backward()
    torch.testing.assert_close(latent.grad, torch.ones_like(latent))


def test_grvq_code_order_is_stage_major() -> None:
    torch.manual_seed(0)
    quantizer = GroupResidualVQ(dim=8, size=16, groups=2, stages=2)
    latent = torch.randn(1, 8, 3)
    codes = quantizer(latent).codes
    first = quantizer.stage(0)
    group0 = latent[0, :4].t()  # [F, 4]
    group1 = latent[0, 4:].t()
    assert torch.equal(codes[0, 0], first[0](group0)[1])
    assert torch.equal(codes[0, 1], first[1](group1)[1])
    residual0 = group0 - first[0].embedding.weight[codes[0, 0]]
    assert torch.equal(codes[0, 2], quantizer.stage(1)[0](residual0)[1])
    torch.testing.assert_close(quantizer.decode(codes), quantizer(latent).quantized)


def _clustered_data(n: int = 400, dim: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    centres = 5 * torch.randn(6, dim, generator=generator)
    data = centres[torch.randint(0, 6, (n,), generator=generator)]
    return data + 0.01 * torch.randn(n, dim, generator=generator), centres


def test_kmeans_init_uses_data_points() -> None:
    """After init every codeword is the mean of the data points nearest to it (a k-means
    fixed point), or, for a cluster that got none, one of the data points."""
    torch.manual_seed(0)
    data, _ = _clustered_data()
    codebook = EuclideanCodebook(dim=4, size=8, kmeans_iters=20)
    codebook.initialise(data)
    assert codebook.inited.item() == 1
    nearest = codebook.quantize(data)
    for k in range(8):
        members = data[nearest == k]
        if len(members):
            torch.testing.assert_close(codebook.embed[k], members.mean(0), atol=1e-4, rtol=0)
        else:
            assert torch.cdist(codebook.embed[k : k + 1], data).min() < 1e-6
    assert int(codebook.cluster_size.sum()) == len(data)


def test_ema_moves_codebooks_toward_the_data() -> None:
    torch.manual_seed(0)
    rvq = ResidualVQ(dim=4, size=8, num_quantizers=1, kmeans_iters=10, dead_code_threshold=0)
    data, _ = _clustered_data()
    rvq.train()
    rvq(data.t()[None])  # k-means init on these points
    shifted = data + 1.0
    codebook = rvq.vq.layers[0]._codebook
    used = codebook.quantize(shifted).unique()

    def distance() -> torch.Tensor:
        return torch.cdist(codebook.embed[used], shifted).min(dim=1).values.mean()

    before = distance()
    for _ in range(200):  # decay 0.99: 87% of the way after 200 steps
        rvq(shifted.t()[None])
    assert distance() < 0.5 * before


def test_dead_code_is_restarted_on_data() -> None:
    torch.manual_seed(0)
    data, _ = _clustered_data()
    codebook = EuclideanCodebook(dim=4, size=8, kmeans_iters=10, dead_code_threshold=2.0)
    codebook.initialise(data)
    codebook.embed[3] = 1000.0  # a code nothing maps to, with its usage decayed away
    codebook.embed_avg[3] = 0.0
    codebook.cluster_size[3] = 0.0
    codebook.restart_dead_codes(data)
    assert torch.cdist(codebook.embed[3:4], data).min() < 1e-6  # now on a data point
    for _ in range(3):  # what ResidualVQ does per training step
        codebook.update(data, codebook.quantize(data))
        codebook.restart_dead_codes(data)
    # The EMA steps keep it among the data (encodec's order reverted it to ~1000) and in use.
    assert codebook.embed[3].abs().max() < 20
    assert codebook.cluster_size[3] > 2.0


def test_codebook_stats() -> None:
    codes = torch.tensor([[[0, 1, 2, 3], [5, 5, 5, 5]]])  # [B=1, K=2, F=4]
    perplexity, usage = codebook_stats(codes, None, 8)
    torch.testing.assert_close(perplexity, torch.tensor([4.0, 1.0]))
    torch.testing.assert_close(usage, torch.tensor([4 / 8, 1 / 8]))
    mask = torch.tensor([[[1.0, 1.0, 0.0, 0.0]]])
    perplexity, usage = codebook_stats(codes, mask, 8)
    torch.testing.assert_close(perplexity, torch.tensor([2.0, 1.0]))


def test_forward_reports_codebook_statistics() -> None:
    model = build_codec("tiny_hificodec_16k")
    out = model(0.1 * torch.randn(2, 1, 3200))
    assert out.perplexity.shape == (4,) and out.usage.shape == (4,)
    assert ((out.usage > 0) & (out.usage <= 1)).all()
