"""Every misuse of issue 15, run through the CLI as a user would: exit 2, one line naming
the file or option at fault, nothing written outside OUT, no half-made OUT left behind.

Most commands run in-process (``main()`` with ``sys.argv``), which costs no interpreter
start; the ones that depend on the process environment (SLURM variables) run as
subprocesses.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from academicodec.cli import main
from academicodec.manifests.synthetic import make_folder
from academicodec.models import build_codec
from academicodec.tokenizer.readers import iter_parquet
from tests.helpers import run_cli


def _snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _messages(err: str) -> list[str]:
    """stderr without progress bars (tqdm's lines, which a terminal redraws in place)."""
    lines = [line.split("\r")[-1] for line in err.splitlines()]
    return [line for line in lines if line.strip() and not re.search(r"\d+/\d+ \[", line)]


def run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    """``academicodec ARGS`` in this process: (exit code, stdout, stderr)."""
    argv = sys.argv
    sys.argv = ["academicodec", *map(str, args)]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = argv
    out, err = capsys.readouterr()
    return code, out, err


def refused(
    capsys: pytest.CaptureFixture[str], world: dict[str, Path], out: Path | None,
    *args: str | Path, names: str,
) -> str:  # fmt: skip
    """Run a command that must fail: exit 2, one line naming ``names``, no file outside
    ``out`` changed, ``out`` not left behind if the command made it."""
    existed = out is not None and out.exists()
    before = _snapshot(world["root"])
    code, _, err = run(capsys, *args)
    lines = _messages(err)
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert names in lines[0], lines[0]
    after = _snapshot(world["root"])
    if out is not None and not existed:
        assert not out.exists(), f"{out} left behind"
    assert before == after, "a file outside OUT changed"
    return lines[0]


# --- silent damage ------------------------------------------------------------------------


def test_forgotten_out_never_writes_into_another_stages_folder(capsys, world) -> None:
    a, b = world["a"], world["b"]
    refused(
        capsys,
        world,
        None,
        "shard",
        a,
        b,
        "--sample-rate",
        "16000",
        names=f"OUT {b} holds manifests",
    )
    refused(
        capsys,
        world,
        None,
        "tokenize",
        a,
        b,
        "-m",
        world["model_a"],
        names=f"OUT {b} holds manifests",
    )
    refused(
        capsys, world, None, "eval", a, b, "-m", world["model_a"], names=f"OUT {b} holds manifests"
    )
    refused(
        capsys,
        world,
        None,
        "tokenize",
        a,
        world["shards"],
        "-m",
        world["model_a"],
        names="holds shards",
    )
    refused(
        capsys,
        world,
        None,
        "eval",
        a,
        world["model_a"],
        "-m",
        world["model_a"],
        names="a codec export",
    )
    refused(
        capsys, world, None, "shard", a, world["root"], "-r", "16000", names="overlaps the input"
    )


def test_tokenize_refuses_to_mix_models_then_overwrite_removes_stale_formats(
    capsys, world, tmp_path
) -> None:
    codes = tmp_path / "codes"
    code, _, err = run(capsys, "tokenize", world["shards"], codes, "-m", world["model_a"],
                       "--format", "webdataset,shar,parquet")  # fmt: skip
    assert code == 0, err
    line = refused(
        capsys, world, None, "tokenize", world["shards"], codes, "-m", world["model_b"],
        "--format", "webdataset", names="--overwrite",
    )  # fmt: skip
    assert str(codes) in line
    code, _, err = run(capsys, "tokenize", world["shards"], codes, "-m", world["model_b"],
                       "--format", "webdataset", "--overwrite")  # fmt: skip
    assert code == 0, err
    assert not (codes / "parquet").exists() and not (codes / "shar").exists()
    index = (codes / "index.json").read_text()
    assert str(world["model_b"]) in index and '"parquet"' not in index


def test_prepare_refuses_stale_splits_then_overwrite_removes_them(capsys, world, tmp_path) -> None:
    out = tmp_path / "manifests"
    assert run(capsys, "prepare", "folder", world["root"] / "src_a", out)[0] == 0
    stale = out / "src_a_cuts_test-clean.jsonl.gz"
    stale.write_bytes((out / "src_a_cuts_all.jsonl.gz").read_bytes())
    refused(capsys, world, None, "prepare", "folder", world["root"] / "src_a", out,
            names="src_a_cuts_test-clean.jsonl.gz")  # fmt: skip
    assert stale.exists()
    code, _, err = run(capsys, "prepare", "folder", world["root"] / "src_a", out, "--overwrite")
    assert code == 0, err
    assert not stale.exists()


@pytest.mark.parametrize("command", ["shard", "tokenize"])
def test_a_stray_slurm_environment_says_what_it_waits_for_and_gives_up(
    world, tmp_path, command
) -> None:
    out = tmp_path / "out"
    args = (
        ["shard", str(world["a"]), str(out), "-r", "16000", "--samples-per-shard", "2"]
        if command == "shard"
        else ["tokenize", str(world["shards"]), str(out), "-m", str(world["model_a"]),
              "--items-per-shard", "2"]
    )  # fmt: skip
    env = {"SLURM_NTASKS": "2", "SLURM_PROCID": "0", "ACADEMICODEC_WAIT_SECONDS": "2"}
    result = run_cli(*args, env=env)
    assert result.returncode == 2, result.stderr
    lines = _messages(result.stderr)
    assert len(lines) == 2, result.stderr
    assert "waiting for" in lines[0] and "SLURM_NTASKS=2" in lines[0]
    assert lines[-1].startswith("error: gave up waiting") and "SLURM_NTASKS=2" in lines[-1]


def test_decode_refuses_another_model_unless_forced(capsys, world, tmp_path) -> None:
    out = tmp_path / "wav"
    refused(capsys, world, out, "decode", world["codes"], out, "-m", world["model_b"],
            names="--force")  # fmt: skip
    code, _, err = run(capsys, "decode", world["codes"], out, "-m", world["model_b"], "--force")
    assert code == 0, err
    code, _, err = run(capsys, "decode", world["codes"], tmp_path / "ok", "-m", world["model_a"])
    assert code == 0, err
    # named by item id (a folder corpus id keeps its sub-folders), not by tar key
    ids = {meta["id"] for _, _, meta in iter_parquet(world["codes"])}
    written = {
        str(p.relative_to(tmp_path / "ok").with_suffix(""))
        for p in (tmp_path / "ok").rglob("*.wav")
    }
    assert written == ids


def test_prepare_folder_without_audio_is_an_error(capsys, world, tmp_path) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.txt").write_text("hello")
    (notes / "b.csv").write_text("x,y")
    out = tmp_path / "out"
    refused(capsys, world, out, "prepare", "folder", notes, out, names="holds no audio files")


def test_files_honour_the_umask(world, tmp_path) -> None:
    """Every file the stages wrote (under the suite's umask) is 0666 less the umask, as an
    ordinary open() makes it - atomic writes included (mkstemp alone gives 0600)."""
    mask = os.umask(0o022)
    os.umask(mask)
    expected = 0o666 & ~mask
    for folder in ("a", "shards", "model_a", "codes"):
        for path in world[folder].rglob("*"):
            if path.is_file() and not path.name.startswith("."):
                assert stat.S_IMODE(path.stat().st_mode) == expected, path
    from academicodec.files import atomic_write_bytes

    old = os.umask(0o027)
    try:
        atomic_write_bytes(tmp_path / "x.json", b"{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "x.json").stat().st_mode) == 0o640


# --- tracebacks where one line is promised ---------------------------------------------------


def test_bad_codebook_counts_and_devices_are_one_line(capsys, world, tmp_path) -> None:
    out = tmp_path / "out"
    base = (world["shards"], out, "-m", world["model_a"])
    for command in ("tokenize", "eval"):
        refused(
            capsys,
            world,
            out,
            command,
            *base,
            "--n-q",
            "9",
            names="--n-q 9: this model takes [2, 4]",
        )
        refused(capsys, world, out, command, *base, "--n-q", "3", names="--n-q 3")
        refused(capsys, world, out, command, *base, "--n-q", "0", names="'--n-q'")
        refused(capsys, world, out, command, *base, "--device", "gpu", names="--device gpu")
        if not torch.cuda.is_available():
            refused(capsys, world, out, command, *base, "--device", "cuda", names="--device cuda")


def test_files_where_folders_belong_and_foreign_models(capsys, world, tmp_path) -> None:
    regular = tmp_path / "file"
    regular.write_text("x")
    readme = tmp_path / "README.md"
    readme.write_text("# notes")
    random_bin = tmp_path / "random.bin"
    random_bin.write_bytes(np.random.default_rng(0).bytes(4096))
    refused(capsys, world, None, "train", "--preset", "tiny_hificodec_16k", "--data",
            world["shards"], "--out", regular, names=f"OUT {regular} is a file")  # fmt: skip
    refused(capsys, world, None, "decode", world["codes"], regular, "-m", world["model_a"],
            names=f"OUT {regular} is a file")  # fmt: skip
    out = tmp_path / "out"
    refused(capsys, world, out, "tokenize", world["shards"], out, "-m", world["model_a"],
            "--text-model", readme, names="--text-model")  # fmt: skip
    line = refused(capsys, world, out, "tokenize", world["shards"], out, "-m", random_bin,
                   names="not a PyTorch checkpoint")  # fmt: skip
    assert "weights_only=False" not in line
    refused(capsys, world, None, "train", "--preset", "tiny_hificodec_16k", "--data",
            world["shards"], "--out", tmp_path / "run", "--set", "train.lrr=1e-4",
            names="--set train.lrr")  # fmt: skip


def test_export_into_a_file(capsys, world, tmp_path, monkeypatch) -> None:
    from academicodec.training import export as export_module

    regular = tmp_path / "file"
    regular.write_text("x")
    torch.manual_seed(0)
    model = build_codec("tiny_hificodec_16k")

    class State:
        config = __import__("academicodec.config", fromlist=["to_dict"]).to_dict(model.config)
        generator = model.state_dict()
        step, data = 0, {}

    monkeypatch.setattr(export_module, "load_state_file", lambda path: State)
    run_file = tmp_path / "last.pt"
    run_file.write_bytes(b"")
    refused(capsys, world, None, "export", run_file, regular, names=f"OUT {regular} is a file")


# --- accepted without a word ------------------------------------------------------------------


def test_options_out_of_range_are_refused(capsys, world, tmp_path) -> None:
    out = tmp_path / "out"
    refused(capsys, world, out, "eval", world["shards"], out, "-m", world["model_a"],
            "--max-items", "0", names="'--max-items'")  # fmt: skip
    refused(capsys, world, out, "tokenize", world["shards"], out, "-m", world["model_a"],
            "--batch-seconds", "-1", names="'--batch-seconds'")  # fmt: skip
    refused(capsys, world, None, "train", "--preset", "tiny_hificodec_16k", "--data",
            world["shards"], "--out", tmp_path / "run", "--precision", "fp16",
            names="'--precision'")  # fmt: skip
    model = tmp_path / "text" / "spm"
    refused(capsys, world, None, "text", "train", world["a"], model, "--vocab-size", "100000",
            names="--vocab-size 100000")  # fmt: skip


def test_decode_names_missing_ids(capsys, world, tmp_path) -> None:
    out = tmp_path / "wav"
    refused(capsys, world, out, "decode", world["codes"], out, "-m", world["model_a"],
            "--ids", "nosuchid", names="nosuchid")  # fmt: skip


def test_readme_beside_audio_is_not_a_fault_and_stereo_counts_once(capsys, tmp_path) -> None:
    src = tmp_path / "src"
    make_folder(src, 3, durations=(0.4, 0.6))
    (src / "spk0" / "README.txt").write_text("recorded in 2026")
    stereo = np.stack([np.sin(np.arange(8000) / 9), np.cos(np.arange(8000) / 7)], 1) * 0.2
    sf.write(src / "spk1" / "stereo.wav", stereo, 16000)
    code, out, err = run(capsys, "prepare", "folder", src, tmp_path / "m", "--strict")
    assert code == 0, err + out
    # stereo.wav (2 channels, and no transcript) and one clip without a transcript
    assert "2 file(s) kept with a warning" in " ".join(out.split())


def test_silent_reference_metrics_are_undefined_not_zero() -> None:
    from academicodec.evaluation import metrics

    silent, noise = np.zeros(16000, np.float32), np.random.default_rng(0).normal(0, 0.1, 16000)
    for score in (
        lambda: metrics.stoi(silent, noise, 16000),
        lambda: metrics.si_sdr(silent, noise),
    ):
        with pytest.raises(metrics.MetricError, match="silent reference"):
            score()


def test_flags_show_no_bool_placeholder(capsys) -> None:
    code, out, _ = run(capsys, "presets", "--help")
    assert code == 0 and "<bool>" not in out and "--json" in out


# --- missing -----------------------------------------------------------------------------------


def test_info_on_every_kind_of_output(capsys, world, tmp_path) -> None:
    expectations = {
        "a": ("kind: prepare", "corpus: src_a"),
        "shards": ("kind: shard", "sample_rate: 16000"),
        "codes": ("kind: tokenize", "num_codebooks: 4"),
        "model_a": ("kind: export", "preset: tiny_hificodec_16k"),
    }
    for name, needles in expectations.items():
        code, out, err = run(capsys, "info", world[name])
        assert code == 0, err
        for needle in needles:
            assert needle in out, (name, out)
    code, out, _ = run(capsys, "info", world["codes"], "--items", "--json")
    assert code == 0 and '"item_shapes"' in out
    code, out, err = run(capsys, "eval", world["shards"], tmp_path / "eval", "-m", world["model_a"],
                         "--max-items", "2")  # fmt: skip
    assert code == 0, err
    code, out, _ = run(capsys, "info", tmp_path / "eval")
    assert code == 0 and "kind: eval" in out
    refused(capsys, world, None, "info", tmp_path, names="holds no output of ours")


def test_ctrl_c_says_what_is_kept(capsys, monkeypatch, tmp_path) -> None:
    import academicodec.info as info_module

    def interrupted(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(info_module, "describe", interrupted)
    code, _, err = run(capsys, "info", tmp_path)
    assert code == 130 and "interrupted: nothing was written" in err  # info writes nothing
