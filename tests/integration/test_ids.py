"""Ids survive every stage (issue 14): prepare makes them key-safe, and the same id is in the
manifests, the shards and all three token formats - so codes join back to manifests."""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from lhotse import CutSet

from academicodec.ids import is_key_safe
from academicodec.manifests import prepare
from academicodec.models import build_codec, save_codec
from academicodec.pipelines import ShardSettings, write_shards
from academicodec.pipelines.tario import iter_tar_samples
from academicodec.tokenizer.readers import CodesDataset, iter_parquet, iter_shar
from academicodec.tokenizer.run import TokenizeSettings, tokenize
from tests.helpers import write_audio

NAMES = [
    "sub0/clip.002.wav",  # dots inside a stem
    "sub 1/take (2).flac",  # spaces, brackets
    "a.wav",
    "a.flac",  # same stem, two extensions
    "p-q.wav",
    "p/q.wav",  # two paths that would make one id
    "日本/声.wav",  # letters of another script: kept
]


def test_one_id_from_prepare_to_every_output(tmp_path: Path) -> None:
    for name in NAMES:
        write_audio(tmp_path / "src" / name, 0.5, 16000)
    prepare("folder", tmp_path / "src", tmp_path / "m")
    cuts = CutSet.from_file(tmp_path / "m" / "src_cuts_all.jsonl.gz").to_eager()
    ids = sorted(cut.id for cut in cuts)
    assert len(ids) == len(NAMES) == len(set(ids))
    assert all(is_key_safe(i) for i in ids), ids
    # Ids start with the corpus name (the folder's, here "src") and keep every script.
    assert "src-sub0-clip_002" in ids and "src-sub_1-take_2" in ids
    assert {"src-a_wav", "src-a_flac", "src-日本-声"} <= set(ids)
    assert sum(i.startswith("src-p-q-") for i in ids) == 2  # the collision: a hash each
    again = tmp_path / "m2"
    prepare("folder", tmp_path / "src", again)  # stable: the same tree gives the same ids
    assert sorted(c.id for c in CutSet.from_file(again / "src_cuts_all.jsonl.gz")) == ids

    write_shards([tmp_path / "m"], tmp_path / "shards", ShardSettings(16000, samples_per_shard=3))
    keys, metas = [], []
    for tar in sorted((tmp_path / "shards").glob("shard-*.tar")):
        for key, sample in iter_tar_samples(tar):
            keys.append(key)
            metas.append(json.loads(sample["json"])["id"])
    assert sorted(keys) == sorted(metas) == ids

    torch.manual_seed(0)
    model = save_codec(build_codec("tiny_encodec_16k"), tmp_path / "model")
    settings = TokenizeSettings(formats=("webdataset", "shar", "parquet"), workers=0)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        tokenize(model, [tmp_path / "shards"], tmp_path / "codes", settings)
    assert not [w for w in record if "key-safe" in str(w.message)]
    webdataset = {m["id"]: c for c, _, m in CodesDataset(tmp_path / "codes", 0, 1)}
    shar_cuts = sorted(c.id for c in CutSet.from_shar(in_dir=tmp_path / "codes" / "shar"))
    shar = {m["id"]: c for c, _, m in iter_shar(tmp_path / "codes")}
    parquet = {m["id"]: c for c, _, m in iter_parquet(tmp_path / "codes")}
    assert sorted(webdataset) == shar_cuts == sorted(shar) == sorted(parquet) == ids
    assert all(np.array_equal(webdataset[i], parquet[i]) for i in ids)


def test_ids_from_other_tools_are_warned_about_for_shar(tmp_path: Path) -> None:
    """A manifest made elsewhere may carry ids like "a/b": Shar cannot keep those, say so."""
    write_audio(tmp_path / "x.wav", 0.5, 16000)
    from lhotse import Recording

    recording = Recording.from_file(tmp_path / "x.wav", recording_id="spk/utt.1")
    CutSet.from_cuts([recording.to_cut()]).to_file(tmp_path / "cuts.jsonl.gz")
    torch.manual_seed(0)
    model = save_codec(build_codec("tiny_encodec_16k"), tmp_path / "model")
    settings = TokenizeSettings(formats=("webdataset", "shar"), workers=0)
    with pytest.warns(UserWarning, match="1 item id.*'spk/utt.1'.*prepare"):
        tokenize(model, [tmp_path / "cuts.jsonl.gz"], tmp_path / "codes", settings)
    assert [m["id"] for _, _, m in CodesDataset(tmp_path / "codes", 0, 1)] == ["spk/utt.1"]
