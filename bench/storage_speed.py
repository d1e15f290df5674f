"""shard and tokenize against an S3 server vs the local disk: audio seconds/s of each.

Generates 44.1 kHz speech-like files (so shard resamples, as in shard_speed), prepares them
(untimed), and puts the audio and manifests whose recordings point at it into a bucket of
a local S3-compatible server (moto, in its own process, over HTTP on 127.0.0.1). Then,
best of 3 each: ``shard`` local manifests -> local folder vs bucket -> bucket; ``tokenize``
(tiny_encodec_16k, random weights, 2 reader workers) local shards -> local folder vs bucket
shards -> bucket. A ratio is the local time over the bucket time (1.0: no cost of the
bucket). A local server measures the protocol's cost (HTTP, one upload per file, ranged
reads), not a real network's latency or bandwidth; ``server_serves_corpus_s`` is the time
the server alone takes to hand out every audio object once, a floor under shard's bucket
time (moto answers one request at a time, ~20 ms each on this VM).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import s3fs
import torch
from common import best_time, report

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ (the server helper)

from academicodec.manifests import prepare  # noqa: E402
from academicodec.manifests.synthetic import SpeechSource, make_folder  # noqa: E402
from academicodec.models import build_codec, save_codec  # noqa: E402
from academicodec.pipelines import ShardSettings, write_shards  # noqa: E402
from academicodec.tokenizer.run import TokenizeSettings, tokenize  # noqa: E402
from tests.s3server import BUCKET, local_s3, put_corpus  # noqa: E402

ROOT = f"s3://{BUCKET}"


def _clean(fs: s3fs.S3FileSystem, local: Path, remote: str) -> None:
    import shutil

    shutil.rmtree(local, ignore_errors=True)
    if fs.exists(remote):
        fs.rm(remote, recursive=True)
    fs.invalidate_cache()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=400)
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp, local_s3(own_process=True):
        root = Path(tmp)
        make_folder(root / "src", args.files, source=SpeechSource(pool=8), rates=(44100,),
                    formats=("wav",), durations=(0.5, 1.5))  # fmt: skip
        prepared = prepare("folder", root / "src", root / "m", jobs=2)
        seconds = prepared.totals.seconds
        fs = s3fs.S3FileSystem()
        put_corpus(root / "src", root / "m")

        # What the server alone needs to hand out the corpus once (16 concurrent GETs):
        # moto serves requests one at a time in Python, so this bounds the bucket figures.
        audio = fs.find(f"{BUCKET}/corpus")
        with ThreadPoolExecutor(16) as pool:
            serve_s = best_time(lambda: list(pool.map(fs.cat_file, audio)))

        settings = ShardSettings(sample_rate=16000, samples_per_shard=100)
        shard_local = best_time(
            lambda: write_shards([root / "m"], root / "shards", settings),
            setup=lambda: _clean(fs, root / "shards", f"{BUCKET}/unused"),
        )
        shard_s3 = best_time(
            lambda: write_shards([f"{ROOT}/manifests"], f"{ROOT}/shards", settings),
            setup=lambda: _clean(fs, root / "unused", f"{BUCKET}/shards"),
        )
        write_shards([f"{ROOT}/manifests"], f"{ROOT}/shards", settings)  # tokenize's input

        torch.manual_seed(0)
        model = save_codec(build_codec("tiny_encodec_16k"), root / "model")
        fs.put(str(model), f"{BUCKET}/model", recursive=True)
        codes = TokenizeSettings(items_per_shard=100, workers=2)
        tokenize_local = best_time(
            lambda: tokenize(model, [root / "shards"], root / "codes", codes),
            setup=lambda: _clean(fs, root / "codes", f"{BUCKET}/unused"),
        )
        tokenize_s3 = best_time(
            lambda: tokenize(f"{ROOT}/model", [f"{ROOT}/shards"], f"{ROOT}/codes", codes),
            setup=lambda: _clean(fs, root / "unused", f"{BUCKET}/codes"),
        )
    report(
        {
            "bench": "storage",
            "files": args.files,
            "audio_seconds": round(seconds, 1),
            "shard_local_audio_s_per_s": round(seconds / shard_local, 1),
            "shard_s3_audio_s_per_s": round(seconds / shard_s3, 1),
            "tokenize_local_audio_s_per_s": round(seconds / tokenize_local, 1),
            "tokenize_s3_audio_s_per_s": round(seconds / tokenize_s3, 1),
            "server_serves_corpus_s": round(serve_s, 2),
            "shard_s3_s": round(shard_s3, 2),
            "ratio_shard_s3_vs_local": round(shard_local / shard_s3, 2),
            "ratio_tokenize_s3_vs_local": round(tokenize_local / tokenize_s3, 2),
        }
    )


if __name__ == "__main__":
    main()
