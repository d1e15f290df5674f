"""prepare: files/s of our LibriTTS scanner vs lhotse's ``prepare_libritts`` on the same tree.

Generates a fault-free LibriTTS layout (>= 2,000 files), warms the page cache, then times
lhotse's recipe and ours with --jobs 1 and 2 (best of 3, fresh output folders each time).
Targets: ratio >= 1.0 with --jobs 1, >= 1.6 with --jobs 2.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
from pathlib import Path

from common import best_time, report

from academicodec.manifests import prepare
from academicodec.manifests.synthetic import SpeechSource, make_libritts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=2400)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    from lhotse.recipes import prepare_libritts

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "LibriTTS"
        parts = {"dev-clean": args.files // 2, "test-clean": args.files - args.files // 2}
        written = make_libritts(
            root, parts, speakers=8, source=SpeechSource(pool=8), durations=(0.3, 0.6)
        )
        for path in root.rglob("*"):  # warm the page cache for everyone
            if path.is_file():
                path.read_bytes()
        outs = iter(range(1000))

        def fresh() -> Path:
            out = Path(tmp) / f"out{next(outs)}"
            shutil.rmtree(out, ignore_errors=True)
            return out

        lhotse_s = best_time(
            lambda: prepare_libritts(root, list(parts), output_dir=fresh(), num_jobs=1)
        )
        ours = {
            jobs: best_time(lambda jobs=jobs: prepare("libritts", root, fresh(), jobs=jobs))
            for jobs in (1, 2)
        }
    files = len(written)
    report(
        {
            "bench": "prepare",
            "files": files,
            "lhotse_files_per_s": round(files / lhotse_s, 1),
            "ours_jobs1_files_per_s": round(files / ours[1], 1),
            "ours_jobs2_files_per_s": round(files / ours[2], 1),
            "ratio_jobs1": round(lhotse_s / ours[1], 2),
            "ratio_jobs2": round(lhotse_s / ours[2], 2),
        }
    )


if __name__ == "__main__":
    main()
