"""A real S3-compatible server on 127.0.0.1 for tests and benchmarks: moto's server speaks
the S3 HTTP API that s3fs (and so our storage layer) talks to - no mock of the client.
Nothing leaves the machine."""

from __future__ import annotations

import gzip
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BUCKET = "academicodec-test"


@contextmanager
def local_s3(bucket: str = BUCKET, own_process: bool = False) -> Iterator[dict[str, str]]:
    """Start the server with ``bucket`` in it; yields the environment that points S3
    clients at it (also set in ``os.environ`` meanwhile, for this process and the ones it
    starts). ``own_process``: run the server in a child process, so that a benchmark's
    timings do not include the server's Python work competing for this process's GIL."""
    import s3fs

    with _server(own_process) as endpoint:
        env = {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        saved = {name: os.environ.get(name) for name in [*env, "AWS_PROFILE"]}
        os.environ.pop("AWS_PROFILE", None)
        os.environ.update(env)
        s3fs.S3FileSystem.clear_instance_cache()  # clients made for an earlier server
        # moto keeps its buckets per process, across servers: start from an empty store
        reset = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(reset, timeout=30).close()
        try:
            s3fs.S3FileSystem().mkdir(bucket)
            yield env
        finally:
            s3fs.S3FileSystem.clear_instance_cache()
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


@contextmanager
def _server(own_process: bool) -> Iterator[str]:
    """The endpoint URL of a running moto server, stopped on exit."""
    if not own_process:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line per request otherwise
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()
        return
    with socket.socket() as probe:  # a free port (released just before the server binds it)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(endpoint, timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the moto server did not start") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=30)


def put_corpus(src: Path, manifests: Path, prefix: str = BUCKET, source_type: str = "url") -> None:
    """Upload the audio below ``src`` to ``prefix/corpus`` and the manifests in
    ``manifests`` to ``prefix/manifests`` (``prefix``: a bucket, or a path in one), their
    recordings pointing at the uploaded audio's ``s3://`` URLs (lhotse source type
    ``source_type``): a corpus that lives only in the bucket."""
    import s3fs

    fs = s3fs.S3FileSystem()
    fs.put(str(src), f"{prefix}/corpus", recursive=True)
    with tempfile.TemporaryDirectory() as tmp:
        for path in manifests.glob("*.jsonl.gz"):
            text = gzip.decompress(path.read_bytes()).decode()
            text = text.replace(str(src), f"s3://{prefix}/corpus")
            text = text.replace('"type": "file"', f'"type": "{source_type}"')
            (Path(tmp) / path.name).write_bytes(gzip.compress(text.encode()))
        fs.put(tmp, f"{prefix}/manifests", recursive=True)
