"""The original AcademiCodec HiFi-Codec training step, run from a checkout of its repository.

    python bench/original/run_original.py CHECKOUT init JOB OUT   # initial weights
    python bench/original/run_original.py CHECKOUT train JOB OUT  # train on JOB's batches
    python bench/original/run_original.py CHECKOUT budget JOB OUT # for JOB's seconds

Started by ``bench/train_vs_original.py`` in a process of its own whose ``sys.path`` puts
CHECKOUT first: the original's package is named ``academicodec`` like ours and imports
itself by that name, so ours is never imported here. JOB (``torch.save``) holds the config
(the original's ``config_*.json`` fields), the seed, the batches ``[N, B, T]``, the
held-out items and the steps to score at.

The step is the original ``train.py``'s, composed from the original's own modules in the
order train.py runs them (its ``train()`` is one function with the data loading, DDP and
checkpointing inside, so it cannot be called for a step): ``Encoder`` -> ``Quantizer`` ->
``Generator``; the discriminator step over MPD + MSD + MS-STFT with ``discriminator_loss``;
the generator step with mel L1 x 45 at the config's FFT plus the 512/120 and 256/60 mels,
``generator_loss`` + ``feature_loss`` of the three discriminators and ``loss_q`` x 10;
Adam (lr, betas of the config) for both. ``y_mel`` is computed before the timed part, as the
original's data loader does. Only the three calls in ``shim.py`` are adapted.

``init`` writes the generator, encoder and quantizer state dicts as the original's
checkpoints hold them (``g_*`` files), which our importer reads. ``train`` writes, for each
step to score, the decoded held-out items and their codes, and every step's seconds.
"""

from __future__ import annotations

import itertools
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F


def load_original(checkout: Path) -> dict[str, Any]:
    """The original's modules, imported from ``checkout`` (after the shim is installed)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import shim

    shim.install()
    sys.path.insert(0, str(checkout))
    from academicodec.models.encodec import msstftd
    from academicodec.models.hificodec import meldataset, models

    if not str(Path(models.__file__).resolve()).startswith(str(checkout.resolve())):
        raise SystemExit(f"imported {models.__file__}, not the checkout {checkout}")
    shim.adapt(meldataset)
    return {"models": models, "mel": meldataset.mel_spectrogram, "msstftd": msstftd}


class AttrDict(dict):
    """The original's ``env.AttrDict``: a config read by attribute (``h.n_fft``)."""

    def __getattr__(self, name: str) -> Any:
        return self[name]


def build(original: dict[str, Any], h: AttrDict, seed: int) -> dict[str, torch.nn.Module]:
    """The six modules in train.py's order of construction, from ``seed``."""
    models = original["models"]
    torch.manual_seed(seed)
    return {
        "encoder": models.Encoder(h),
        "generator": models.Generator(h),
        "quantizer": models.Quantizer(h),
        "mpd": models.MultiPeriodDiscriminator(),
        "msd": models.MultiScaleDiscriminator(),
        "mstftd": original["msstftd"].MultiScaleSTFTDiscriminator(32),
    }


def save_initial(job: dict[str, Any], out: Path, original: dict[str, Any]) -> None:
    parts = build(original, AttrDict(job["config"]), job["seed"])
    torch.save(
        {name: parts[name].state_dict() for name in ("generator", "encoder", "quantizer")}, out
    )


@torch.no_grad()
def score(parts: dict[str, torch.nn.Module], items: list[torch.Tensor]) -> dict[str, Any]:
    """Decoded held-out items and their codes [K, frames] (groups of stage 1, then 2)."""
    for part in parts.values():
        part.eval()
    decoded, codes = [], []
    for wav in items:
        q, _, indices = parts["quantizer"](parts["encoder"](wav[None, None]))
        decoded.append(parts["generator"](q)[0, 0, : wav.shape[-1]].clone())
        codes.append(torch.stack([i.reshape(-1) for i in indices]))
    for part in parts.values():
        part.train()
    return {"decoded": decoded, "codes": codes}


def stepper(job: dict[str, Any], original: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """The six modules and one training step of train.py (``step(y)`` -> seconds it took),
    on ``job["device"]`` (default CPU)."""
    h = AttrDict(job["config"])
    device = torch.device(job.get("device", "cpu"))
    models, mel = original["models"], original["mel"]
    parts = build(original, h, job["seed"])
    for part in parts.values():
        part.to(device).train()
    encoder, generator, quantizer = parts["encoder"], parts["generator"], parts["quantizer"]
    mpd, msd, mstftd = parts["mpd"], parts["msd"], parts["mstftd"]
    optim_g = torch.optim.Adam(
        itertools.chain(generator.parameters(), encoder.parameters(), quantizer.parameters()),
        h.learning_rate, betas=[h.adam_b1, h.adam_b2],
    )  # fmt: skip
    optim_d = torch.optim.Adam(
        itertools.chain(msd.parameters(), mpd.parameters(), mstftd.parameters()),
        h.learning_rate, betas=[h.adam_b1, h.adam_b2],
    )  # fmt: skip

    def mels(wav: torch.Tensor, n_fft: int, hop: int, win: int) -> torch.Tensor:
        return mel(wav, n_fft, h.num_mels, h.sampling_rate, hop, win, h.fmin, h.fmax_for_loss)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def step(y: torch.Tensor) -> float:
        y = y.to(device)
        y_mel = mels(y, h.n_fft, h.hop_size, h.win_size)  # the original's loader computes it
        sync()
        started = time.perf_counter()
        y = y.unsqueeze(1)
        q, loss_q, _ = quantizer(encoder(y))
        y_g_hat = generator(q)
        y_g_hat_mel = mels(y_g_hat.squeeze(1), h.n_fft, h.hop_size, h.win_size)
        y_r_mel_1, y_g_mel_1 = (
            mels(y.squeeze(1), 512, 120, 512),
            mels(y_g_hat.squeeze(1), 512, 120, 512),
        )
        y_r_mel_2, y_g_mel_2 = (
            mels(y.squeeze(1), 256, 60, 256),
            mels(y_g_hat.squeeze(1), 256, 60, 256),
        )
        optim_d.zero_grad()
        y_df_r, y_df_g, _, _ = mpd(y, y_g_hat.detach())
        loss_disc_f = models.discriminator_loss(y_df_r, y_df_g)[0]
        y_ds_r, y_ds_g, _, _ = msd(y, y_g_hat.detach())
        loss_disc_s = models.discriminator_loss(y_ds_r, y_ds_g)[0]
        y_disc_r, _ = mstftd(y)
        y_disc_gen, _ = mstftd(y_g_hat.detach())
        loss_disc_stft = models.discriminator_loss(y_disc_r, y_disc_gen)[0]
        (loss_disc_s + loss_disc_f + loss_disc_stft).backward()
        optim_d.step()
        optim_g.zero_grad()
        loss_mel = (
            F.l1_loss(y_mel, y_g_hat_mel) * 45
            + F.l1_loss(y_r_mel_1, y_g_mel_1)
            + F.l1_loss(y_r_mel_2, y_g_mel_2)
        )
        _, y_df_g, fmap_f_r, fmap_f_g = mpd(y, y_g_hat)
        _, y_ds_g, fmap_s_r, fmap_s_g = msd(y, y_g_hat)
        _, fmap_stftd_r = mstftd(y)
        y_stftd_g, fmap_stftd_g = mstftd(y_g_hat)
        loss_gen_all = (
            models.generator_loss(y_ds_g)[0]
            + models.generator_loss(y_df_g)[0]
            + models.generator_loss(y_stftd_g)[0]
            + models.feature_loss(fmap_s_r, fmap_s_g)
            + models.feature_loss(fmap_f_r, fmap_f_g)
            + models.feature_loss(fmap_stftd_r, fmap_stftd_g)
            + loss_mel
            + loss_q * 10
        )
        loss_gen_all.backward()
        optim_g.step()
        sync()
        return time.perf_counter() - started

    return parts, step


def _scored(parts: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
    """``score`` of JOB's held-out items on the modules' device, brought back to the CPU."""
    device = next(parts["generator"].parameters()).device
    result = score(parts, [v.to(device) for v in job["val"]])
    return {key: [t.cpu() for t in values] for key, values in result.items()}


def train(job: dict[str, Any], out: Path, original: dict[str, Any]) -> None:
    """JOB's batches in order; scores at JOB's ``score_at`` steps."""
    parts, step = stepper(job, original)
    scored, seconds = {0: _scored(parts, job)}, []
    for number, y in enumerate(job["batches"], start=1):
        seconds.append(step(y))
        if number in job["score_at"]:
            scored[number] = _scored(parts, job)
            print(
                f"original: step {number} {sum(seconds) / len(seconds):.2f} s/step",
                file=sys.stderr,
            )
    torch.save({"scored": scored, "seconds": seconds}, out)


def budget(job: dict[str, Any], out: Path, original: dict[str, Any]) -> None:
    """JOB's batches, again from the first when they run out, for ``budget`` seconds of
    step time; scores every ``every`` seconds of it (``learning_curve.py --original``)."""
    parts, step = stepper(job, original)
    points = [{"seconds": 0.0, "step": 0, **_scored(parts, job)}]
    trained, next_score, steps = 0.0, job["every"], 0
    for y in itertools.cycle(job["batches"]):
        trained += step(y)
        steps += 1
        if trained >= next_score or trained >= job["budget"]:
            points.append({"seconds": trained, "step": steps, **_scored(parts, job)})
            print(f"original: {trained:.1f} s, step {steps}", file=sys.stderr)
            next_score += job["every"]
        if trained >= job["budget"]:
            break
    torch.save({"points": points, "seconds": trained, "steps": steps}, out)


def main() -> None:
    checkout, mode, job_path, out = Path(sys.argv[1]), sys.argv[2], sys.argv[3], Path(sys.argv[4])
    torch.set_num_threads(int(sys.argv[5]) if len(sys.argv) > 5 else torch.get_num_threads())
    original = load_original(checkout)
    job = torch.load(job_path, weights_only=True)
    modes = {"init": save_initial, "train": train, "budget": budget}
    modes[mode](job, out, original)


if __name__ == "__main__":
    main()
