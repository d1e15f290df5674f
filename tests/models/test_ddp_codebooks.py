"""Two gloo ranks, different data: every EMA codebook tensor stays identical on both."""

import os
import socket
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from academicodec.models import build_codec


def _rank(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)  # same initial weights, as DDP's broadcast would give
    model = build_codec("tiny_encodec_16k", encodec__dead_code_threshold=2.0).train()
    generator = torch.Generator().manual_seed(100 + rank)  # different data per rank
    for step in range(4):
        wav = (0.05 + 0.1 * rank + 0.05 * step) * torch.randn(3, 1, 6400, generator=generator)
        with torch.no_grad():
            model(wav, n_q=4)
    buffers = {k: v for k, v in model.state_dict().items() if "_codebook" in k}
    torch.save(buffers, f"{out}.{rank}")
    dist.destroy_process_group()


def test_codebooks_identical_across_ranks(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = str(tmp_path / "codebooks")
    mp.start_processes(_rank, args=(2, port, out), nprocs=2, start_method="spawn")
    first, second = torch.load(f"{out}.0"), torch.load(f"{out}.1")
    assert first.keys() == second.keys() and len(first) == 16  # 4 layers x 4 buffers
    for key in first:
        torch.testing.assert_close(first[key], second[key], rtol=0, atol=0, msg=key)
    assert first["quantizer.vq.layers.0._codebook.inited"].item() == 1
