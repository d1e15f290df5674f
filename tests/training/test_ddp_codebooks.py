"""Two gloo ranks, different data: codebook upkeep (k-means init, EMA steps, restarts) keeps
every codebook tensor identical on both, for the EMA RVQ and the learned GRVQ alike."""

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from academicodec.models import build_codec
from academicodec.training.upkeep import CodebookUpkeep


def _rank(rank: int, world: int, port: int, preset: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)  # same initial weights, as DDP's broadcast would give
    # An aggressive restart setting, so codes are restarted within these few steps.
    model = build_codec(preset, codebooks__dead_code_ratio=0.9, codebooks__usage_decay=0.5)
    model.train()
    upkeep = CodebookUpkeep(model.quantizer, model.config.codebooks, seed=rank)  # seeds differ
    generator = torch.Generator().manual_seed(100 + rank)  # different data per rank
    restarts = 0.0
    for step in range(4):
        wav = (0.05 + 0.1 * rank + 0.05 * step) * torch.randn(3, 1, 6400, generator=generator)
        with torch.no_grad():
            if not upkeep.initialised:
                upkeep.initialise(*model.latent(wav)[:2])
            result = model(wav, n_q=model.training_n_q(0, step))
        upkeep.update(result.codebook_inputs, result.codebook_assignments)
        restarts += float(upkeep.restarts.sum())
    state = {k: v for k, v in model.state_dict().items() if k.startswith("quantizer.")}
    state["usage"] = upkeep.usage
    state["restarts"] = torch.tensor([restarts])
    torch.save(state, f"{out}.{rank}")
    dist.destroy_process_group()


@pytest.mark.parametrize("preset", ["tiny_encodec_16k", "tiny_hificodec_16k"])
def test_codebooks_identical_across_ranks(tmp_path: Path, preset: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = str(tmp_path / "codebooks")
    mp.start_processes(_rank, args=(2, port, preset, out), nprocs=2, start_method="spawn")
    first, second = torch.load(f"{out}.0"), torch.load(f"{out}.1")
    assert first.keys() == second.keys()
    assert first["restarts"].item() > 0  # the restart path ran (and was shared)
    for key in first:
        torch.testing.assert_close(first[key], second[key], rtol=0, atol=0, msg=key)
    if preset == "tiny_encodec_16k":
        assert len([k for k in first if "_codebook" in k]) == 16  # 4 layers x 4 buffers
        assert first["quantizer.vq.layers.0._codebook.inited"].item() == 1
