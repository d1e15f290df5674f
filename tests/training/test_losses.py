"""Losses: adversarial directions, feature matching, and the optional loss balancer."""

import pytest
import torch

from academicodec.training.losses import (
    LossBalancer,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
)


def test_adversarial_losses_point_the_right_way() -> None:
    real = [torch.full((2, 5), 1.0)]
    for kind, fake_target in (("lsgan", 0.0), ("hinge", -1.0)):
        fake = [torch.full((2, 5), fake_target)]
        assert discriminator_loss(real, fake, kind) == 0  # a perfect discriminator
        assert discriminator_loss(fake, real, kind) > 0
        assert generator_adversarial_loss(fake, kind) > generator_adversarial_loss(real, kind)
    maps = [[torch.ones(2, 3), torch.zeros(2, 3)]]
    assert feature_matching_loss(maps, maps) == 0
    # HiFi-GAN sums the per-layer mean distances: |1 - 0| + |0 - 0|
    assert feature_matching_loss(maps, [[torch.zeros(2, 3), torch.zeros(2, 3)]]) == 1.0


def test_balancer_splits_the_gradient_by_weight_not_by_loss_scale() -> None:
    output = torch.randn(4, 1, 100, requires_grad=True)
    target = torch.randn(4, 1, 100)
    losses = {
        "big": 1000.0 * (output - target).pow(2).mean(),  # huge scale
        "small": 0.001 * (output - target).abs().mean(),  # tiny scale
    }
    grads = {}
    for name, loss in losses.items():
        (grads[name],) = torch.autograd.grad(loss, [output], retain_graph=True)
    balancer = LossBalancer({"big": 1.0, "small": 3.0})
    combined = balancer.gradient(losses, output)
    # The result is 1/4 of a unit-norm "big" gradient plus 3/4 of a unit-norm "small" one.
    expected = (
        0.25 * grads["big"] / grads["big"].norm() + 0.75 * grads["small"] / grads["small"].norm()
    )
    torch.testing.assert_close(combined, expected, rtol=1e-4, atol=1e-7)
    assert balancer.shares == pytest.approx({"big": 0.25, "small": 0.75}, rel=1e-5)
    assert output.grad is None  # the caller backpropagates it, with the other terms


def test_balancer_state_round_trips() -> None:
    output = torch.randn(2, 1, 50, requires_grad=True)
    balancer = LossBalancer({"a": 1.0, "b": 1.0})
    for scale in (1.0, 2.0):
        balancer.gradient({"a": scale * output.pow(2).sum(), "b": output.abs().sum()}, output)
    copy = LossBalancer({"a": 1.0, "b": 1.0})
    copy.load_state_dict(balancer.state_dict())
    losses = {"a": 3 * output.pow(2).sum(), "b": output.abs().sum()}
    torch.testing.assert_close(copy.gradient(losses, output), balancer.gradient(losses, output))
