"""eval on a trained tiny model: every output written, per-corpus grouping, bad items listed."""

import csv
import json
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from academicodec.evaluation import evaluate
from academicodec.evaluation.summary import EvalSummary
from academicodec.manifests import prepare
from academicodec.manifests.synthetic import make_folder, make_libritts
from academicodec.models import build_codec, save_codec
from tests.helpers import run_cli

PNG = b"\x89PNG\r\n\x1a\n"


def test_eval_writes_every_output(tmp_path: Path) -> None:
    make_libritts(tmp_path / "LibriTTS", {"dev-clean": 3}, speakers=1)
    make_folder(tmp_path / "folder", 3, durations=(0.8, 1.2))
    silent = tmp_path / "folder" / "silent"
    silent.mkdir()
    sf.write(silent / "quiet.wav", np.zeros(16000, np.float32), 16000)
    sf.write(silent / "blip.wav", np.zeros(100, np.float32), 16000)  # shorter than a frame
    prepare("libritts", tmp_path, tmp_path / "m-libritts")
    prepare("folder", tmp_path / "folder", tmp_path / "m-folder")
    torch.manual_seed(0)
    model = save_codec(build_codec("tiny_hificodec_16k"), tmp_path / "model")

    out = tmp_path / "eval"
    summary = evaluate(model, [tmp_path / "m-libritts", tmp_path / "m-folder"], out, [2, 4])
    assert set(summary.levels) == {"2", "4"}
    level = summary.levels["4"]
    assert set(level.by_corpus) == {"libritts", "folder"}
    assert level.by_corpus["libritts"]["stoi"].count == 3
    # 3 clips; the silent one's STOI and SI-SDR are undefined (issue 15), not 0 and -80 dB
    assert level.by_corpus["folder"]["si_sdr"].count == 3
    assert level.by_corpus["folder"]["stoi"].count == 3
    assert level.kbps == 2.0 and level.entropy_coded_kbps <= 2.0

    with open(out / "items.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 7
    quiet = next(r for r in rows if r["id"].endswith("quiet") and r["n_q"] == "4")
    assert quiet["pesq_wb"] == "" and "PESQ" in quiet["notes"]  # undefined, recorded
    assert quiet["stoi"] == "" and quiet["si_sdr"] == "" and "silent reference" in quiet["notes"]
    assert any("shorter than one frame" in s["reason"] for s in summary.skipped)
    assert EvalSummary.read(out / "summary.json") == summary
    assert json.loads((out / "summary.json").read_text())["format_version"] == 1
    report = (out / "report.md").read_text()
    assert "pesq_wb" in report and "Per corpus" in report
    plots = sorted((out / "plots").glob("*.png"))
    names = {p.name for p in plots}
    assert {"codebook_usage.png", "metrics_vs_n_q.png"} <= names
    assert sum(n.startswith("mel_") for n in names) == 3
    assert all(p.read_bytes().startswith(PNG) for p in plots)

    result = run_cli("eval", str(tmp_path / "m-libritts"), str(tmp_path / "cli"), "-m", str(model))
    assert result.returncode == 0, result.stderr
    assert "PESQ-WB" in result.stdout and (tmp_path / "cli" / "report.md").is_file()
