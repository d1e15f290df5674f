"""Quantizers and their upkeep: straight-through gradients, a pure forward, EMA updates,
dead-code restarts, k-means init, factorised GRVQ codes, code order and statistics."""

import pytest
import torch

from academicodec.models import build_codec
from academicodec.models.config import CodebookConfig
from academicodec.models.quantizers import (
    GroupResidualVQ,
    ResidualVQ,
    codebook_stats,
    kmeans,
)
from academicodec.training.upkeep import MIN_FOLLOW_FRAMES, CodebookUpkeep


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


def _step(quantizer, upkeep: CodebookUpkeep, rows: torch.Tensor) -> None:
    """What the trainer does per step: a training forward, then the upkeep."""
    result = quantizer.train()(rows.t()[None])
    upkeep.update(result.inputs, result.assignments)


def test_kmeans_is_a_fixed_point_on_data() -> None:
    """Every mean is the mean of the data points nearest to it, or (no members) a data point."""
    data, _ = _clustered_data()
    means, bins = kmeans(data, 8, 20, torch.Generator().manual_seed(0))
    nearest = torch.cdist(data, means).argmin(dim=1)
    for k in range(8):
        members = data[nearest == k]
        if len(members):
            torch.testing.assert_close(means[k], members.mean(0), atol=1e-4, rtol=0)
        else:
            assert torch.cdist(means[k : k + 1], data).min() < 1e-6
    assert int(bins.sum()) == len(data)


@pytest.mark.parametrize("kind", ["rvq", "grvq", "grvq_factorised"])
def test_upkeep_initialises_every_codebook_on_the_data(kind: str) -> None:
    """After init each codebook fits its own inputs (later stages the residual that the
    fitted stages before them leave): its quantization error is well below the one of the
    initial codebook on the same inputs, and the batch uses many codes."""
    torch.manual_seed(0)
    quantizer = _quantizer(kind)
    latent = torch.randn(4, 8, 50)
    upkeep = CodebookUpkeep(quantizer, CodebookConfig(kmeans_iters=10))
    before = [t.detach().clone() for t in quantizer.tables()]
    upkeep.initialise(latent, None)
    assert upkeep.initialised
    result = quantizer.train()(latent)

    def error(table: torch.Tensor, inputs: torch.Tensor) -> float:
        return float(torch.cdist(inputs, table.detach()).min(dim=1).values.pow(2).mean())

    for k, (table, inputs) in enumerate(zip(quantizer.tables(), result.inputs, strict=True)):
        assert error(table, inputs) < 0.6 * error(before[k], inputs), k
    assert (result.perplexity > 20).all(), result.perplexity


def _quantizer(kind: str):
    if kind == "rvq":
        return ResidualVQ(dim=8, size=64, num_quantizers=2)
    return GroupResidualVQ(dim=8, size=64, groups=2, stages=2, code_dim=3 if "fact" in kind else 0)


def test_forward_is_pure() -> None:
    """A training forward changes no codebook and needs no process group."""
    for kind in ("rvq", "grvq"):
        quantizer = _quantizer(kind).train()
        before = {k: v.clone() for k, v in quantizer.state_dict().items()}
        quantizer(torch.randn(2, 8, 30))
        for key, value in quantizer.state_dict().items():
            assert torch.equal(value, before[key]), key


def test_ema_moves_codebooks_toward_the_data() -> None:
    torch.manual_seed(0)
    rvq = ResidualVQ(dim=4, size=8, num_quantizers=1)
    upkeep = CodebookUpkeep(rvq, CodebookConfig(dead_code_ratio=0.0))
    data, _ = _clustered_data()
    upkeep.initialise(data.t()[None], None)
    shifted = data + 1.0
    codebook = rvq.vq.layers[0]._codebook
    used = codebook.quantize(shifted).unique()

    def distance() -> torch.Tensor:
        return torch.cdist(codebook.embed[used], shifted).min(dim=1).values.mean()

    before = distance()
    for _ in range(200):  # decay 0.99: 87% of the way after 200 steps
        _step(rvq, upkeep, shifted)
    assert distance() < 0.5 * before


@pytest.mark.parametrize("kind", ["rvq", "grvq"])
def test_dead_code_is_restarted_on_data_and_stays_in_use(kind: str) -> None:
    torch.manual_seed(0)
    quantizer = _quantizer(kind)
    upkeep = CodebookUpkeep(quantizer, CodebookConfig(kmeans_iters=10, dead_code_ratio=0.3))
    data = torch.randn(400, 8)
    upkeep.initialise(data.t()[None], None)
    table = quantizer.tables()[0]
    with torch.no_grad():
        table[3] = 1000.0  # a code nothing maps to
    if kind == "rvq":
        codebook = quantizer.vq.layers[0]._codebook
        codebook.set_codewords([3], table[3:4].clone(), 1.0)
    restarted = False
    for _ in range(40):
        _step(quantizer, upkeep, data)
        restarted = restarted or bool(upkeep.restarts[0] > 0)
        if float(table[3].detach().abs().max()) < 20:
            break
    assert restarted
    assert float(table[3].detach().abs().max()) < 20  # moved among the data
    for _ in range(3):  # the EMA step keeps it there (encodec's order reverted it)
        _step(quantizer, upkeep, data)
    assert float(table[3].detach().abs().max()) < 20


@pytest.mark.parametrize("kind", ["rvq", "grvq"])
def test_a_code_unused_right_after_the_fit_is_restarted_at_the_first_step(kind: str) -> None:
    """Dead codes are found from the first step after the k-means fit (usage starts at
    zero), not once a usage average started at the mean has decayed (~15 steps)."""
    torch.manual_seed(0)
    quantizer = _quantizer(kind)
    upkeep = CodebookUpkeep(quantizer, CodebookConfig(kmeans_iters=10))
    upkeep.initialise(torch.randn(1, 8, 400), None)
    _step(quantizer, upkeep, torch.randn(400, 8) * 0.05 + 3.0)  # the latent moved away
    assert (upkeep.restarts > 0).all(), upkeep.restarts


@pytest.mark.parametrize("kind", ["rvq", "grvq", "grvq_factorised"])
def test_codebooks_follow_the_encoders_update(kind: str) -> None:
    """``follow`` fits, per dimension, the affine map that took the probe's latent from
    ``before`` to ``after``, and applies it to the first stage's codewords and its scale to
    the later stages' (they code residuals): a latent that moved by a uniform scale and any
    shift gets the same codes as before. Cosine codes (factorised) are left alone; EMA
    statistics move with the codewords."""
    torch.manual_seed(0)
    quantizer = _quantizer(kind)
    upkeep = CodebookUpkeep(quantizer, CodebookConfig(kmeans_iters=10))
    latent = torch.randn(2, 8, 100)
    upkeep.initialise(latent, None)
    codes = quantizer.eval().encode(latent)
    rows = latent[0].t()
    scale, shift = torch.linspace(0.7, 1.6, 8), torch.linspace(-3.0, 2.0, 8)
    tables = [t.detach().clone() for t in quantizer.tables()]
    upkeep.follow(rows, rows * scale + shift)
    width = 8 // (1 if kind == "rvq" else 2)
    for k, (table, old) in enumerate(zip(quantizer.tables(), tables, strict=True)):
        if kind == "grvq_factorised":
            assert torch.equal(table, old)
            continue
        part = slice(0, 8) if kind == "rvq" else slice(k % 2 * width, (k % 2 + 1) * width)
        first_stage = k == 0 if kind == "rvq" else k < 2
        expected = old * scale[part] + (shift[part] if first_stage else 0.0)
        torch.testing.assert_close(table.detach(), expected, atol=1e-4, rtol=1e-4)
    if kind == "grvq_factorised":
        return
    torch.manual_seed(0)
    uniform = _quantizer(kind)
    fitted = CodebookUpkeep(uniform, CodebookConfig(kmeans_iters=10))
    fitted.initialise(latent, None)
    fitted.follow(rows, rows * 1.3 - 0.5)
    assert torch.equal(uniform.eval().encode(latent * 1.3 - 0.5), codes)
    assert not torch.equal(uniform.eval().encode(latent * 1.3 + 4.5), codes)  # it can fail
    if kind == "rvq":
        for codebook in quantizer.codebooks():
            sizes = codebook._smoothed_sizes()[:, None]
            torch.testing.assert_close(codebook.embed_avg / sizes, codebook.embed)
    # a handful of frames (one short item): the mean shift alone, no slope fitted on noise
    tables = [t.detach().clone() for t in uniform.tables()]
    few = rows[: MIN_FOLLOW_FRAMES - 1]
    fitted.follow(few, few * 3.0 + 1.0)
    shift = (few * 3.0 + 1.0).mean(0) - few.mean(0)
    width = 8 // (1 if kind == "rvq" else 2)
    for k, (table, old) in enumerate(zip(uniform.tables(), tables, strict=True)):
        part = slice(0, 8) if kind == "rvq" else slice(k % 2 * width, (k % 2 + 1) * width)
        first_stage = k == 0 if kind == "rvq" else k < 2
        expected = old + (shift[part] if first_stage else 0.0)
        torch.testing.assert_close(table.detach(), expected, atol=1e-4, rtol=1e-4)


def test_upkeep_state_round_trips() -> None:
    quantizer = _quantizer("grvq")
    upkeep = CodebookUpkeep(quantizer, CodebookConfig(), seed=3)
    upkeep.initialise(torch.randn(2, 8, 40), None)
    _step(quantizer, upkeep, torch.randn(80, 8))
    copy = CodebookUpkeep(quantizer, CodebookConfig(), seed=99)
    copy.load_state_dict(upkeep.state_dict())
    assert copy.initialised and torch.equal(copy.usage, upkeep.usage)
    assert torch.equal(copy.generator.get_state(), upkeep.generator.get_state())


def test_factorised_grvq_gradients_and_decode() -> None:
    """DAC-style codes: straight-through gradients reach the input and the projections,
    and decode(codes) rebuilds the quantized latent."""
    torch.manual_seed(0)
    quantizer = GroupResidualVQ(dim=8, size=16, groups=2, stages=2, code_dim=3)
    latent = torch.randn(2, 8, 5, requires_grad=True)
    result = quantizer(latent)
    (result.quantized.sum() + result.loss).backward()
    assert latent.grad is not None and float(latent.grad.abs().sum()) > 0
    projection = quantizer.stage(0)[0].in_proj
    assert any(
        p.grad is not None and float(p.grad.abs().sum()) > 0 for p in projection.parameters()
    )
    torch.testing.assert_close(quantizer.decode(result.codes), result.quantized.detach())


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
