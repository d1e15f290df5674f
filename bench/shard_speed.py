"""shard: audio seconds/s of ``write_shards`` vs a bare read-resample-encode-tar loop.

Generates >= 2,000 files at 44.1 kHz (so resampling is part of the work), prepares them
(untimed), then times, best of 3: the baseline (soundfile read, soxr resample to 16 kHz,
FLAC encode, one tar) and ``write_shards`` with --jobs 1 and 2 into fresh folders.
Targets: ratio >= 0.85 with --jobs 1, >= 1.6 with --jobs 2.
"""

from __future__ import annotations

import argparse
import io
import shutil
import tarfile
import tempfile
from pathlib import Path

import soundfile as sf
import soxr
from common import best_time, report
from lhotse import CutSet

from academicodec.manifests import prepare
from academicodec.manifests.synthetic import SpeechSource, make_folder
from academicodec.pipelines import ShardSettings, write_shards

TARGET_RATE = 16000


def baseline(paths: list[str], out: Path) -> None:
    """What a hand-written sharding script does: one file at a time into one tar."""
    with tarfile.open(out, "w") as tar:
        for index, path in enumerate(paths):
            audio, rate = sf.read(path, dtype="float32")
            audio = soxr.resample(audio, rate, TARGET_RATE)
            buffer = io.BytesIO()
            sf.write(buffer, audio, TARGET_RATE, format="FLAC", subtype="PCM_16")
            info = tarfile.TarInfo(f"{index:08d}.flac")
            info.size = buffer.tell()
            buffer.seek(0)
            tar.addfile(info, buffer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_folder(
            root / "src",
            args.files,
            source=SpeechSource(pool=8),
            rates=(44100,),
            formats=("wav",),
            durations=(0.5, 1.5),
        )
        report_ = prepare("folder", root / "src", root / "m", jobs=2)
        cuts = CutSet.from_file(root / "m" / report_.manifests["all"]["cuts"])
        paths = [c.recording.sources[0].source for c in cuts]
        seconds = report_.totals.seconds
        for path in paths:  # warm the page cache for everyone
            Path(path).read_bytes()

        base_s = best_time(lambda: baseline(paths, root / "baseline.tar"))
        settings = ShardSettings(sample_rate=TARGET_RATE, samples_per_shard=200)

        def clean() -> None:
            shutil.rmtree(root / "shards", ignore_errors=True)

        ours = {
            jobs: best_time(
                lambda jobs=jobs: write_shards([root / "m"], root / "shards", settings, jobs=jobs),
                setup=clean,
            )
            for jobs in (1, 2)
        }
    report(
        {
            "bench": "shard",
            "files": len(paths),
            "audio_seconds": round(seconds, 1),
            "baseline_audio_s_per_s": round(seconds / base_s, 1),
            "ours_jobs1_audio_s_per_s": round(seconds / ours[1], 1),
            "ours_jobs2_audio_s_per_s": round(seconds / ours[2], 1),
            "ratio_jobs1": round(base_s / ours[1], 2),
            "ratio_jobs2": round(base_s / ours[2], 2),
        }
    )


if __name__ == "__main__":
    main()
