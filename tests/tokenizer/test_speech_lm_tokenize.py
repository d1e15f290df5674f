"""Imported Mimi, SNAC and X-Codec2 through every stage (issue 22): ``import`` -> ``tokenize`` (all
three formats) -> ``decode`` -> ``eval``, and ``info`` on the codes. SNAC's multi-rate codes
travel as frames of every level's codes (docs/tokenize.md) and come back out per level."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from lhotse import CutSet

from academicodec.models import load_codec
from academicodec.models.families.snac.network import split_levels
from academicodec.tokenizer.readers import CodesDataset, iter_parquet, iter_shar
from tests.helpers import REPO, run_cli

FIXTURES = REPO / "tests" / "fixtures" / "pretrained"
CASES = {  # source, import flags, tokenize flags, codebooks written
    # every clip (0.4-1.4 s) in 3-frame chunks, streamed, the last one padded and masked as
    # on a GPU (one-call); checked below against the clips encoded whole, in groups
    "mimi": (
        FIXTURES / "mimi_small.safetensors",
        ("--set", "mimi.num_heads=4", "--set", "mimi.context=8"),
        ("--n-q", "4", "--max-chunk-seconds", "0.25", "--batching", "one-call"),
        4,
    ),
    "snac": (FIXTURES / "snac_small", (), (), 7),
    # 65,536 codes: stored as int32 in every format
    "xcodec2": (FIXTURES / "hf_xcodec2_small", (), (), 1),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_imported_codec_through_every_stage(corpus: Path, tmp_path: Path, name: str) -> None:
    source, import_flags, tokenize_flags, books = CASES[name]
    model_dir, codes_dir = tmp_path / "model", tmp_path / "codes"
    audio_dir, eval_dir = tmp_path / "audio", tmp_path / "eval"
    steps = [
        ("import", str(source), str(model_dir), *import_flags),
        ("tokenize", str(corpus), str(codes_dir), "-m", str(model_dir),
         "--format", "webdataset,shar,parquet", "--batch-seconds", "6", *tokenize_flags),
        ("decode", str(codes_dir), str(audio_dir), "-m", str(model_dir)),
        ("eval", str(corpus), str(eval_dir), "-m", str(model_dir), "--max-items", "3"),
    ]  # fmt: skip
    for step in steps:
        result = run_cli(*step)
        assert result.returncode == 0, f"{step[0]}: {result.stderr}"

    model = load_codec(model_dir)
    index = json.loads((codes_dir / "index.json").read_text())
    assert index["num_codebooks"] == books and index["frame_rate"] == model.frame_rate
    expected_ids = {c.id for c in CutSet.from_file(next(corpus.glob("*_cuts_*")))}
    web = {meta["id"]: codes for codes, _, meta in CodesDataset(codes_dir, rank=0, world_size=1)}
    shar = {meta["id"]: codes for codes, _, meta in iter_shar(codes_dir)}
    parquet = {meta["id"]: codes for codes, _, meta in iter_parquet(codes_dir)}
    assert set(web) == set(shar) == set(parquet) == expected_ids
    cuts = {c.id: c for c in CutSet.from_file(next(corpus.glob("*_cuts_*")))}
    wide = model.codebook_size > 2**15
    for item_id, codes in web.items():
        assert codes.shape[1] == books and codes.min() >= 0 and codes.max() < model.codebook_size
        assert np.array_equal(codes, shar[item_id]) and np.array_equal(codes, parquet[item_id])
        assert codes.dtype == shar[item_id].dtype == parquet[item_id].dtype
        assert codes.dtype == (np.int32 if wide else np.int16)
        # every frame of the clip, at the model's rate (batch-exactness itself is shown
        # against the references in tests/models/test_speech_lm_codecs.py)
        samples = cuts[item_id].resample(model.sample_rate).num_samples
        assert codes.shape[0] == model.num_frames(samples), item_id

    if wide:  # codes int16 would have wrapped are there, whole
        assert max(int(codes.max()) for codes in web.values()) >= 2**15
    described = json.loads(run_cli("info", str(codes_dir), "--json").stdout)
    assert described["code_dtype"] == ("int32" if wide else "int16")
    wavs = sorted(audio_dir.rglob("*.wav"))
    assert len(wavs) == len(expected_ids)
    info = soundfile.info(str(wavs[0]))
    assert info.samplerate == model.sample_rate

    summary = json.loads((eval_dir / "summary.json").read_text())
    for level in summary["levels"].values():
        assert np.isfinite(level["overall"]["stoi"]["mean"])

    described = run_cli("info", str(codes_dir))
    assert described.returncode == 0, described.stderr
    if name == "snac":
        layout = index["code_layout"]
        assert layout["levels"] == [1, 2, 4] and layout["kind"] == "levels"
        assert layout["level_rates_hz"] == pytest.approx([11.7188, 23.4375, 46.875])
        assert "levels" in described.stdout and "46.875" in described.stdout
        codes = torch.from_numpy(next(iter(web.values())).T.copy())
        parts = split_levels(codes, (1, 2, 4))
        assert [len(p) for p in parts] == [codes.shape[1] * n for n in (1, 2, 4)]
    elif name == "mimi":
        assert index.get("code_layout") is None
        # Mimi streams long items: chunked codes are those of the whole clip
        whole_dir = tmp_path / "whole"
        result = run_cli("tokenize", str(corpus), str(whole_dir), "-m", str(model_dir),
                         "--batch-seconds", "6", "--n-q", "4")  # fmt: skip
        assert result.returncode == 0, result.stderr
        whole = {meta["id"]: c for c, _, meta in CodesDataset(whole_dir, rank=0, world_size=1)}
        assert whole.keys() == web.keys()
        assert all(np.array_equal(whole[i], web[i]) for i in web)
