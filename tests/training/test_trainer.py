"""The trainer: checkpoints, TensorBoard tags, export, exact resume, DDP on uneven shards."""

import math
import os
import socket
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from academicodec.errors import UserError
from academicodec.models import load_codec, load_codec_config
from academicodec.pipelines import ShardSettings, write_shards
from academicodec.training import RunOptions, export_run, train
from academicodec.training.checkpoint import load_state_file
from academicodec.training.losses import MultiResolutionMelLoss
from tests.helpers import first_difference, run_cli

TINY = {"train.batch_size": 4, "train.segment_length": 4800}


def _options(out: Path, shards: Path, **changes) -> RunOptions:
    values = dict(out=out, data=shards, max_steps=30, ckpt_every=10, val_every=15,
                  workers=0, val_items=2, device="cpu")  # fmt: skip
    values.update(changes)
    return RunOptions(**values)


def _tags(run: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    return set(events.Tags()["scalars"]) | set(events.Tags()["audio"])


def test_thirty_steps_checkpoints_tensorboard_export(shards: Path, tmp_path: Path) -> None:
    state = train("tiny_hificodec_16k", _options(tmp_path / "run", shards), TINY)
    assert state.step == 30
    names = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert names == ["last.pt", "step_00000010.pt", "step_00000020.pt", "step_00000030.pt"]
    tags = _tags(tmp_path / "run")
    for tag in ("train/mel", "train/generator", "train/discriminator", "train/quantizer",
                "codebook/perplexity_0", "codebook/usage_3", "lr/generator", "val/mel_l1",
                "val/si_sdr", "perf/steps_per_s", "perf/data_wait_fraction"):  # fmt: skip
        assert tag in tags, tag
    assert any(t.startswith("val/") and t.endswith("/reconstruction") for t in tags)
    assert (tmp_path / "run" / "train.log").read_text().count("validation step") == 2

    export_run(tmp_path / "run", tmp_path / "export")
    model = load_codec(tmp_path / "export")
    with torch.no_grad():
        codes = model.encode(torch.randn(1, 1, 3200) * 0.1)
        assert model.decode(codes).shape == (1, 1, 3200)


def test_resume_is_exact(shards: Path, tmp_path: Path) -> None:
    """2N steps in one go == N steps, stop, N more steps (same RUN)."""
    whole = train("tiny_hificodec_16k", _options(tmp_path / "a", shards, max_steps=8), TINY)
    train("tiny_hificodec_16k", _options(tmp_path / "b", shards, max_steps=4), TINY)
    resumed = train("tiny_hificodec_16k", _options(tmp_path / "b", shards, max_steps=8), TINY)
    assert (resumed.step, resumed.epoch, resumed.batches_in_epoch) == (
        whole.step,
        whole.epoch,
        whole.batches_in_epoch,
    )
    assert resumed.scheduler_g == whole.scheduler_g
    for key, value in whole.generator.items():
        torch.testing.assert_close(resumed.generator[key], value, atol=1e-5, rtol=0, msg=key)


def _rank(
    rank: int, port: int, shards: str, out: str, result: str, steps: int, overrides: dict
) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2",
        LOCAL_RANK=str(rank),
    )  # fmt: skip
    options = _options(Path(out), Path(shards), max_steps=steps, ckpt_every=3, val_every=0)
    state = train("tiny_encodec_16k", options, overrides)
    torch.save(state.generator, f"{result}.{rank}")


def _train_two_ranks(shards: Path, run: Path, steps: int, overrides: dict) -> None:
    """tiny_encodec_16k on 2 gloo ranks; every generator tensor (weights and codebooks)
    must end identical on both."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    weights = run.parent / "weights"
    args = (port, str(shards), str(run), str(weights), steps, overrides)
    mp.start_processes(_rank, args=args, nprocs=2, start_method="spawn")  # a hang fails here
    first, second = torch.load(f"{weights}.0"), torch.load(f"{weights}.1")
    for key in first:
        torch.testing.assert_close(first[key], second[key], rtol=0, atol=0, msg=key)


def test_two_gloo_ranks_on_uneven_shards(shards: Path, tmp_path: Path) -> None:
    _train_two_ranks(shards, tmp_path / "run", 6, TINY)
    assert load_state_file(tmp_path / "run" / "checkpoints" / "last.pt").step == 6


class Payload:  # a pickled object that weights-only loading must refuse
    pass


def test_checkpoints_with_pickled_objects_are_refused(tmp_path: Path) -> None:
    torch.save({"step": 1, "payload": Payload()}, tmp_path / "last.pt")
    with pytest.raises(UserError, match="cannot be loaded weights-only"):
        load_state_file(tmp_path / "last.pt")


def test_cli_train_and_export(shards: Path, tmp_path: Path) -> None:
    run = str(tmp_path / "run")
    result = run_cli(
        "train", "--preset", "tiny_hificodec_16k", "--data", str(shards), "--out", run,
        "--max-steps", "3", "--workers", "0", "--set", "train.batch_size=2",
        "--set", "train.segment_length=3200", "--val-every", "0",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "step 3" in result.stdout
    assert run_cli("export", run, str(tmp_path / "export")).returncode == 0
    missing = run_cli("train", "--preset", "tiny_hificodec_16k", "--data", str(shards),
                      "--out", str(tmp_path / "new"), "--resume")  # fmt: skip
    assert missing.returncode == 2 and "--resume" in missing.stderr


_REAL_MEL_FORWARD = MultiResolutionMelLoss.forward


def _nan_mel_at(monkeypatch, calls: set[int] | None = None, after: int | None = None) -> None:
    """The mel loss turns NaN at the given calls (one call per training step here)."""
    from academicodec.training import losses

    real = _REAL_MEL_FORWARD
    count = [0]

    def forward(self, reconstruction, target):  # type: ignore[no-untyped-def]
        value = real(self, reconstruction, target)
        count[0] += 1
        bad = (calls is not None and count[0] in calls) or (after is not None and count[0] > after)
        return value * float("nan") if bad else value

    monkeypatch.setattr(losses.MultiResolutionMelLoss, "forward", forward)


def _state(trainer) -> dict:  # type: ignore[no-untyped-def]
    """Weights, codebook buffers and both optimizers' states, copied (the discriminators'
    parameters: spectral norm's power-iteration vectors move in every forward)."""
    import copy

    return copy.deepcopy(
        {
            "generator": trainer.model.state_dict(),
            "discriminator": dict(trainer.discriminators.named_parameters()),
            "optimizer_g": trainer.opt_g.state_dict(),
            "optimizer_d": trainer.opt_d.state_dict(),
            "upkeep": trainer.upkeep.state_dict()["usage"],
        }
    )


def _same(a: object, b: object) -> bool:
    return first_difference(a, b) is None


@pytest.mark.parametrize("preset", ["tiny_hificodec_16k", "tiny_encodec_16k"])
def test_a_nan_step_changes_nothing_and_is_reported(
    shards: Path, tmp_path: Path, monkeypatch, preset: str
) -> None:
    """A NaN in step 3's generator loss: the generator's weights, its codebooks (GRVQ
    tables, EMA buffers, usage) and its optimizer state after step 3 are those after step
    2, and step 4 trains again. The discriminator's own step had a finite loss and is
    applied; a NaN in the discriminator's loss leaves the discriminator as it was."""
    from academicodec.training import Trainer
    from academicodec.training import trainer as trainer_module

    _nan_mel_at(monkeypatch, calls={3})
    real_d_loss = trainer_module.discriminator_loss
    d_calls = [0]

    def d_loss(*args):  # type: ignore[no-untyped-def]
        d_calls[0] += 1
        return real_d_loss(*args) * (float("nan") if d_calls[0] == 1 else 1.0)

    monkeypatch.setattr(trainer_module, "discriminator_loss", d_loss)
    config = load_codec_config(preset, {**TINY, "train.disc_start_step": 1})
    trainer = Trainer(config, _options(tmp_path / "run", shards), torch.device("cpu"))
    batches = [batch for batch, _ in trainer._batches()]
    states, metrics = [_state(trainer)], []
    for batch in batches[:3] + batches[:1]:
        metrics.append(trainer.train_step(batch))
        states.append(_state(trainer))
    generator = ("generator", "optimizer_g", "upkeep")
    discriminator = ("discriminator", "optimizer_d")
    # step 2: NaN discriminator loss
    assert math.isnan(metrics[1]["train"]["discriminator"])
    assert all(_same(states[2][k], states[1][k]) for k in discriminator)
    assert not _same(states[2]["generator"], states[1]["generator"])
    # step 3: NaN mel loss
    assert math.isnan(metrics[2]["train"]["mel"])
    for part in generator:
        assert _same(states[3][part], states[2][part]), f"the NaN step changed the {part}"
    assert not _same(states[3]["discriminator"], states[2]["discriminator"])
    # step 4 trains both again
    for part in generator + discriminator:
        assert not _same(states[4][part], states[3][part]), f"{part} did not train after it"
    assert trainer.bad_steps.total == 2 and trainer.bad_steps.consecutive == 0


def test_repeated_nan_steps_stop_with_one_line(shards: Path, tmp_path: Path, monkeypatch) -> None:
    """train.max_bad_steps non-finite steps in a row: one line naming the steps, the
    checkpoint of the last good weights, and what to try; --allow-nan keeps going."""
    from academicodec.training import TrainingStopped

    _nan_mel_at(monkeypatch, after=2)
    overrides = {**TINY, "train.max_bad_steps": 3}
    options = _options(tmp_path / "run", shards, max_steps=10, val_every=0, ckpt_every=100)
    with pytest.raises(TrainingStopped) as stopped:
        train("tiny_hificodec_16k", options, overrides)
    message = str(stopped.value)
    assert "\n" not in message
    assert message.startswith("steps 3-5: 3 steps in a row had non-finite losses or gradients")
    assert "weights of step 2" in message and "train.grad_clip" in message
    saved = load_state_file(tmp_path / "run" / "checkpoints" / "last.pt")
    assert saved.step == 5 and saved.bad_steps == {"total": 3, "consecutive": 3}
    # each skipped step was reported: a warning line in train.log and train/bad_steps
    log = (tmp_path / "run" / "train.log").read_text()
    assert "step 3: non-finite loss or gradients (" in log and "update skipped" in log
    assert "(3 in a row, 3 in this run)" in log and "train/bad_steps" in _tags(tmp_path / "run")
    _nan_mel_at(monkeypatch, after=2)
    kept = train("tiny_hificodec_16k", replace(options, out=tmp_path / "kept", allow_nan=True,
                                               max_steps=7), overrides)  # fmt: skip
    assert kept.step == 7 and kept.bad_steps == {"total": 5, "consecutive": 5}


def test_warmup_ramps_the_learning_rate_and_clipping_bounds_the_update(
    shards: Path, tmp_path: Path
) -> None:
    """train.warmup_steps: the first updates use 1/N, 2/N ... of the scheduled rate (the
    stored schedule untouched); train.grad_clip: the applied gradient norm is the limit."""
    from academicodec.training import Trainer

    config = load_codec_config("tiny_hificodec_16k", {**TINY, "train.warmup_steps": 4})
    trainer = Trainer(config, _options(tmp_path / "run", shards), torch.device("cpu"))
    seen = []
    real_step = trainer.opt_g.step

    def step(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(trainer.opt_g.param_groups[0]["lr"])
        grads = [p.grad for p in trainer.model.parameters() if p.grad is not None]
        seen_norms.append(float(torch.nn.utils.get_total_norm(grads)))
        return real_step(*args, **kwargs)

    seen_norms: list[float] = []
    trainer.opt_g.step = step  # type: ignore[method-assign]
    batches = [batch for batch, _ in trainer._batches()]
    for batch in (batches * 2)[:5]:
        trainer.train_step(batch)
    lr = config.train.lr
    assert seen == pytest.approx([lr / 4, lr / 2, 3 * lr / 4, lr, lr], rel=1e-6)
    assert trainer.opt_g.param_groups[0]["lr"] == pytest.approx(lr)
    clipped = load_codec_config("tiny_hificodec_16k", {**TINY, "train.grad_clip": 1e-3})
    trainer = Trainer(clipped, _options(tmp_path / "clip", shards), torch.device("cpu"))
    seen_norms.clear()
    real_step = trainer.opt_g.step
    trainer.opt_g.step = step  # type: ignore[method-assign]
    trainer.train_step(batches[0])
    assert seen_norms == pytest.approx([1e-3], rel=1e-4)
    with pytest.raises(UserError, match="train.warmup_steps must be >= 0"):
        load_codec_config("tiny_hificodec_16k", {"train.warmup_steps": -1})
    with pytest.raises(UserError, match="train.grad_clip must be > 0"):
        load_codec_config("tiny_hificodec_16k", {"train.grad_clip": 0})
    # both through train() end to end, recorded in the checkpoint's preset
    both = {**TINY, "train.warmup_steps": 4, "train.grad_clip": 1.0}
    state = train("tiny_hificodec_16k", _options(tmp_path / "run", shards, max_steps=2,
                                                  val_every=0, ckpt_every=0), both)  # fmt: skip
    assert state.step == 2 and state.bad_steps == {"total": 0, "consecutive": 0}
    assert (state.config["train"]["warmup_steps"], state.config["train"]["grad_clip"]) == (4, 1.0)


def test_corrupt_last_checkpoint_falls_back(
    shards: Path, tmp_path: Path, caplog, monkeypatch
) -> None:
    from academicodec.training import Trainer

    options = _options(tmp_path / "run", shards, max_steps=4, ckpt_every=2, val_every=0)
    train("tiny_hificodec_16k", options, TINY)
    checkpoints = tmp_path / "run" / "checkpoints"
    (checkpoints / "last.pt").write_bytes(b"truncated garbage")
    (checkpoints / "step_00000004.pt").unlink()
    steps = []
    real = Trainer.train_step
    monkeypatch.setattr(
        Trainer, "train_step", lambda self, batch: steps.append(1) or real(self, batch)
    )
    resumed = train("tiny_hificodec_16k", options, TINY)
    assert resumed.step == 4 and len(steps) == 2  # continued from step 2, not from scratch
    assert "unusable" in caplog.text


def test_resume_with_changed_settings_is_refused(shards: Path, tmp_path: Path) -> None:
    run = str(tmp_path / "run")
    common = ["train", "--preset", "tiny_hificodec_16k", "--data", str(shards), "--out", run,
              "--workers", "0", "--val-every", "0", "--set", "train.batch_size=4",
              "--set", "train.segment_length=4800"]  # fmt: skip
    assert run_cli(*common, "--max-steps", "2").returncode == 0
    refused = run_cli(*common, "--max-steps", "4", "--set", "train.lr=0.5", "--seed", "3")
    assert refused.returncode == 2
    message = refused.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert "train.lr: 0.0002 -> 0.5" in message and "--seed: '0' -> '3'" in message
    assert "--override" in message
    state = load_state_file(tmp_path / "run" / "checkpoints" / "last.pt")
    assert state.step == 2  # nothing ran
    # Another preset is a change too (its name and every differing key).
    other = run_cli(*[a if a != "tiny_hificodec_16k" else "tiny_encodec_16k" for a in common],
                    "--max-steps", "4")  # fmt: skip
    assert other.returncode == 2 and "name: 'tiny_hificodec_16k' -> 'tiny_encodec_16k'" in (
        other.stderr
    )


def test_resume_with_override_applies_and_logs_the_change(
    shards: Path, tmp_path: Path, caplog
) -> None:
    train("tiny_hificodec_16k", _options(tmp_path / "run", shards, max_steps=2), TINY)
    options = _options(tmp_path / "run", shards, max_steps=4, override=True)
    state = train("tiny_hificodec_16k", options, {**TINY, "train.lr": 5e-4})
    assert state.step == 4 and state.config["train"]["lr"] == 5e-4
    for optimizer in (state.optimizer_g, state.optimizer_d):  # the optimizers follow
        assert optimizer["param_groups"][0]["lr"] == pytest.approx(5e-4 * 0.98**state.epoch)
    assert "train.lr: 0.0002 -> 0.0005" in caplog.text
    # An unchanged re-run resumes silently, with the stored settings.
    caplog.clear()
    again = train("tiny_hificodec_16k", _options(tmp_path / "run", shards, max_steps=5),
                  {**TINY, "train.lr": 5e-4})  # fmt: skip
    assert again.step == 5 and "changed settings" not in caplog.text


def test_balancer_trains_with_balanced_gradient_shares(shards: Path, tmp_path: Path) -> None:
    """use_balancer through the real step: the quantizer term and the balanced terms go
    back in one backward, and each term's share of the output gradient is its weight's
    share (exactly at step 1, where the norm EMA holds one value)."""
    from academicodec.models import load_codec_config
    from academicodec.training import Trainer

    config = load_codec_config("tiny_hificodec_16k", {**TINY, "train.use_balancer": True})
    trainer = Trainer(config, _options(tmp_path / "run", shards), torch.device("cpu"))
    weights = {"mel": 45.0, "adversarial": 1.0, "feature_matching": 2.0}
    total = sum(weights.values())
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    for step, (batch, _) in zip(range(3), trainer._batches(), strict=False):
        metrics = trainer.train_step(batch)
        shares = metrics["balancer"]
        assert set(shares) == set(weights)
        for name, weight in weights.items():
            expected = weight / total
            if step == 0:
                assert shares[name] == pytest.approx(expected, rel=1e-4), (step, shares)
            else:  # EMA-smoothed norms: the shares stay near the weights
                assert 0.5 * expected < shares[name] < 2 * expected, (step, shares)
        assert all(torch.isfinite(torch.tensor(v)) for v in metrics["train"].values())
    changed = [k for k, v in trainer.model.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.startswith("encoder.") for k in changed)  # gradients reached the encoder
    assert any(k.startswith("quantizer.") for k in changed)  # and the codebooks


def test_balancer_with_two_gloo_ranks(shards: Path, tmp_path: Path) -> None:
    _train_two_ranks(shards, tmp_path / "run", 3, {**TINY, "train.use_balancer": True})
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    # Encodec weights: adversarial 3, feature matching 3, mel 45 (rank-averaged shares).
    first_step = {
        name: events.Scalars(f"balancer/share_{name}")[0].value
        for name in ("mel", "adversarial", "feature_matching")
    }
    assert first_step["mel"] == pytest.approx(45 / 51, rel=1e-4)
    assert first_step["adversarial"] == pytest.approx(3 / 51, rel=1e-4)


def test_quantizer_dropout_is_drawn_from_seed_and_step() -> None:
    from academicodec.models import build_codec

    model = build_codec("tiny_encodec_16k")
    draws = [model.training_n_q(0, step) for step in range(200)]
    assert draws == [model.training_n_q(0, step) for step in range(200)]  # no hidden state
    assert set(draws) == {2, 3, 4}  # 1.0, 1.5 and 2.0 kbps at 50 frames/s x 10 bits
    assert draws != [model.training_n_q(1, step) for step in range(200)]
    assert {build_codec("tiny_hificodec_16k").training_n_q(0, s) for s in range(20)} == {4}


@pytest.mark.parametrize(
    "changes",
    [
        {"hificodec.code_dim": 8},  # DAC-style factorised codes
        {"codebooks.init": "none", "codebooks.dead_code_ratio": 0.0},  # the original's
    ],
)
def test_quantizer_options_train_export_and_encode(
    shards: Path, tmp_path: Path, changes: dict
) -> None:
    """Every quantizer option a preset exposes runs through train(), export and inference."""
    options = _options(tmp_path / "run", shards, max_steps=3, ckpt_every=3, val_every=3)
    state = train("tiny_hificodec_16k", options, {**TINY, **changes})
    assert state.step == 3 and state.upkeep["initialised"]
    export_run(tmp_path / "run", tmp_path / "export")
    model = load_codec(tmp_path / "export")
    wav = torch.randn(2, 1, 4000) * 0.1
    with torch.no_grad():
        codes = model.encode(wav, torch.tensor([4000, 2500]))
        single = model.encode(wav[1:, :, :2500])
    assert torch.equal(codes[1, :, : single.shape[-1]], single[0])  # batch-exact
    assert model.decode(codes).shape == (2, 1, 4160)


def test_causal_encodec_option_trains_exports_and_encodes(shards: Path, tmp_path: Path) -> None:
    """``encodec.causal`` (Meta's EnCodec 24 kHz layout: weight norm only, no time-group
    norms, whose statistics span the whole clip) through train(), export, inference."""
    options = _options(tmp_path / "run", shards, max_steps=3, ckpt_every=3, val_every=3)
    meta_layout = {"encodec.causal": True, "encodec.pad_mode": "reflect",
                   "encodec.encoder_norm": "none"}  # fmt: skip
    state = train("tiny_encodec_16k", options, meta_layout)
    assert state.step == 3
    export_run(tmp_path / "run", tmp_path / "export")
    model = load_codec(tmp_path / "export")
    assert model.config.encodec is not None and model.config.encodec.causal
    wav = torch.randn(2, 1, 4000) * 0.1
    with torch.no_grad():
        codes = model.encode(wav, torch.tensor([4000, 2500]))
        single = model.encode(wav[1:, :, :2500])
        longer = model.encode(wav[1:, :, :4000])
    assert torch.equal(codes[1, :, : single.shape[-1]], single[0])  # batch-exact
    # causal: frames before the cut do not depend on what comes after it (the latents too,
    # to float rounding: a time-group norm moves them by ~1e-2, which codes can hide)
    whole = single.shape[-1] - 1  # the last frame of the cut clip is partly padding
    assert torch.equal(longer[0, :, :whole], single[0, :, :whole])
    with torch.no_grad():
        cut, full = model.latent(wav[1:, :, :2500])[0], model.latent(wav[1:, :, :4000])[0]
    torch.testing.assert_close(cut[..., :whole], full[..., :whole], atol=1e-5, rtol=0)


def test_corrupt_members_and_a_truncated_shard_are_skipped_and_counted(
    shards: Path, tmp_path: Path
) -> None:
    """A bad disk or an interrupted copy: training goes on, and data/skipped says how much."""
    import shutil
    import tarfile

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from academicodec.pipelines.tario import TarSampleWriter, iter_tar_samples

    broken = tmp_path / "shards"
    shutil.copytree(shards, broken)
    first, second = sorted(broken.glob("shard-*.tar"))[:2]
    samples = list(iter_tar_samples(first))
    with open(first, "wb") as f, TarSampleWriter(f) as writer:  # every other member garbage
        for n, (key, files) in enumerate(samples):
            if n % 2 == 0:
                files = {ext: b"\x00garbage" * 10 for ext in files}
            writer.add(key, files)
    data = second.read_bytes()
    second.write_bytes(data[: len(data) // 3])  # cut off mid-member
    with pytest.raises(tarfile.TarError):
        list(iter_tar_samples(second))

    state = train("tiny_hificodec_16k", _options(tmp_path / "run", broken, max_steps=8), TINY)
    assert state.step == 8
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    skipped = [event.value for event in events.Scalars("data/skipped")]
    assert len(skipped) == 8 and skipped[-1] > 0 and skipped == sorted(skipped)


def test_resume_compares_the_data_by_identity_not_path(
    shards: Path, tmp_path: Path, monkeypatch
) -> None:
    """The same shards by another path (a copy, a relative path) resume; other shards at
    the path the run was started with are refused, naming --data."""
    import shutil

    run = tmp_path / "run"
    train("tiny_hificodec_16k", _options(run, shards, max_steps=2, val_every=0), TINY)
    copy = tmp_path / "elsewhere" / "shards"
    shutil.copytree(shards, copy)
    monkeypatch.chdir(tmp_path / "elsewhere")
    state = train("tiny_hificodec_16k", _options(run, Path("shards"), max_steps=3, val_every=0),
                  TINY)  # fmt: skip
    assert state.step == 3
    shutil.rmtree(copy)  # other shards (another shard size) under the same relative path
    manifests = shards.parent / "manifests"
    write_shards([manifests], copy, ShardSettings(16000, samples_per_shard=4))
    with pytest.raises(UserError, match="--data: 'shards [0-9a-f]{12} .* -> 'shards "):
        train("tiny_hificodec_16k", _options(run, Path("shards"), max_steps=4, val_every=0),
              TINY)  # fmt: skip
    assert load_state_file(run / "checkpoints" / "last.pt").step == 3


@pytest.mark.parametrize("follow", [True, False])
def test_codebooks_follow_the_encoder_only_when_asked(
    shards: Path, tmp_path: Path, monkeypatch, follow: bool
) -> None:
    """codebooks.follow_encoder: the trainer hands the upkeep the longest item's latent
    from before and after each applied generator update (same frames), nothing when off."""
    from academicodec.training import Trainer
    from academicodec.training.upkeep import CodebookUpkeep

    calls: list[tuple[torch.Tensor, torch.Tensor]] = []
    real = CodebookUpkeep.follow
    monkeypatch.setattr(
        CodebookUpkeep, "follow", lambda self, b, a: (calls.append((b, a)), real(self, b, a))
    )
    overrides = {**TINY, "codebooks.follow_encoder": follow}
    config = load_codec_config("tiny_hificodec_16k", overrides)
    trainer = Trainer(config, _options(tmp_path / "run", shards), torch.device("cpu"))
    batch = next(iter(trainer.loader))
    trainer.train_step(batch)
    trainer.train_step(batch)
    if not follow:
        assert calls == []
        return
    assert len(calls) == 2
    before, after = calls[-1]
    frames = int(batch["lengths"].max()) // config.hop_length
    assert before.shape == after.shape and before.shape[1] == config.latent_dim
    assert abs(before.shape[0] - frames) <= 1 and not torch.equal(before, after)
