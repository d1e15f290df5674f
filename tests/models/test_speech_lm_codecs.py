"""Mimi, SNAC and X-Codec2 (issue 22): the codecs of Moshi/Sesame-style speech LMs, Orpheus
TTS and Llasa, imported onto our own length-aware implementations.

Fixtures (tests/fixtures/pretrained/, made by make_fixtures.py with moshi 0.2.13,
transformers 5.25.0 and snac 1.2.1): a small Mimi in moshi's safetensors format (4 heads,
attention context 8 frames so the clips reach the window), another in transformers' folder
format (its own random weights, RoPE base 5000), and two small SNACs in the snac package's
folder format, one without and one with local attention, and a small X-Codec2 in
transformers' folder format (w2v-BERT 32 wide x 2 layers; a fourth clip of exactly 50 hops).
Each stores what the reference gave for the speech clips alone and batched (zero padding;
transformers with its padding mask).
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
from academicodec.models.families.mimi import network as mimi_module
from academicodec.models.families.snac.network import split_levels
from academicodec.models.pretrained import import_codec
from tests.helpers import run_cli
from tests.models.test_pretrained import (
    FIXTURES,
    _batch,
    _clips,
    _one_line_failure,
    _reference,
    assert_batched_equals_alone,
    assert_streams_to_whole,
)

# The moshi file holds no config; heads and context are Mimi's unless set.
MIMI_SETS = {"mimi.num_heads": 4, "mimi.context": 8}
SOURCES = {
    "mimi_small": ("mimi_small.safetensors", "mimi", MIMI_SETS),
    "hf_mimi_small": ("hf_mimi_small", "mimi", {}),
    "snac_small": ("snac_small", "snac", {}),
    "snac_attention_small": ("snac_attention_small", "snac", {}),
    "hf_xcodec2_small": ("hf_xcodec2_small", "xcodec2", {}),
}
# transformers pads the ragged end at every strided conv (moshi: the input, once): exact
# agreement needs its framing (compat); default framing differs at most in the last frame.
# X-Codec2's framing (one zero appended before padding to a whole hop) is our default.
NEEDS_COMPAT = {"hf_mimi_small"}
MIMI_SOURCES = ["mimi_small", "hf_mimi_small"]


def _import(name: str, compat: bool = False):
    source, _, sets = SOURCES[name]
    return import_codec(
        FIXTURES / source, overrides={**sets, **({"compat": True} if compat else {})}
    )


def _ours_as_reference(model, codes: torch.Tensor) -> np.ndarray:
    """Our [K, F] codes in the fixture's layout (SNAC: every level in time order)."""
    if model.config.family != "snac":
        return codes.numpy()
    return np.concatenate(
        [level.numpy() for level in split_levels(codes, model.config.snac.levels)]
    )


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_codes_and_audio_equal_the_reference(name: str) -> None:
    reference = _reference(name)
    model = _import(name, compat=name in NEEDS_COMPAT)
    assert model.config.family == SOURCES[name][1] and not model.training
    with torch.no_grad():
        for i, clip in enumerate(_clips(reference)):
            codes = model.encode(clip[None, None])[0]
            assert np.array_equal(_ours_as_reference(model, codes), reference[f"codes{i}"])
            expected = reference[f"decoded{i}"]
            decoded = model.decode(codes[None])[0, 0].numpy()
            assert decoded.shape == expected.shape
            error = np.abs(decoded - expected).max()
            assert error <= 1e-4, f"clip {i}: {error}"


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_batched_equals_one_at_a_time(name: str) -> None:
    reference = _reference(name)
    model = _import(name)
    clips = _clips(reference)
    wav, lengths = _batch(clips)
    batched = assert_batched_equals_alone(model, clips)
    with torch.no_grad():
        # decoding a padded batch gives each item its own audio
        audio = model.decode(batched, torch.tensor([model.num_frames(int(n)) for n in lengths]))
        for i, clip in enumerate(clips):
            alone = model.decode(model.encode(clip[None, None]))[0, 0]
            assert torch.allclose(audio[i, 0, : len(alone)], alone, atol=1e-5)
    differs = [float((reference[f"codes{i}"] != reference[f"batched{i}"]).mean()) for i in range(3)]
    print(f"{name}: reference batched != alone on {differs} of codes; ours 0")


def test_transformers_mimi_default_framing_differs_only_in_the_last_frame() -> None:
    reference = _reference("hf_mimi_small")
    model = _import("hf_mimi_small")
    last_frame_differs = []
    with torch.no_grad():
        for i, clip in enumerate(_clips(reference)):
            codes = model.encode(clip[None, None])[0].numpy()
            assert np.array_equal(codes[:, :-1], reference[f"codes{i}"][:, :-1])
            last_frame_differs.append(
                not np.array_equal(codes[:, -1], reference[f"codes{i}"][:, -1])
            )
    print(f"hf_mimi_small default framing: last frame differs {last_frame_differs}")


@pytest.mark.parametrize("name", MIMI_SOURCES)
def test_mimi_streams_a_long_input_in_chunks_to_the_whole_inputs_codes(name: str) -> None:
    """Chunks of 1, 2 and 5 frames (context 8 encoder frames = 4 code frames, so the
    attention cache spans chunks), state carried: the codes of the whole input. Chunks
    encoded independently differ (what the state is for)."""
    model = _import(name)
    assert model.streams and model.stream_min_samples == model.hop_length
    assert_streams_to_whole(model, _reference(name), (1, 2, 5), 0.1)


def test_mimi_codebooks_are_a_prefix_and_bandwidths_count_them() -> None:
    model = _import("mimi_small")
    assert model.supported_n_q() == list(range(1, 9))
    clip = _clips(_reference("mimi_small"))[2][None, None]
    with torch.no_grad():
        full = model.encode(clip)
        for n_q in (1, 2, 8):
            assert torch.equal(model.encode(clip, n_q=n_q)[0], full[0, :n_q])
    # 12.5 Hz x log2(64) bits = 0.075 kbps a codebook
    assert model.resolve_n_q(kbps=0.6) == 8
    assert model.resolve_n_q(kbps=0.075) == 1


def test_mimi_full_size_bitrates() -> None:
    from academicodec.models.codec import build_codec

    config = build_codec("kyutai_mimi").config
    assert config.hop_length == 1920 and config.frame_rate == 12.5
    assert config.num_codebooks == 32 and config.codebook_size == 2048
    model = build_codec("kyutai_mimi")
    assert model.resolve_n_q(kbps=1.1) == 8  # Moshi's 8 codebooks
    assert model.supported_n_q() == list(range(1, 33))


def test_mimi_attention_in_blocks_equals_one_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """Long inputs attend block by block (memory linear in length): same result."""
    model = _import("mimi_small")
    clip = _clips(_reference("mimi_small"))[2][None, None]
    with torch.no_grad():
        whole = model.encoder(torch.nn.functional.pad(clip, (0, -clip.shape[-1] % 1920)))
        codes = model.encode(clip)
        monkeypatch.setattr(mimi_module, "ATTENTION_BLOCK", 5)
        blocked = model.encoder(torch.nn.functional.pad(clip, (0, -clip.shape[-1] % 1920)))
        assert torch.allclose(whole, blocked, atol=1e-6)
        assert torch.equal(model.encode(clip), codes)


def test_snac_layout_is_one_frame_of_every_level() -> None:
    """24 kHz: a frame is 2048 samples holding 1 + 2 + 4 codes; split_levels gives SNAC's
    own per-level arrays, and the Orpheus order is a fixed permutation of a frame."""
    model = _import("snac_small")
    assert model.config.snac.levels == (1, 2, 4) and model.num_codebooks == 7
    assert model.hop_length == 2048 and model.supported_n_q() == [7]
    codes = torch.arange(14).view(1, 7, 2)  # two frames
    levels = split_levels(codes, (1, 2, 4))
    assert [level.tolist() for level in levels] == [
        [[0, 1]],
        [[2, 4, 3, 5]],
        [[6, 8, 10, 12, 7, 9, 11, 13]],
    ]
    orpheus = codes[0, [0, 1, 3, 4, 2, 5, 6]].t().reshape(-1)  # docs/tokenize.md's recipe
    l0, l1, l2 = (level[0] for level in levels)
    frame0 = [l0[0], l1[0], l2[0], l2[1], l1[1], l2[2], l2[3]]
    assert orpheus[:7].tolist() == [int(v) for v in frame0]
    with pytest.raises(Exception, match="--n-q 3"):
        model.resolve_n_q(n_q=3)


def test_cli_import_then_load(tmp_path: Path) -> None:
    for name, (source, family, sets) in SOURCES.items():
        out = tmp_path / name
        compat = {"compat": "true"} if name in NEEDS_COMPAT else {}
        flags = [f"--set={k}={v}" for k, v in {**sets, **compat}.items()]
        result = run_cli("import", str(FIXTURES / source), str(out), "--family", family, *flags)
        assert result.returncode == 0, result.stderr
        config = yaml.safe_load((out / "config.yaml").read_text())
        assert config["family"] == family and config["source"].endswith(source)
        model = load_codec(out)
        reference = _reference(name)
        with torch.no_grad():
            codes = model.encode(_clips(reference)[1][None, None])[0]
        assert np.array_equal(_ours_as_reference(model, codes), reference["codes1"])


def test_mismatched_files_and_variants_are_one_line_errors(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(FIXTURES / "mimi_small.safetensors"))
    del tensors["decoder.model.0.conv.conv.bias"]
    save_file(tensors, str(tmp_path / "tokenizer-broken.safetensors"))
    line = _one_line_failure(tmp_path, tmp_path / "tokenizer-broken.safetensors")
    assert "missing keys (1)" in line and "decoder.seanet.model.0.conv.conv.bias" in line

    save_file({"x": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    assert "not a codec checkpoint we know" in _one_line_failure(
        tmp_path, tmp_path / "other.safetensors"
    )

    folder = tmp_path / "mimi_gqa"
    shutil.copytree(FIXTURES / "hf_mimi_small", folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "num_key_value_heads": 2}))
    assert "num_key_value_heads = 2 is not supported" in _one_line_failure(tmp_path, folder)
    (folder / "config.json").write_text(json.dumps({**config, "hidden_act": "silu"}))
    with pytest.raises(UserError, match="hidden_act = 'silu' is not supported"):
        import_codec(folder)
    tensors = load_file(str(FIXTURES / "hf_mimi_small" / "model.safetensors"))
    del tensors["encoder_transformer.layers.1.self_attn.k_proj.weight"]
    (folder / "config.json").write_text(json.dumps(config))
    save_file(tensors, str(folder / "model.safetensors"))
    with pytest.raises(UserError, match=r"no encoder_transformer\.layers\.1\.self_attn\.k_proj"):
        import_codec(folder)

    folder = tmp_path / "snac_32khz"
    shutil.copytree(FIXTURES / "snac_small", folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "stereo": True}))
    assert "SNAC settings ['stereo'] are not supported" in _one_line_failure(tmp_path, folder)


@pytest.mark.parametrize("preset", ["kyutai_mimi", "snac_24khz", "xcodec2"])
def test_import_only_for_training(tmp_path: Path, preset: str) -> None:
    result = run_cli(
        "train", "--preset", preset, "--data", str(tmp_path), "--out", str(tmp_path / "run")
    )
    assert result.returncode == 2 and "import" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_xcodec2_filterbank_equals_the_feature_extractors() -> None:
    """Our batched Kaldi filterbank (per-item statistics) == what transformers'
    ``Xcodec2FeatureExtractor`` (torchaudio's ``kaldi.fbank``, one clip at a time) fed
    w2v-BERT, for the clips alone and padded into one batch."""
    reference = _reference("hf_xcodec2_small")
    model = _import("hf_xcodec2_small", compat=True)
    clips = _clips(reference)
    with torch.no_grad():
        for i, clip in enumerate(clips):
            wav, _ = model._frame(clip[None, None], None)
            features = model.encoder.fbank(wav, None)[0].numpy()
            assert np.abs(features - reference[f"features{i}"]).max() <= 1e-4
        ours = _import("hf_xcodec2_small")  # our framing: the same 3 ragged clips
        wav, lengths = _batch(clips[:3])
        wav, frames = ours._frame(wav, lengths)
        batched = ours.encoder.fbank(wav, frames).numpy()
        for i in range(3):
            expected = reference[f"features{i}"]
            assert np.abs(batched[i, : len(expected)] - expected).max() <= 1e-4


def test_xcodec2_default_framing_is_the_references_batched() -> None:
    """The reference appends a zero before padding to whole hops: a clip of ``k`` whole hops
    gets ``k + 1`` frames. Our default frames so, batched (each item its own frames): codes
    equal the reference's on ragged and whole-hop clips, alone and padded into one batch."""
    reference = _reference("hf_xcodec2_small")
    model = _import("hf_xcodec2_small")
    clips = _clips(reference)
    hop = model.hop_length
    whole = [i for i, clip in enumerate(clips) if len(clip) % hop == 0]
    assert whole and len(whole) < len(clips), "the fixture needs both kinds of clip"
    wav, lengths = _batch(clips)
    with torch.no_grad():
        batched = model.encode(wav, lengths)
        for i, clip in enumerate(clips):
            expected = reference[f"codes{i}"]
            assert expected.shape[-1] == len(clip) // hop + 1 == model.num_frames(len(clip))
            assert np.array_equal(model.encode(clip[None, None])[0].numpy(), expected)
            assert np.array_equal(batched[i, :, : expected.shape[-1]].numpy(), expected)
            assert not batched[i, :, expected.shape[-1] :].any()  # padding frames: code 0


def test_xcodec2_variants_and_broken_folders_are_one_line_errors(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "xcodec2_rotary"
    shutil.copytree(FIXTURES / "hf_xcodec2_small", folder)
    config = json.loads((folder / "config.json").read_text())
    semantic = {**config["semantic_model_config"], "position_embeddings_type": "rotary"}
    (folder / "config.json").write_text(json.dumps({**config, "semantic_model_config": semantic}))
    line = _one_line_failure(tmp_path, folder)
    assert "semantic_model_config.position_embeddings_type = 'rotary' is not supported" in line
    (folder / "config.json").write_text(json.dumps({**config, "num_key_value_heads": 2}))
    with pytest.raises(UserError, match="num_key_value_heads = 2 is not supported"):
        import_codec(folder)

    # HKUSTAudio's own upload says model_type xcodec2 too, with the xcodec2 package's names
    original = {"model_type": "xcodec2", "semantic_hidden_size": 1024,
                "codec_encoder_hidden_size": 1024, "codec_decoder_hidden_size": 1024,
                "use_vocos": True, "architectures": ["XCodec2Model"]}  # fmt: skip
    (folder / "config.json").write_text(json.dumps(original))
    line = _one_line_failure(tmp_path, folder)
    assert "original X-Codec2 upload" in line and "hf-audio/xcodec2" in line

    (folder / "config.json").write_text(json.dumps(config))
    tensors = load_file(str(FIXTURES / "hf_xcodec2_small" / "model.safetensors"))
    del tensors["semantic_encoder.encoder.layers.1.self_attn.distance_embedding.weight"]
    save_file(tensors, str(folder / "model.safetensors"))
    with pytest.raises(UserError, match=r"missing keys \(1\).*layers\.1\.self_attn\.distance"):
        import_codec(folder)


def test_xcodec2_import_says_the_licence(tmp_path: Path) -> None:
    """X-Codec2's weights are CC-BY-NC: the import says the model card's licence, or the
    release's when the folder has no card."""
    result = run_cli("import", str(FIXTURES / "hf_xcodec2_small"), str(tmp_path / "bare"))
    assert result.returncode == 0, result.stderr
    assert "licence: cc-by-nc-4.0 (HKUSTAudio's X-Codec2 release" in result.stdout
    assert "no model card here" in result.stdout

    folder = tmp_path / "carded"
    shutil.copytree(FIXTURES / "hf_xcodec2_small", folder)
    (folder / "README.md").write_text("---\nlicense: cc-by-nc-4.0\ntags: [audio]\n---\n# X\n")
    result = run_cli("import", str(folder), str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert f"licence: cc-by-nc-4.0 (the model card, {folder / 'README.md'})" in result.stdout

    # any other card's licence is said too (Mimi: CC-BY 4.0)
    mimi = tmp_path / "mimi"
    shutil.copytree(FIXTURES / "hf_mimi_small", mimi)
    (mimi / "README.md").write_text("---\nlicense: cc-by-4.0\n---\n")
    result = run_cli("import", str(mimi), str(tmp_path / "mimi_out"))
    assert result.returncode == 0, result.stderr
    assert "licence: cc-by-4.0" in result.stdout


def test_xcodec2_anti_aliasing_in_tiles_and_batches_is_exact() -> None:
    """X-Codec2's anti-aliased SnakeBeta runs long inputs in tiles (a halo each side) and
    padded batches with each item's end recomputed alone: both bit-equal to the plain
    whole-signal computation of each item alone, including items shorter than a halo."""
    from academicodec.models.families.xcodec2.network import AntiAliased

    torch.manual_seed(0)
    layer = AntiAliased(4)
    with torch.no_grad():
        layer.act.alpha.normal_()
        layer.act.beta.normal_()
    tile, halo = AntiAliased.TILE, AntiAliased.HALO
    lengths = [3 * tile + 5, tile + 2 * halo + 1, tile - 3, 40, 17, 1]
    x = torch.randn(len(lengths), 4, max(lengths))
    with torch.inference_mode():
        batched = layer(x, torch.tensor(lengths))
        for i, n in enumerate(lengths):
            whole = layer._whole(x[i : i + 1, :, :n])
            assert torch.equal(layer(x[i : i + 1, :, :n], None), whole), n
            assert torch.equal(batched[i : i + 1, :, :n], whole), n
