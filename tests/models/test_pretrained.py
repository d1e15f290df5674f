"""Importing released codecs (issue 12): Meta EnCodec, DAC and Hugging Face folders give the
reference implementations' own codes and audio, and batched encoding equals one at a time.

The fixtures (tests/fixtures/pretrained/, made by make_fixtures.py there with the reference
packages in a throwaway environment) hold small models in each source's file format, three
speech clips of mixed lengths, and what the reference produced for each clip alone and for
the three batched with zero padding.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from academicodec.errors import UserError
from academicodec.models import load_codec
from academicodec.models.pretrained import import_codec
from tests.helpers import REPO, run_cli

FIXTURES = REPO / "tests" / "fixtures" / "pretrained"
# fixture name -> (source path, family, whether exact agreement needs compat framing)
SOURCES = {
    "meta_encodec_small": ("meta_encodec_small.th", "encodec", True),
    "dac_16khz_small": ("dac_16khz_small.pth", "dac", False),
    "dac_44khz_small": ("dac_44khz_small.pth", "dac", False),
    "hf_encodec_small": ("hf_encodec_small", "encodec", True),
    "hf_dac_small": ("hf_dac_small", "dac", False),
}


def _reference(name: str) -> dict[str, np.ndarray]:
    with np.load(FIXTURES / f"{name}.npz") as data:
        return dict(data)


def _clips(reference: dict[str, np.ndarray]) -> list[torch.Tensor]:
    count = sum(1 for key in reference if key.startswith("clip"))
    return [torch.from_numpy(reference[f"clip{i}"]) for i in range(count)]


def _batch(clips: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    longest = max(len(c) for c in clips)
    wav = torch.stack([torch.nn.functional.pad(c, (0, longest - len(c))) for c in clips])
    return wav[:, None], torch.tensor([len(c) for c in clips])


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_codes_and_audio_equal_the_reference(name: str) -> None:
    source, family, needs_compat = SOURCES[name]
    reference = _reference(name)
    model = import_codec(FIXTURES / source, overrides={"compat": True} if needs_compat else {})
    assert model.config.family == family and not model.training
    with torch.no_grad():
        for i, clip in enumerate(_clips(reference)):
            codes = model.encode(clip[None, None])[0].numpy()
            assert np.array_equal(codes, reference[f"codes{i}"]), f"clip {i}"
            expected = reference[f"decoded{i}"]
            decoded = model.decode(torch.from_numpy(expected_codes(reference, i))[None])[0, 0]
            error = np.abs(decoded.numpy()[: len(expected)] - expected).max()
            assert error <= 1e-4 and error <= 1e-3 * expected.std(), f"clip {i}: {error}"
            assert np.all(decoded.numpy()[len(expected) :] == 0)  # DAC's short tail: zeros


def expected_codes(reference: dict[str, np.ndarray], i: int) -> np.ndarray:
    return reference[f"codes{i}"].astype(np.int64)


@pytest.mark.parametrize("name", ["meta_encodec_small", "hf_encodec_small"])
def test_default_framing_agreement_with_encodec(name: str) -> None:
    """Without compat the input is zero-padded to a whole hop instead of reflect-padded at
    every conv: only a clip's last frame can differ (measured: none on these clips)."""
    reference = _reference(name)
    model = import_codec(FIXTURES / SOURCES[name][0])
    with torch.no_grad():
        for i, clip in enumerate(_clips(reference)):
            codes = model.encode(clip[None, None])[0].numpy()
            assert np.array_equal(codes[:, :-1], reference[f"codes{i}"][:, :-1])


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_batched_equals_one_at_a_time(name: str) -> None:
    """Ours: 100% of codes. The references, batched with zero padding, differ from their
    own lone codes on these very clips (the fixture stores both; docs/models.md has the
    figures)."""
    reference = _reference(name)
    model = import_codec(FIXTURES / SOURCES[name][0])
    assert_batched_equals_alone(model, _clips(reference))
    reference_differs = [
        float((reference[f"codes{i}"] != reference[f"batched{i}"]).mean()) for i in range(3)
    ]
    print(f"{name}: reference batched != alone on {reference_differs} of codes; ours 0")


def assert_batched_equals_alone(model, clips: list[torch.Tensor]) -> torch.Tensor:
    """Each clip's codes in one zero-padded ``encode(wav, lengths)`` call are its codes
    alone, and code 0 past its frames; returns the batched codes."""
    wav, lengths = _batch(clips)
    with torch.no_grad():
        batched = model.encode(wav, lengths)
        for i, clip in enumerate(clips):
            alone = model.encode(clip[None, None])[0]
            frames = alone.shape[-1]
            assert frames == model.num_frames(len(clip))
            assert torch.equal(batched[i, :, :frames], alone), f"clip {i}"
            assert torch.all(batched[i, :, frames:] == 0)
    return batched


@pytest.mark.parametrize("compat", [False, True])
def test_meta_encodec_streams_a_long_input_to_the_whole_inputs_codes(compat: bool) -> None:
    """Causal EnCodec (convolution tails and the LSTM's state carried): chunks of the
    shortest exact length (7 frames: the last conv's reflect padding reads 6 frames after
    the start), 9 and 50 frames give the whole input's codes; independent chunks do not."""
    model = import_codec(FIXTURES / "meta_encodec_small.th", overrides={"compat": compat})
    assert model.streams and model.stream_min_samples == 7 * model.hop_length
    assert_streams_to_whole(model, _reference("meta_encodec_small"), (7, 9, 50), 0.05)


def assert_streams_to_whole(model, reference, chunk_frames, independent_differs: float) -> None:
    """The fixture's clips end to end, encoded in chunks of each of ``chunk_frames`` frames
    under ``model.streaming()``: the codes of the whole input. The same chunks encoded
    independently differ on more than ``independent_differs`` of codes (what the state is
    for); after the context the model starts fresh again."""
    clip = torch.cat([_clips(reference)[i] for i in (2, 0, 1)])[None, None]
    with torch.no_grad():
        whole = model.encode(clip)[0]
        for frames in chunk_frames:
            chunk = frames * model.hop_length
            starts = range(0, clip.shape[-1], chunk)
            with model.streaming():
                streamed = [model.encode(clip[..., s : s + chunk])[0] for s in starts]
            assert torch.equal(torch.cat(streamed, -1), whole), f"{frames}-frame chunks"
            independent = torch.cat([model.encode(clip[..., s : s + chunk])[0] for s in starts], -1)
            assert (independent != whole).float().mean() > independent_differs
        assert torch.equal(model.encode(clip)[0], whole)


def test_tokenize_refuses_chunks_shorter_than_a_streaming_model_needs() -> None:
    from academicodec.tokenizer.run import TokenizeSettings, _chunk_samples

    model = import_codec(FIXTURES / "meta_encodec_small.th")
    assert _chunk_samples(model, TokenizeSettings(max_chunk_seconds=0.1)) == 7 * 320
    with pytest.raises(UserError, match=r"--max-chunk-seconds 0.05 .*0\.093 s, 7 frames"):
        _chunk_samples(model, TokenizeSettings(max_chunk_seconds=0.05))


def test_a_streaming_models_long_item_runs_in_small_steps_with_the_whole_items_codes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 20 s chunk of Meta's EnCodec held ~700 MB of activations on CPU: a streaming
    model's long item runs in steps of at most ``STREAM_STEP_SECONDS`` whatever
    ``--max-chunk-seconds`` (its codes do not depend on the step)."""
    from academicodec.models.scheduling import GroupRunner
    from academicodec.tokenizer import run as run_module
    from academicodec.tokenizer.run import TokenizeSettings, _encode
    from academicodec.tokenizer.timing import Timer

    model = import_codec(FIXTURES / "meta_encodec_small.th")
    clip = torch.cat([_clips(_reference("meta_encodec_small"))[i] for i in (2, 0, 1)])
    clip = clip[: len(clip) // model.hop_length * model.hop_length][None, None]
    step_seconds = 9 * model.hop_length / model.sample_rate  # 9 frames a step
    monkeypatch.setattr(run_module, "STREAM_STEP_SECONDS", step_seconds)
    calls: list[int] = []
    real = model.encode

    def counted(part, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(part.shape[-1])
        return real(part, *args, **kwargs)

    # a chunk of 4 steps: the item is longer than one chunk, and runs in 9-frame steps
    settings = TokenizeSettings(max_chunk_seconds=4 * step_seconds + 1e-9)
    with torch.no_grad(), GroupRunner() as runner:
        whole = real(clip)
        monkeypatch.setattr(model, "encode", counted)
        stepped = _encode(model, clip, torch.tensor([clip.shape[-1]]), settings, None, runner,
                          Timer("cpu"))  # fmt: skip
    assert torch.equal(stepped, whole)
    assert len(calls) > 1 and max(calls) == 9 * model.hop_length, calls


def test_bandwidth_is_a_codebook_prefix() -> None:
    model = import_codec(FIXTURES / "meta_encodec_small.th", overrides={"compat": True})
    reference = _reference("meta_encodec_small")
    clip = _clips(reference)[0][None, None]
    # 1.8 kbps = 4 codebooks of log2(64) bits at 75 Hz, as encodec counts bandwidth
    assert model.config.codebooks_for_bandwidth(1.8) == 4
    with torch.no_grad():
        assert torch.equal(model.encode(clip, n_q=4)[0], model.encode(clip)[0, :4])
    assert model.config.encodec is not None
    assert list(model.config.encodec.bandwidths) == [0.9, 1.8, 3.6]


def _rename_weight_norm(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Newer names (parametrizations, or a plain weight) -> weight_g/weight_v, as the hub
    files of facebook/encodec_24khz and descript/dac_* are stored."""
    out = {}
    for key, value in tensors.items():
        if key.endswith("parametrizations.weight.original0"):
            out[key.replace("parametrizations.weight.original0", "weight_g")] = value
        elif key.endswith("parametrizations.weight.original1"):
            out[key.replace("parametrizations.weight.original1", "weight_v")] = value
        elif key.endswith(".weight") and value.dim() == 3:
            out[key[: -len("weight")] + "weight_g"] = torch.norm_except_dim(value, 2, 0)
            out[key[: -len("weight")] + "weight_v"] = value
        else:
            out[key] = value
    return out


@pytest.mark.parametrize("name", ["hf_encodec_small", "hf_dac_small"])
def test_hf_folders_with_old_weight_norm_names(tmp_path: Path, name: str) -> None:
    from safetensors.torch import load_file, save_file

    folder = tmp_path / name
    shutil.copytree(FIXTURES / name, folder)
    tensors = load_file(str(folder / "model.safetensors"))
    save_file(_rename_weight_norm(tensors), str(folder / "model.safetensors"))
    reference = _reference(name)
    model = import_codec(folder, overrides={"compat": True} if SOURCES[name][2] else {})
    with torch.no_grad():
        codes = model.encode(_clips(reference)[0][None, None])[0].numpy()
    assert np.array_equal(codes, reference["codes0"])


def test_cli_import_every_source_then_load(tmp_path: Path) -> None:
    for name, (source, family, needs_compat) in SOURCES.items():
        out = tmp_path / name
        result = run_cli("import", str(FIXTURES / source), str(out), "--family", family)
        assert result.returncode == 0, result.stderr
        assert "parameters" in result.stdout and str(out) in result.stdout
        config = yaml.safe_load((out / "config.yaml").read_text())
        summary = config["summary"]
        assert config["source"].endswith(source) and summary["channels"] == 1
        assert summary["num_codebooks"] == len(_reference(name)["codes0"])
        assert summary["bitrates_kbps"][1] == pytest.approx(summary["frame_rate"] * 6 / 1000, 1e-3)
        reference = _reference(name)
        model = load_codec(out, compat=needs_compat)
        direct = load_codec(FIXTURES / source, compat=needs_compat)  # no import step
        clip = _clips(reference)[1][None, None]
        with torch.no_grad():
            assert np.array_equal(model.encode(clip)[0].numpy(), reference["codes1"])
            assert torch.equal(direct.encode(clip), model.encode(clip))


def test_an_edited_export_summary_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "export"
    assert run_cli("import", str(FIXTURES / "dac_16khz_small.pth"), str(out)).returncode == 0
    config = yaml.safe_load((out / "config.yaml").read_text())
    config["summary"]["frame_rate"] = 75.0
    (out / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(UserError, match="summary block does not match"):
        load_codec(out)


class Payload:
    """Not a tensor or container: a weights-only load must refuse a file holding one."""


def _one_line_failure(tmp_path: Path, source: Path, *extra: str) -> str:
    out = tmp_path / "out"
    result = run_cli("import", str(source), str(out), *extra)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert not out.exists()
    return lines[0]


def test_mismatched_and_foreign_files_are_one_line_errors(tmp_path: Path) -> None:
    state = torch.load(FIXTURES / "dac_16khz_small.pth", weights_only=True)
    del state["state_dict"]["encoder.block.0.bias"]
    state["state_dict"]["encoder.extra.weight"] = torch.zeros(1)
    state["metadata"]["kwargs"]["codebook_dim"] = 5
    broken = tmp_path / "weights_16khz.pth"
    torch.save(state, broken)
    line = _one_line_failure(tmp_path, broken)
    assert "missing keys (1): encoder.block.0.bias" in line
    assert "unexpected keys (1): encoder.extra.weight" in line
    assert "wrong shapes" in line and "quantizer.quantizers.0.codebook.weight" in line

    meta = torch.load(FIXTURES / "meta_encodec_small.th", weights_only=True)
    meta["encoder.model.0.conv.norm.weight"] = torch.ones(4)  # what the 48 kHz model has
    torch.save(meta, tmp_path / "encodec_48khz.th")
    assert "EnCodec 48 kHz" in _one_line_failure(tmp_path, tmp_path / "encodec_48khz.th")

    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    assert "not a PyTorch checkpoint" in _one_line_failure(tmp_path, text)

    torch.save({"state_dict": {}, "metadata": Payload()}, tmp_path / "evil.pth")
    line = _one_line_failure(tmp_path, tmp_path / "evil.pth")
    assert "pickled objects" in line and "weights_only=False" not in line

    line = _one_line_failure(tmp_path, FIXTURES / "dac_16khz_small.pth", "--family", "encodec")
    assert "is a dac file" in line


def test_foreign_hf_folders_are_one_line_errors(tmp_path: Path) -> None:
    # a model type we do not import (X-Codec, X-Codec2's predecessor): refused, listing ours
    other = tmp_path / "xcodec"
    shutil.copytree(FIXTURES / "hf_encodec_small", other)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "model_type": "xcodec"}))
    line = _one_line_failure(tmp_path, other)
    assert "model_type 'xcodec' is not supported (encodec, dac, mimi and xcodec2 are)" in line

    stereo = tmp_path / "encodec_48khz"
    shutil.copytree(FIXTURES / "hf_encodec_small", stereo)
    config = json.loads((stereo / "config.json").read_text())
    (stereo / "config.json").write_text(json.dumps({**config, "audio_channels": 2}))
    assert "audio_channels = 2 is not supported" in _one_line_failure(tmp_path, stereo)

    (stereo / "model.safetensors").unlink()
    message = _one_line_failure(tmp_path, stereo)
    assert "model.safetensors (or pytorch_model.bin) is missing" in message


def test_dac_is_import_only_for_training(tmp_path: Path) -> None:
    result = run_cli(
        "train", "--preset", "dac_16khz", "--data", str(tmp_path), "--out", str(tmp_path / "run")
    )
    assert result.returncode == 2
    assert "dac" in result.stderr and "import" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
