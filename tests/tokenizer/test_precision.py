"""Codes are a contract (issue 13): the precision they were made at is recorded, fp32 codes
are bit-identical across runs, batch sizes and the accelerator-style one-call path, bf16's
agreement with fp32 is measured, and a resume never mixes precisions."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from academicodec.errors import UserError
from academicodec.evaluation import evaluate
from academicodec.models import build_codec
from academicodec.models.precision import numerics
from academicodec.tokenizer.index import CodesIndex
from academicodec.tokenizer.readers import CodesDataset
from academicodec.tokenizer.run import TokenizeSettings, tokenize
from tests.helpers import run_cli


def _codes(folder: Path) -> dict[str, np.ndarray]:
    return {meta["id"]: codes for codes, _, meta in CodesDataset(folder, rank=0, world_size=1)}


def _agreement(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    assert sorted(a) == sorted(b)
    assert all(a[k].shape == b[k].shape for k in a)
    return sum(int((a[k] == b[k]).sum()) for k in a) / sum(a[k].size for k in a)


@pytest.fixture(scope="module")
def fp32(corpus: Path, model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fp32")
    tokenize(model_dir, [corpus], out, TokenizeSettings(workers=0, items_per_shard=5))
    return out


def test_index_records_how_codes_were_made(fp32: Path) -> None:
    index = json.loads((fp32 / "index.json").read_text())
    assert index["precision"] == "fp32" and index["compile"] is False
    assert index["device_type"] == "cpu" and index["torch_version"] == torch.__version__


def test_fp32_is_bit_identical_across_runs_batches_and_one_call(
    fp32: Path, corpus: Path, model_dir: Path, tmp_path: Path
) -> None:
    again = tmp_path / "again"
    tokenize(model_dir, [corpus], again, TokenizeSettings(workers=2, items_per_shard=5))
    first, second = (json.loads((p / "index.json").read_text()) for p in (fp32, again))
    assert first["formats"] == second["formats"]  # same files, same sha256
    reference = _codes(fp32)
    for name, settings in {
        "alone": TokenizeSettings(workers=0, batch_seconds=0),
        "big-batches": TokenizeSettings(workers=0, batch_seconds=600),
        # the accelerator path, forced on CPU: one padded call a batch, lengths bucketed
        "one-call": TokenizeSettings(workers=0, batching="one-call"),
        "one-call-3s": TokenizeSettings(workers=1, batching="one-call", bucket_seconds=3),
    }.items():
        tokenize(model_dir, [corpus], tmp_path / name, settings)
        assert _agreement(_codes(tmp_path / name), reference) == 1.0, name


def test_bf16_agreement_with_fp32_is_measured(
    fp32: Path, corpus: Path, model_dir: Path, tmp_path: Path, capsys
) -> None:
    tokenize(model_dir, [corpus], tmp_path / "bf16", TokenizeSettings(precision="bf16"))
    index = json.loads((tmp_path / "bf16" / "index.json").read_text())
    assert (
        index["precision"] == "bf16"
        and index["plan"] != json.loads((fp32 / "index.json").read_text())["plan"]
    )
    agreement = _agreement(_codes(tmp_path / "bf16"), _codes(fp32))
    with capsys.disabled():
        print(f"\nbf16 vs fp32 codes, tiny_hificodec_16k (random weights): {agreement:.2%}")
    assert 0.8 < agreement < 1.0  # bf16 really ran (codes differ) yet mostly agrees

    summary = evaluate(model_dir, [corpus], tmp_path / "eval", [2], max_items=4, precision="bf16")
    level = summary.levels["2"]
    assert summary.precision == "bf16" and 0.8 < level.codes_equal_to_fp32 <= 1.0
    assert "Codes made at bf16" in (tmp_path / "eval" / "report.md").read_text()
    result = run_cli(
        "eval", str(corpus), str(tmp_path / "eval-cli"), "-m", str(model_dir),
        "--max-items", "2", "--precision", "bf16",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "codes = fp32's" in result.stdout


def test_a_resume_never_mixes_precisions(
    fp32: Path, corpus: Path, model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "codes"
    tokenize(model_dir, [corpus], out, TokenizeSettings(workers=0, items_per_shard=5))
    with pytest.raises(UserError, match="other"):
        tokenize(model_dir, [corpus], out, TokenizeSettings(precision="bf16", items_per_shard=5))
    # speed-only settings may change between a run and its resumption
    faster = TokenizeSettings(workers=1, items_per_shard=5, batch_seconds=5, batching="one-call")
    resumed = tokenize(model_dir, [corpus], out, faster)
    assert resumed is not None and resumed.formats == CodesIndex.read(fp32 / "index.json").formats


def test_compile_keeps_the_codes(
    fp32: Path, corpus: Path, model_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    """--compile goes through torch.compile (Dynamo traces the length-aware encoder); the
    eager backend keeps this test fast - inductor takes minutes per shape on 2 CPU cores,
    and its speed is gpu_check's to measure."""
    calls, real = [], torch.compile

    def compile_eagerly(function, backend, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(backend)
        return real(function, backend="eager", **kwargs)

    monkeypatch.setattr(torch, "compile", compile_eagerly)
    settings = TokenizeSettings(workers=0, compile=True, batching="one-call", items_per_shard=5)
    tokenize(model_dir, [corpus], tmp_path / "compiled", settings)
    assert calls == ["inductor"]
    assert json.loads((tmp_path / "compiled" / "index.json").read_text())["compile"] is True
    assert _agreement(_codes(tmp_path / "compiled"), _codes(fp32)) == 1.0


def test_numerics_switches_are_set_and_restored() -> None:
    backends = torch.backends
    switches = [backends.cuda.matmul, backends.cudnn.conv, backends.mkldnn.matmul]
    before = [s.fp32_precision for s in switches]
    autotune = torch.backends.cudnn.benchmark
    with numerics("fp32", "cpu", autotune=True):
        assert [s.fp32_precision for s in switches] == ["ieee"] * 3  # TF32 off on CUDA too
        assert not torch.is_autocast_enabled("cpu") and not torch.backends.cudnn.benchmark
    with numerics("tf32", "cpu", autotune=True):
        assert [s.fp32_precision for s in switches] == ["tf32", "tf32", "ieee"]
        assert torch.backends.cudnn.benchmark  # autotuned kernels: few shapes, not fp32
    with numerics("bf16", "cpu"):  # shapes not bounded by the caller: never autotuned
        assert not torch.backends.cudnn.benchmark
    with numerics("bf16", "cpu"):
        assert torch.is_autocast_enabled("cpu")
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16
    assert [s.fp32_precision for s in switches] == before
    assert torch.backends.cudnn.benchmark == autotune
    with pytest.raises(UserError, match="--precision"):
        TokenizeSettings(precision="fp16")


def test_bf16_reaches_every_cpu_group_thread() -> None:
    """Autocast is thread-local: concurrent groups must run at the caller's precision."""
    from academicodec.models.scheduling import GroupRunner

    torch.manual_seed(0)
    model = build_codec("tiny_hificodec_16k").eval()
    wav = torch.randn(4, 1, 80000) * 0.1  # long enough for one group a row
    lengths = torch.tensor([80000, 70000, 80000, 40000])
    threads = torch.get_num_threads()
    with torch.inference_mode(), numerics("bf16", "cpu"):
        serial = model.encode(wav, lengths)
        torch.set_num_threads(2)
        try:
            with GroupRunner() as runner:
                assert runner.pool is not None
                threaded = model.encode(wav, lengths, runner=runner)
        finally:
            torch.set_num_threads(threads)
    assert torch.equal(serial, threaded)
    with torch.inference_mode():
        assert not torch.equal(model.encode(wav, lengths), serial)  # bf16 was really on


def test_files_do_not_depend_on_batching(corpus: Path, model_dir: Path, tmp_path: Path) -> None:
    """Batching is a speed-only setting (a resume may change it), so the files it writes must
    be byte-identical, not just hold equal codes - including each array's memory order."""
    formats = ("webdataset", "shar", "parquet")
    runs = {
        "groups": TokenizeSettings(formats, items_per_shard=5, workers=0),
        "alone": TokenizeSettings(formats, items_per_shard=5, workers=0, batch_seconds=0),
        "one-call": TokenizeSettings(formats, items_per_shard=5, workers=0, batching="one-call"),
        "small-batches": TokenizeSettings(formats, items_per_shard=5, workers=0, batch_seconds=3),
    }
    indexes = {name: tokenize(model_dir, [corpus], tmp_path / name, s) for name, s in runs.items()}
    reference = indexes["groups"]
    assert reference is not None
    for name, index in indexes.items():
        assert index is not None and index.formats == reference.formats, name
