"""Which device a rank uses."""

import torch

from academicodec import distrib


def test_cuda_under_a_launcher_is_this_ranks_gpu(monkeypatch) -> None:
    """tokenize --device cuda on 4 GPUs: rank 2 encodes on cuda:2, not on cuda:0."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setenv("LOCAL_RANK", "2")
    assert distrib.local_device("cuda") == "cuda:2"
    assert distrib.local_device("cuda:1") == "cuda:1" and distrib.local_device("cpu") == "cpu"
    monkeypatch.setenv("LOCAL_RANK", "5")  # more ranks than GPUs on the node: shared
    assert distrib.local_device("cuda") == "cuda:1"
