"""tokenize: every item once in every format, exact framing, batching-invariant codes,
resumable, rank-sliced; the readers and decode on its outputs."""

import json
import math
import os
import socket
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch.distributed as dist
import torch.multiprocessing as mp
from lhotse import CutSet

from academicodec.models import load_codec
from academicodec.tokenizer import run as run_module
from academicodec.tokenizer.decode import decode_codes
from academicodec.tokenizer.readers import CodesDataset, iter_parquet, iter_shar
from academicodec.tokenizer.run import TokenizeSettings, tokenize
from tests.helpers import plant_garbage, run_cli

ALL = TokenizeSettings(formats=("webdataset", "shar", "parquet"), items_per_shard=4, workers=0)


def _codes(folder: Path, reader=iter_shar) -> dict[str, np.ndarray]:
    return {meta["id"]: codes for codes, _, meta in reader(folder)}


def _webdataset_codes(folder: Path) -> dict[str, np.ndarray]:
    return {meta["id"]: codes for codes, _, meta in CodesDataset(folder, rank=0, world_size=1)}


@pytest.fixture(scope="module")
def tokenized(corpus: Path, model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tokenized")
    tokenize(model_dir, [corpus], out, ALL)
    return out


def test_every_item_once_in_every_format(tokenized: Path, corpus: Path, model_dir: Path) -> None:
    cuts = CutSet.from_file(next(corpus.glob("*_cuts_*"))).to_eager()
    model = load_codec(model_dir)
    webdataset = _webdataset_codes(tokenized)
    shar = {meta["id"]: codes for codes, _, meta in iter_shar(tokenized)}
    parquet = {meta["id"]: codes for codes, _, meta in iter_parquet(tokenized)}
    assert sorted(webdataset) == sorted(shar) == sorted(parquet) == sorted(c.id for c in cuts)
    for cut in cuts:
        samples = round(cut.duration * model.sample_rate)
        codes = webdataset[cut.id]
        assert codes.dtype == np.int16 and codes.shape[1] == model.num_codebooks
        assert abs(codes.shape[0] - math.ceil(samples / model.hop_length)) <= 0
        assert codes.min() >= 0 and codes.max() < model.codebook_size
        assert np.array_equal(codes, shar[cut.id]) and np.array_equal(codes, parquet[cut.id])
    index = json.loads((tokenized / "index.json").read_text())
    assert index["totals"]["items"] == len(cuts)
    assert index["checkpoint_sha256"] and index["frame_rate"] == 50


def test_outputs_load_with_their_own_libraries(tokenized: Path, tmp_path: Path) -> None:
    import datasets
    import webdataset as wds

    cuts = list(CutSet.from_shar(in_dir=tokenized / "shar"))
    assert cuts[0].load_codes().shape[1] == 4
    assert cuts[0].codes.frame_shift == pytest.approx(1 / 50)
    urls = sorted(str(p) for p in (tokenized / "webdataset").glob("*.tar"))
    samples = list(wds.WebDataset(urls, shardshuffle=False, empty_check=False).decode())
    assert len(samples) == 14 and samples[0]["codes.npy"].shape[1] == 4
    files = sorted(str(p) for p in (tokenized / "parquet").glob("*.parquet"))
    table = datasets.load_dataset(
        "parquet", data_files=files, split="train", cache_dir=str(tmp_path)
    )
    assert isinstance(table.features["codes"], datasets.Array2D) and len(table) == 14


def test_batched_equals_one_item_per_batch(tokenized: Path, corpus, model_dir, tmp_path) -> None:
    single = TokenizeSettings(batch_seconds=0, workers=0, items_per_shard=4)
    tokenize(model_dir, [corpus], tmp_path, single)
    batched, alone = _webdataset_codes(tokenized), _webdataset_codes(tmp_path)
    equal = total = 0
    for key, codes in batched.items():
        assert codes.shape == alone[key].shape
        equal += int((codes == alone[key]).sum())
        total += codes.size
    assert equal / total >= 0.999


def test_killed_run_resumes_to_identical_output(
    tokenized: Path, corpus: Path, model_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    real, calls = run_module._encode_window, []

    def dies_on_second(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(run_module, "_encode_window", dies_on_second)
    with pytest.raises(KeyboardInterrupt):
        tokenize(model_dir, [corpus], tmp_path, ALL)
    monkeypatch.setattr(run_module, "_encode_window", real)
    tokenize(model_dir, [corpus], tmp_path, ALL)
    mine = json.loads((tmp_path / "index.json").read_text())
    reference = json.loads((tokenized / "index.json").read_text())
    assert mine["formats"] == reference["formats"]  # same files, same sha256


def _rank(rank: int, port: int, corpus: str, model: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    tokenize(model, [corpus], out, ALL, wait_timeout=120)
    dist.destroy_process_group()


def test_two_ranks_equal_one_process(tokenized: Path, corpus, model_dir, tmp_path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = (port, str(corpus), str(model_dir), str(tmp_path))
    mp.start_processes(_rank, args=args, nprocs=2, start_method="spawn")
    index = json.loads((tmp_path / "index.json").read_text())
    assert {s["rank"] for s in index["formats"]["webdataset"]} == {0, 1}
    two, one = _webdataset_codes(tmp_path), _webdataset_codes(tokenized)
    assert sorted(two) == sorted(one)
    assert all(np.array_equal(two[k], one[k]) for k in one)


def test_text_tokens_bad_audio_and_decode(corpus: Path, model_dir: Path, tmp_path: Path) -> None:
    from academicodec.tokenizer.text import train_text_model

    text_model = train_text_model([corpus], tmp_path / "spm", vocab_size=60)
    broken = tmp_path / "broken"
    sf.write(broken / "ok.wav" if broken.mkdir() is None else None, np.zeros(8000), 16000)
    plant_garbage(broken / "bad.wav")
    out = tmp_path / "out"
    tokenize(model_dir, [corpus, broken], out, ALL, text_model=text_model)
    items = {meta["id"]: (codes, tokens, meta) for codes, tokens, meta in iter_parquet(out)}
    assert "broken-ok" in items and "broken-bad" not in items  # ids: the folder's name first
    with_text = [t for _, t, m in items.values() if m["text"]]
    assert with_text and all(len(t) > 0 and all(isinstance(i, int) for i in t) for t in with_text)
    report = json.loads((out / "tokenize_report.json").read_text())
    assert any(
        "bad.wav" in s["id"] and "unreadable audio" in s["reason"] for s in report["skipped"]
    )

    written = decode_codes(out, tmp_path / "wav", model_dir, ids=["broken-ok"])
    audio, rate = sf.read(written[0])
    assert rate == 16000 and len(audio) == 8000  # the original length at the model rate

    # The bar moves a batch at a time (item by item, its first estimate - one item per
    # batch time - froze on screen as an ETA of minutes for a job of seconds).
    updates: list[int] = []

    class Bar:
        def update(self, n: int = 1) -> None:
            updates.append(n)

        def close(self) -> None:
            return None

    written = decode_codes(out, tmp_path / "all", model_dir, progress=lambda total, _: Bar())
    assert sum(updates) == len(written) == len(items) > 1 and updates == [len(items)], updates


def test_cli_errors_are_one_line(model_dir: Path, tmp_path: Path) -> None:
    result = run_cli(
        "tokenize", str(tmp_path / "missing"), str(tmp_path / "o"), "-m", str(model_dir)
    )
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "missing does not exist" in result.stderr
    result = run_cli(
        "tokenize", str(tmp_path), str(tmp_path / "o"), "-m", str(model_dir), "--format", "csv"
    )
    assert result.returncode == 2 and "--format" in result.stderr


@pytest.mark.slow
def test_ten_minutes_encode_in_chunks_with_bounded_memory(model_dir: Path, tmp_path) -> None:
    from academicodec.memory import RssSampler

    source = tmp_path / "long"
    source.mkdir()
    rng = np.random.default_rng(0)
    sf.write(source / "lecture.wav", rng.normal(0, 0.1, 16000 * 600).astype(np.float32), 16000)
    settings = TokenizeSettings(workers=0, max_chunk_seconds=60)
    with RssSampler() as rss:
        tokenize(model_dir, [source], tmp_path / "out", settings)
    codes = _webdataset_codes(tmp_path / "out")["long-lecture"]
    assert codes.shape == (600 * 50, 4)
    assert rss.growth < 500, f"peak RSS grew by {rss.growth:.0f} MB"


def test_docs_loading_snippet_runs(tokenized: Path, tmp_path: Path, monkeypatch) -> None:
    """The 'Loading the codes for training' example in docs/tokenize.md, run as written."""
    from tests.helpers import REPO

    text = (REPO / "docs" / "tokenize.md").read_text()
    section = text.split("## Loading the codes for training", 1)[1]
    snippet = section.split("```python", 1)[1].split("```", 1)[0]
    (tmp_path / "codes").symlink_to(tokenized)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    scope: dict = {}
    exec(compile(snippet, "docs/tokenize.md", "exec"), scope)
    assert scope["codes"].shape[1] == 4 and scope["ds"].features["codes"].dtype == "int16"
