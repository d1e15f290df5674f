"""Issue 23: one OUT rule for every stage, refusals that say what differs, identity not
spelling, hints that work when followed, empty work is an error, ids that never collide.

Each test makes the user's exact mistake through the CLI (``refused``: exit 2, one line
naming what differs, nothing outside OUT changed), then follows the advice it got.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from lhotse import CutSet

from academicodec.manifests import prepare
from academicodec.manifests.synthetic import make_folder
from academicodec.models import build_codec, save_codec
from academicodec.pipelines import ShardSettings, write_shards
from academicodec.tokenizer.run import TokenizeSettings, tokenize
from tests.helpers import REPO, run_cli
from tests.integration.test_misuse import _messages, refused, run

FIXTURES = REPO / "tests" / "fixtures" / "pretrained"
TINY = {"train.batch_size": 2, "train.segment_length": 3200}


def ok(capsys, *args: str | Path) -> str:
    code, out, err = run(capsys, *args)
    assert code == 0, err
    return out


# --- one OUT rule, a test per stage ------------------------------------------------------


def test_prepare(capsys, world, tmp_path) -> None:
    out = tmp_path / "m"
    ok(capsys, "prepare", "folder", world["root"] / "src_a", out)
    line = refused(capsys, world, None, "prepare", "folder", world["root"] / "src_a", out,
                   "--language", "en", names="--language: (none) -> en")  # fmt: skip
    assert "--overwrite" in line
    refused(capsys, world, None, "prepare", "folder", world["root"] / "src_b", out,
            names="source: ")  # fmt: skip
    ok(capsys, "prepare", "folder", world["root"] / "src_b", out, "--overwrite")
    assert sorted(p.name for p in out.glob("*.jsonl.gz")) == [
        f"src_b_{kind}_all.jsonl.gz" for kind in ("cuts", "recordings", "supervisions")
    ]  # nothing of src_a's manifests is left
    ok(capsys, "prepare", "folder", world["root"] / "src_b", out)  # the same again: fine


def test_shard(capsys, world, tmp_path) -> None:
    out = tmp_path / "s"
    ok(capsys, "shard", world["a"], out, "-r", "16000", "--samples-per-shard", "2")
    refused(capsys, world, None, "shard", world["a"], out, "-r", "16000",
            "--samples-per-shard", "3", names="--samples-per-shard: 2 -> 3")  # fmt: skip
    line = refused(capsys, world, None, "shard", world["b"], out, "-r", "16000",
                   "--samples-per-shard", "2", names="inputs: 3 manifests ")  # fmt: skip
    assert "-> 3 manifests " in line  # a prepare folder: cuts, recordings, supervisions
    ok(capsys, "shard", world["b"], out, "-r", "16000", "--samples-per-shard", "2", "--overwrite")
    index = json.loads((out / "index.json").read_text())
    assert index["totals"]["samples"] == 4
    assert sorted(p.name for p in out.glob("shard-*.tar")) == [s["name"] for s in index["shards"]]


def test_import_and_export(capsys, world, tmp_path) -> None:
    out = tmp_path / "model"
    ok(capsys, "import", FIXTURES / "meta_encodec_small.th", out)
    ok(capsys, "import", FIXTURES / "meta_encodec_small.th", out)  # the same weights: fine
    line = refused(capsys, world, None, "import", FIXTURES / "dac_16khz_small.pth", out,
                   names="weights: sha256 ")  # fmt: skip
    assert "--overwrite" in line
    ok(capsys, "import", FIXTURES / "dac_16khz_small.pth", out, "--overwrite")
    config = (out / "config.yaml").read_text()
    assert "dac_16khz_small.pth" in config and "family: dac" in config
    assert sorted(p.name for p in out.iterdir()) == [
        ".plan.json",
        "config.yaml",
        "model.safetensors",
    ]


def test_tokenize(capsys, world) -> None:
    codes = world["codes"]
    line = refused(capsys, world, None, "tokenize", world["shards"], codes, "-m", world["model_a"],
                   "--n-q", "2", "--workers", "0", names="--n-q: 4 -> 2")  # fmt: skip
    assert "--overwrite" in line
    refused(capsys, world, None, "tokenize", world["shards"], codes, "-m", world["model_b"],
            "--workers", "0", names="model: sha256 ")  # fmt: skip


def test_tokenize_by_another_path_resumes(capsys, world, tmp_path, monkeypatch) -> None:
    """Identity, not spelling: the same shards and model by relative paths are the same."""
    out = tmp_path / "codes"
    tokenize(world["model_a"], [world["shards"]], out, TokenizeSettings(workers=0))
    before = (out / "index.json").read_text()
    monkeypatch.chdir(world["root"])
    ok(capsys, "tokenize", "shards", out, "-m", "model_a", "--workers", "0")
    assert json.loads((out / "index.json").read_text())["plan"] == json.loads(before)["plan"]


def test_decode(capsys, world, tmp_path) -> None:
    out = tmp_path / "wav"
    ok(capsys, "decode", world["codes"], out, "-m", world["model_a"])
    refused(capsys, world, None, "decode", world["codes"], out, "-m", world["model_b"], "--force",
            names="model: sha256 ")  # fmt: skip
    some = sorted(p.stem for p in out.glob("*.wav"))[:1]
    refused(capsys, world, None, "decode", world["codes"], out, "-m", world["model_a"],
            "--ids", some[0], names="--ids: (none) -> ")  # fmt: skip
    ok(capsys, "decode", world["codes"], out, "-m", world["model_a"], "--ids", some[0],
       "--overwrite")  # fmt: skip
    assert sorted(p.stem for p in out.glob("*.wav")) == some  # the old files are gone


def test_decode_batched_equals_one_at_a_time(capsys, world, tmp_path) -> None:
    import academicodec.tokenizer.decode as decode_module

    batched, alone = tmp_path / "batched", tmp_path / "alone"
    ok(capsys, "decode", world["codes"], batched, "-m", world["model_a"])
    original = decode_module.READ_AHEAD
    decode_module.READ_AHEAD = 1
    try:
        ok(capsys, "decode", world["codes"], alone, "-m", world["model_a"])
    finally:
        decode_module.READ_AHEAD = original
    names = sorted(p.name for p in alone.glob("*.wav"))
    assert names == sorted(p.name for p in batched.glob("*.wav")) and len(names) == 5
    for name in names:
        a, _ = sf.read(alone / name)
        b, _ = sf.read(batched / name)
        assert a.shape == b.shape and abs(a - b).max() <= 1 / 32768


def test_decode_force_with_a_model_that_cannot_decode_is_one_line(capsys, world, tmp_path) -> None:
    small = tmp_path / "small"
    torch.manual_seed(2)
    save_codec(build_codec("tiny_encodec_16k", **{"encodec.bandwidths": [0.5, 1.0]}), small)
    refused(capsys, world, tmp_path / "wav", "decode", world["codes"], tmp_path / "wav",
            "-m", small, "--force", names="--force cannot help")  # fmt: skip


def test_eval(capsys, world, tmp_path) -> None:
    out = tmp_path / "eval"
    ok(capsys, "eval", world["shards"], out, "-m", world["model_a"], "--max-items", "2")
    (out / "plots" / "stale.png").write_bytes(b"old run")
    refused(capsys, world, None, "eval", world["shards"], out, "-m", world["model_b"],
            "--max-items", "2", names="model: model ")  # fmt: skip
    ok(capsys, "eval", world["shards"], out, "-m", world["model_b"], "--max-items", "2",
       "--overwrite")  # fmt: skip
    assert not (out / "plots" / "stale.png").exists()  # replaced entirely


def test_text_train(capsys, world, tmp_path) -> None:
    out = tmp_path / "text" / "spm"
    ok(capsys, "text", "train", world["a"], out, "--vocab-size", "40")
    refused(capsys, world, None, "text", "train", world["a"], out, "--vocab-size", "45",
            names="--vocab-size: 40 -> 45")  # fmt: skip
    ok(capsys, "text", "train", world["a"], out, "--vocab-size", "45", "--overwrite")
    ok(capsys, "text", "train", world["a"], out, "--vocab-size", "45")


def test_train_overwrite_starts_over(world, tmp_path) -> None:
    from academicodec.training import RunOptions, train
    from academicodec.training.checkpoint import load_state_file

    options = dict(out=tmp_path / "run", data=world["shards"], workers=0, val_every=0,
                   device="cpu")  # fmt: skip
    train("tiny_hificodec_16k", RunOptions(max_steps=2, **options), TINY)
    (tmp_path / "run" / "train.log").write_text("old run\n")
    state = train("tiny_hificodec_16k", RunOptions(max_steps=1, overwrite=True, **options), TINY)
    assert state.step == 1
    assert load_state_file(tmp_path / "run" / "checkpoints" / "last.pt").step == 1
    assert "old run" not in (tmp_path / "run" / "train.log").read_text()


# --- hints that work when followed -------------------------------------------------------


@pytest.mark.parametrize("command", ["shard", "tokenize"])
def test_the_slurm_give_up_advice_works(world, tmp_path, command) -> None:
    out = tmp_path / "out"
    args = (
        ["shard", str(world["a"]), str(out), "-r", "16000", "--samples-per-shard", "2"]
        if command == "shard"
        else ["tokenize", str(world["shards"]), str(out), "-m", str(world["model_a"]),
              "--items-per-shard", "2", "--workers", "0"]
    )  # fmt: skip
    env = {"SLURM_NTASKS": "2", "SLURM_PROCID": "0", "ACADEMICODEC_WAIT_SECONDS": "2"}
    stray = run_cli(*args, env=env)
    assert stray.returncode == 2
    advice = _messages(stray.stderr)[-1]
    alone = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    extra = ["--overwrite"] if "--overwrite" in advice else []
    assert bool(extra) == (command == "tokenize"), advice
    followed = run_cli(*args, *extra, env=alone)
    assert followed.returncode == 0, followed.stderr


# --- empty or impossible work ------------------------------------------------------------


def test_shard_of_a_moved_corpus_is_an_error(capsys, world, tmp_path) -> None:
    import shutil

    src = tmp_path / "corpus"
    make_folder(src, 3, durations=(0.4, 0.6))
    prepare("folder", src, tmp_path / "m")
    shutil.move(src, tmp_path / "moved")
    out = tmp_path / "shards"
    line = refused(capsys, world, out, "shard", tmp_path / "m", out, "-r", "16000",
                   names="none of the 3 items could be read")  # fmt: skip
    assert "--overwrite into the same manifests folder" in line
    # Following the advice works.
    ok(capsys, "prepare", "folder", tmp_path / "moved", tmp_path / "m", "--overwrite",
       "--name", "corpus")  # fmt: skip
    ok(capsys, "shard", tmp_path / "m", out, "-r", "16000")
    assert json.loads((out / "index.json").read_text())["totals"]["samples"] == 3


def test_every_stage_on_an_empty_shard_set_is_one_line(capsys, world, tmp_path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    index = json.loads((world["shards"] / "index.json").read_text())
    index.update(shards=[], skipped=[])
    (empty / "index.json").write_text(json.dumps(index))
    refused(capsys, world, tmp_path / "c", "tokenize", empty, tmp_path / "c", "-m",
            world["model_a"], names="no audio items")  # fmt: skip
    refused(capsys, world, tmp_path / "e", "eval", empty, tmp_path / "e", "-m",
            world["model_a"], names="no audio items")  # fmt: skip
    refused(capsys, world, tmp_path / "r", "train", "--preset", "tiny_hificodec_16k", "--data",
            empty, "--out", tmp_path / "r", "--workers", "0", names="holds no samples")  # fmt: skip


# --- ids -----------------------------------------------------------------------------------


def test_two_folders_of_the_same_layout_never_collide(capsys, world, tmp_path) -> None:
    for name in ("one", "two"):
        make_folder(tmp_path / name / "wavs", 3, durations=(0.4, 0.6))  # the same layout
    ok(capsys, "prepare", "folder", tmp_path / "one" / "wavs", tmp_path / "m1", "--name", "one")
    ok(capsys, "prepare", "folder", tmp_path / "two" / "wavs", tmp_path / "m2", "--name", "two")
    ok(capsys, "shard", tmp_path / "m1", tmp_path / "m2", tmp_path / "s", "-r", "16000")
    index = json.loads((tmp_path / "s" / "index.json").read_text())
    assert index["totals"]["samples"] == 6 and not index["skipped"]
    cuts = CutSet.from_file(tmp_path / "m2" / "two_cuts_all.jsonl.gz")
    assert all(c.id.startswith("two-") and c.custom["corpus"] == "two" for c in cuts)
    refused(capsys, world, None, "prepare", "folder", tmp_path / "one" / "wavs", tmp_path / "m3",
            "--name", "a b", names="--name 'a b'")  # fmt: skip


def test_ids_keep_letters_of_every_script(capsys, tmp_path) -> None:
    from tests.helpers import write_audio

    for name in ("日本/音声 一.wav", "café.wav", "Ärger.flac"):
        write_audio(tmp_path / "src" / name, 0.4, 16000)
    prepare("folder", tmp_path / "src", tmp_path / "m")
    ids = sorted(c.id for c in CutSet.from_file(tmp_path / "m" / "src_cuts_all.jsonl.gz"))
    assert ids == sorted(["src-日本-音声_一", "src-café", "src-Ärger"])


# --- eval on training data, Ctrl-C ---------------------------------------------------------


@pytest.fixture(scope="module")
def trained(world, tmp_path_factory) -> Path:
    """An export of a 1-step run on ``world``'s shards: it records its training data."""
    from academicodec.training import RunOptions, export_run, train

    root = tmp_path_factory.mktemp("trained")
    options = RunOptions(out=root / "run", data=world["shards"], max_steps=1, workers=0,
                         val_every=0, device="cpu")  # fmt: skip
    train("tiny_hificodec_16k", options, TINY)
    return export_run(root / "run", root / "model")


def test_eval_warns_on_the_models_training_data(capsys, world, trained, tmp_path) -> None:
    model = trained
    assert "step: 1" in (model / "config.yaml").read_text()
    out = ok(capsys, "eval", world["a"], tmp_path / "e1", "-m", model, "--max-items", "1")
    assert "overlap(s) the model's training data" in out
    summary = json.loads((tmp_path / "e1" / "summary.json").read_text())
    assert (
        summary["training_data_overlap"]
        and "Warning" in (tmp_path / "e1" / "report.md").read_text()
    )
    out = ok(capsys, "eval", world["b"], tmp_path / "e2", "-m", model, "--max-items", "1")
    assert "training data" not in out
    assert (
        json.loads((tmp_path / "e2" / "summary.json").read_text())["training_data_overlap"] is None
    )


def test_eval_warns_on_training_audio_given_as_files(  # 35.3
    capsys, world, trained, tmp_path
) -> None:
    """Overlap is a matter of audio: the training clips as a folder, re-encoded to FLAC in
    another folder, warn once each (stdout, not twice); other clips do not."""
    model = trained
    clips = sorted((world["root"] / "src_a").rglob("*.wav"))
    copies = tmp_path / "copies"
    copies.mkdir()
    for number, clip in enumerate(clips[:2]):  # two of the five, renamed, as FLAC
        audio, rate = sf.read(clip, dtype="int16")
        sf.write(copies / f"other-{number}.flac", audio, rate)
    sf.write(copies / "new.wav", np.zeros(8000, dtype="int16") + 100, 16000)
    for folder, expected in ((world["root"] / "src_a", "5 of the 5 items"),
                             (copies, "2 of the 3 items")):  # fmt: skip
        out_dir = tmp_path / f"eval-{folder.name}"
        code, out, err = run(capsys, "eval", folder, out_dir, "-m", model)
        assert code == 0, err
        assert (out + err).count("training audio") == 1, out + err
        assert expected in out and "sample for sample" in out, out
        summary = json.loads((out_dir / "summary.json").read_text())
        assert expected in summary["training_data_overlap"]
    code, out, err = run(capsys, "eval", world["root"] / "src_b", tmp_path / "e3", "-m", model)
    assert code == 0 and "training audio" not in out + err, out + err


def test_ctrl_c_in_training_checkpoints_the_step_it_finished(world, tmp_path, monkeypatch) -> None:
    from academicodec.errors import Interrupted
    from academicodec.training import RunOptions, train
    from academicodec.training.checkpoint import load_state_file
    from academicodec.training.trainer import Trainer

    real = Trainer.train_step

    def step_then_ctrl_c(self, batch):  # type: ignore[no-untyped-def]
        metrics = real(self, batch)
        if self.step == 2:
            os.kill(os.getpid(), signal.SIGINT)  # as the terminal sends it, mid-run
        return metrics

    monkeypatch.setattr(Trainer, "train_step", step_then_ctrl_c)
    options = RunOptions(out=tmp_path / "run", data=world["shards"], max_steps=50, workers=0,
                         val_every=0, ckpt_every=0, device="cpu")  # fmt: skip
    with pytest.raises(Interrupted, match="checkpoint of step 2"):
        train("tiny_hificodec_16k", options, TINY)
    assert load_state_file(tmp_path / "run" / "checkpoints" / "last.pt").step == 2


@pytest.mark.parametrize(
    ("command", "says"),
    [("eval", "keeps nothing"), ("tokenize", "finished code shards are kept")],
)
def test_ctrl_c_says_what_each_stage_keeps(capsys, world, tmp_path, monkeypatch, command, says):
    import academicodec.evaluation as evaluation
    import academicodec.tokenizer.run as tokenizer_run

    def interrupted(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluation, "evaluate", interrupted)
    monkeypatch.setattr(tokenizer_run, "tokenize", interrupted)
    code, _, err = run(capsys, command, world["shards"], tmp_path / "o", "-m", world["model_a"])
    assert code == 130 and says in err


# --- offline pretrained weights ------------------------------------------------------------


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def test_import_a_hf_folder_with_pytorch_model_bin(capsys, world, tmp_path) -> None:
    import shutil

    from safetensors.torch import load_file

    folder = tmp_path / "hf_bin"
    folder.mkdir()
    shutil.copy(FIXTURES / "hf_encodec_small" / "config.json", folder)
    state = load_file(str(FIXTURES / "hf_encodec_small" / "model.safetensors"))
    torch.save(state, folder / "pytorch_model.bin")
    ok(capsys, "import", folder, tmp_path / "from_bin")
    ok(capsys, "import", FIXTURES / "hf_encodec_small", tmp_path / "from_safetensors")
    a, b = _weights(tmp_path / "from_bin"), _weights(tmp_path / "from_safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# kyutai/mimi's config.json as the Hub has it (written by transformers 4.45): RoPE base
# and frame rate at the top level, where transformers 5 writes rope_parameters.
HUB_MIMI_CONFIG = {"rope_theta": 5000.0, "frame_rate": 12.5, "transformers_version": "4.45.0"}


@pytest.mark.parametrize(
    "repo_id, fixture",
    [("facebook/encodec_24khz", "hf_encodec_small"), ("kyutai/mimi", "hf_mimi_small")],
)
def test_import_a_repo_id_from_the_local_hf_cache(
    capsys, world, tmp_path, monkeypatch, repo_id: str, fixture: str
) -> None:
    import shutil

    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    out = tmp_path / "model"
    line = refused(capsys, world, out, "import", repo_id, out,
                   names=f"huggingface-cli download {repo_id}")  # fmt: skip
    assert str(cache) in line
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / "0123abc"
    shutil.copytree(FIXTURES / fixture, snapshot)
    if repo_id == "kyutai/mimi":
        config = json.loads((snapshot / "config.json").read_text())
        del config["rope_parameters"]
        (snapshot / "config.json").write_text(json.dumps({**config, **HUB_MIMI_CONFIG}))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abc")
    ok(capsys, "import", repo_id, out)
    ok(capsys, "import", FIXTURES / fixture, tmp_path / "direct")
    a, b = _weights(out), _weights(tmp_path / "direct")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ours, direct = (
        yaml.safe_load((p / "config.yaml").read_text()) for p in (out, tmp_path / "direct")
    )
    assert ours["origin"]["source"] == repo_id
    assert ours["source"].startswith("hf-") and ours["family"] == direct["family"]
    assert ours["summary"] == direct["summary"]
    assert ours[ours["family"]] == direct[direct["family"]]


def test_our_own_run_or_checkpoint_as_a_model_says_export_first(capsys, world, tmp_path) -> None:
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    state = {"step": 3, "generator": {}, "discriminator": {}, "optimizer_g": {}}
    torch.save(state, run_dir / "checkpoints" / "last.pt")
    for given in (run_dir, run_dir / "checkpoints" / "last.pt"):
        line = refused(capsys, world, tmp_path / "m", "import", given, tmp_path / "m",
                       names=f"academicodec export {run_dir} OUT")  # fmt: skip
        assert line.count("\n") == 0
    refused(capsys, world, tmp_path / "c", "tokenize", world["shards"], tmp_path / "c", "-m",
            run_dir, names="academicodec export")  # fmt: skip


def test_following_export_first_works(capsys, world, tmp_path) -> None:
    from academicodec.training import RunOptions, train

    run_dir = tmp_path / "run"
    train("tiny_hificodec_16k", RunOptions(out=run_dir, data=world["shards"], max_steps=1,
          workers=0, val_every=0, device="cpu"), TINY)  # fmt: skip
    line = refused(capsys, world, tmp_path / "c", "tokenize", world["shards"], tmp_path / "c",
                   "-m", run_dir, names="academicodec export")  # fmt: skip
    command = line.split("`")[1].replace("OUT", str(tmp_path / "model")).split()
    assert command[:2] == ["academicodec", "export"]
    ok(capsys, *command[1:])
    ok(capsys, "tokenize", world["shards"], tmp_path / "c", "-m", tmp_path / "model")


# --- info reads every output of ours --------------------------------------------------------


def test_info_reads_every_output_of_ours(capsys, world, tmp_path) -> None:
    from academicodec.training import RunOptions, export_run, train

    run_dir = tmp_path / "run"
    options = RunOptions(out=run_dir, data=world["shards"], max_steps=2, workers=0,
                         val_every=2, val_items=1, device="cpu")  # fmt: skip
    train("tiny_hificodec_16k", options, TINY)
    model = export_run(run_dir, tmp_path / "model")
    ok(capsys, "decode", world["codes"], tmp_path / "wav", "-m", world["model_a"])
    ok(capsys, "text", "train", world["a"], tmp_path / "spm", "--vocab-size", "40")
    expectations = {
        run_dir: ["kind: train", "preset: tiny_hificodec_16k", "data: shards ",
                  "last_train: step 2 ", "last_validation: validation step 2 "],
        run_dir / "checkpoints" / "last.pt": ["kind: checkpoint", "step: 2",
                                             f"export_with: academicodec export {run_dir}"],
        model: ["kind: export", f"run: {run_dir}", "step: 2", "trained_on: shards "],
        tmp_path / "wav": ["kind: decode", "files: 5", "sample_rates: 16000", "model: sha256 "],
        tmp_path / "spm": ["kind: text model", "vocab_size: 40", "model_type: bpe"],
    }  # fmt: skip
    for path, needles in expectations.items():
        out = ok(capsys, "info", path)
        for needle in needles:
            assert needle in out, (path, needle, out)
    out = ok(capsys, "info", world["codes"], "--items")
    rows = [line for line in out.splitlines() if line.startswith("  ") and " x 4" in line]
    assert len(rows) == 5 and all(line.count(":") == 1 for line in rows)


def test_an_export_written_before_plan_records_compares_by_weights(world, tmp_path) -> None:
    from academicodec.errors import UserError

    torch.manual_seed(0)
    model = build_codec("tiny_hificodec_16k")
    save_codec(model, tmp_path / "old")
    (tmp_path / "old" / ".plan.json").unlink()  # as an earlier version left it
    save_codec(model, tmp_path / "old")  # the same weights: fine
    (tmp_path / "old" / ".plan.json").unlink()
    torch.manual_seed(5)
    with pytest.raises(UserError, match="weights: sha256 "):
        save_codec(build_codec("tiny_hificodec_16k"), tmp_path / "old")


def test_a_normal_training_run_shows_no_torch_noise(world, tmp_path) -> None:
    """The scheduler steps at each epoch end while the discriminator still waits: torch's
    "lr_scheduler.step() before optimizer.step()" warning is silenced there; DDP is built
    without the deprecated ``broadcast_buffers`` where torch has its replacement."""
    import inspect
    import warnings

    from torch.nn.parallel import DistributedDataParallel

    from academicodec.training import RunOptions, train
    from academicodec.training.trainer import _no_buffer_sync

    options = RunOptions(out=tmp_path / "run", data=world["shards"], max_steps=4, workers=0,
                         val_every=0, device="cpu")  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        state = train("tiny_hificodec_16k", options, {**TINY, "train.disc_start_step": 100})
    assert state.epoch >= 1  # an epoch ended before the discriminator ever stepped
    assert not [w for w in caught if "lr_scheduler" in str(w.message)], caught
    parameters = inspect.signature(DistributedDataParallel.__init__).parameters
    expected = (
        "forward_sync_buffers" if "forward_sync_buffers" in parameters else "broadcast_buffers"
    )
    assert _no_buffer_sync() == {expected: False}


def test_export_and_decode_never_write_into_a_corpus(capsys, world, tmp_path) -> None:
    """A corpus root keeps its audio in sub-folders: OUT there is refused, not filled."""
    corpus = tmp_path / "LibriTTS"
    make_folder(corpus / "train-clean-100" / "19", 2, durations=(0.3, 0.4))
    refused(capsys, world, None, "decode", world["codes"], corpus, "-m", world["model_a"],
            names="holds audio files")  # fmt: skip
    refused(capsys, world, None, "import", FIXTURES / "meta_encodec_small.th", corpus,
            names="holds audio files")  # fmt: skip
    assert not (corpus / "model.safetensors").exists()


def test_train_resumes_by_identity_through_the_cli(capsys, world, tmp_path, monkeypatch) -> None:
    import shutil

    from academicodec.training.checkpoint import load_state_file

    run_dir = tmp_path / "run"
    common = ["--preset", "tiny_hificodec_16k", "--out", run_dir, "--workers", "0",
              "--val-every", "0", "--set", "train.batch_size=2",
              "--set", "train.segment_length=3200"]  # fmt: skip
    ok(capsys, "train", "--data", world["shards"], "--max-steps", "1", *common)
    shutil.copytree(world["shards"], tmp_path / "copy" / "shards")
    monkeypatch.chdir(tmp_path / "copy")  # the same shards, by a relative path elsewhere
    ok(capsys, "train", "--data", "shards", "--max-steps", "2", *common)
    assert load_state_file(run_dir / "checkpoints" / "last.pt").step == 2
    shutil.rmtree(tmp_path / "copy" / "shards")  # other shards at that relative path
    write_shards([world["b"]], tmp_path / "copy" / "shards", ShardSettings(16000, 3))
    refused(capsys, world, None, "train", "--data", "shards", "--max-steps", "3", *common,
            names="--data: 'shards ")  # fmt: skip
    assert load_state_file(run_dir / "checkpoints" / "last.pt").step == 2
