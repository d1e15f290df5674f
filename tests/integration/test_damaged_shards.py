"""Issue 23, item 1: a damaged shard never changes an item count in silence.

``tarfile`` ends a listing at the first header it cannot parse, so a shard with 4 KB
overwritten at a member header "holds" fewer samples and nothing used to notice. Every
reader now checks each shard against ``index.json``: tokenize and eval (and
``ExactOnceSamples``) refuse in one line naming the shard and the repair, the training
stream skips, counts and reports.
"""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from academicodec.manifests import prepare
from academicodec.manifests.synthetic import make_folder
from academicodec.models import build_codec, save_codec
from academicodec.pipelines import ShardIndex, ShardSettings, write_shards
from academicodec.pipelines.checks import ShardDamage
from academicodec.pipelines.readers import ExactOnceSamples, TrainingStream
from tests.integration.test_misuse import refused, run

SETTINGS = ShardSettings(sample_rate=16000, samples_per_shard=4)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("damaged")
    make_folder(root / "src", 12, seed=7, durations=(0.4, 0.8))
    prepare("folder", root / "src", root / "manifests")
    write_shards([root / "manifests"], root / "clean", SETTINGS)
    torch.manual_seed(3)
    save_codec(build_codec("tiny_hificodec_16k"), root / "model")
    return {"root": root}


def _copy(made: dict[str, Path], name: str) -> Path:
    target = made["root"] / name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(made["root"] / "clean", target)
    return target


def overwrite_at_a_header(shards: Path, name: str = "shard-000001.tar") -> Path:
    """4 KB of random bytes from the header of the middle member on: the size stays."""
    path = shards / name
    with tarfile.open(path) as tar:
        members = tar.getmembers()
    offset = members[len(members) // 2].offset
    data = bytearray(path.read_bytes())
    noise = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    data[offset : offset + 4096] = noise[: len(data) - offset]
    path.write_bytes(bytes(data))
    return path


def truncate(shards: Path, name: str = "shard-000001.tar") -> Path:
    path = shards / name
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def test_the_silent_case_is_what_tarfile_does(made) -> None:
    """The damage the tests plant is the silent kind: tarfile lists fewer members, no error."""
    shards = _copy(made, "silent")
    path = overwrite_at_a_header(shards)
    with tarfile.open(path) as tar:
        listed = {m.name.split(".")[0] for m in tar.getmembers()}
    assert len(listed) < 4


@pytest.mark.parametrize("damage", [overwrite_at_a_header, truncate])
def test_tokenize_refuses_a_damaged_shard_naming_it_and_the_repair_works(
    capsys, made, damage
) -> None:
    shards = _copy(made, f"tok-{damage.__name__}")
    damage(shards)
    out = made["root"] / f"codes-{damage.__name__}"
    line = refused(
        capsys, made, out, "tokenize", shards, out, "--model", made["root"] / "model",
        "--workers", "0", names="shard-000001.tar",
    )  # fmt: skip
    assert "academicodec shard" in line
    # Follow the hint: the same shard command rewrites the damaged shard, nothing else.
    before = ShardIndex.load(shards)
    write_shards([made["root"] / "manifests"], shards, SETTINGS)
    assert ShardIndex.load(shards).fingerprint == before.fingerprint
    assert not ShardIndex.load(shards).verify(shards)
    code, _, err = run(
        capsys, "tokenize", shards, out, "--model", made["root"] / "model", "--workers", "0"
    )
    assert code == 0, err
    assert json.loads((out / "index.json").read_text())["totals"]["items"] == 12


def test_eval_refuses_a_truncated_shard(capsys, made) -> None:
    shards = _copy(made, "eval-trunc")
    truncate(shards, "shard-000002.tar")
    out = made["root"] / "eval-out"
    refused(
        capsys, made, out, "eval", shards, out, "--model", made["root"] / "model",
        names="shard-000002.tar",
    )  # fmt: skip


def test_verify_finds_damage_that_keeps_size_and_count(capsys, made) -> None:
    """A byte flipped inside audio: only the sha256 shows it (``--verify``)."""
    shards = _copy(made, "flipped")
    path = shards / "shard-000000.tar"
    with tarfile.open(path) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(".flac"))
    data = bytearray(path.read_bytes())
    data[member.offset_data + member.size // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    out = made["root"] / "codes-flipped"
    line = refused(
        capsys, made, out, "tokenize", shards, out, "--model", made["root"] / "model",
        "--workers", "0", "--verify", names="shard-000000.tar",
    )  # fmt: skip
    assert "sha256" in line


@pytest.mark.parametrize("damage", [overwrite_at_a_header, truncate])
def test_exact_once_stops_at_a_damaged_shard(made, damage) -> None:
    shards = _copy(made, f"exact-{damage.__name__}")
    damage(shards)
    with pytest.raises(ShardDamage, match="shard-000001.tar"):
        list(ExactOnceSamples(shards, decode=False, rank=0, world_size=1))
    # Three ranks, a shard each: only the rank reading the damaged shard stops.
    for rank in range(3):
        samples = ExactOnceSamples(shards, decode=False, rank=rank, world_size=3)
        if rank != 1:
            assert len(list(samples)) == 4
        else:
            with pytest.raises(ShardDamage, match="shard-000001.tar"):
                list(samples)
    # Four ranks: rank 2 takes the second half of the damaged shard (skipping its first
    # half to get there) and is refused; rank 1 reads the first half, before the
    # overwritten header (a truncated file's size refuses it too); rank 3 is after it.
    assert len(list(ExactOnceSamples(shards, decode=False, rank=3, world_size=4))) == 3
    with pytest.raises(ShardDamage, match="shard-000001.tar"):
        list(ExactOnceSamples(shards, decode=False, rank=2, world_size=4))
    first_half = ExactOnceSamples(shards, decode=False, rank=1, world_size=4)
    if damage is truncate:
        with pytest.raises(ShardDamage, match="bytes, index.json says"):
            list(first_half)
    else:
        assert len(list(first_half)) == 3


@pytest.mark.parametrize("damage", [overwrite_at_a_header, truncate])
def test_training_skips_counts_and_reports_what_it_lost(made, damage, caplog) -> None:
    shards = _copy(made, f"train-{damage.__name__}")
    damage(shards)
    stream = TrainingStream(shards, epoch_length=120, rank=0, world_size=1, seed=1)
    samples = list(stream)
    assert len(samples) == 120  # the epoch stays full
    assert sum(s["skipped"] for s in samples) > 0
    keys_of_damaged = set()
    with tarfile.open(made["root"] / "clean" / "shard-000001.tar") as tar:
        keys_of_damaged = {m.name.split(".")[0] for m in tar.getmembers()}
    assert {s["key"] for s in samples} - keys_of_damaged  # the other shards still train
    warnings = [r.getMessage() for r in caplog.records if "shard-000001.tar" in r.getMessage()]
    assert warnings and len(warnings) == len(set(warnings)), warnings  # once per shard
    if damage is overwrite_at_a_header:
        # Half of it reads, so the stream draws it again and again (a shard with nothing
        # readable leaves the draw at once): more is lost than one draw loses, one warning.
        per_draw = int(warnings[0].split("skipping ")[1].split(" ")[0])
        lost = sum(s["skipped"] for s in samples)
        assert lost > per_draw, (lost, warnings)
