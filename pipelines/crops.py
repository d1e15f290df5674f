"""Training batches: random fixed-length crops (short items padded and masked)."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


class RandomCrop:
    """A ``TrainingStream`` transform: a random window of ``segment_length`` samples.

    Shorter items are kept whole (zero-padded at collate time) and carry their true
    ``length`` so losses can mask the padding.
    """

    def __init__(self, segment_length: int) -> None:
        self.segment_length = segment_length

    def __call__(self, sample: dict[str, Any], rng: random.Random) -> dict[str, Any]:
        audio = sample["audio"]
        if len(audio) > self.segment_length:
            start = rng.randrange(len(audio) - self.segment_length + 1)
            audio = audio[start : start + self.segment_length]
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        return {"audio": audio, "key": sample["key"], "skipped": sample.get("skipped", 0)}


def collate_crops(samples: list[dict[str, Any]], segment_length: int) -> dict[str, torch.Tensor]:
    wav = torch.zeros(len(samples), 1, segment_length)
    lengths = torch.zeros(len(samples), dtype=torch.long)
    for row, sample in enumerate(samples):
        audio = torch.from_numpy(sample["audio"][:segment_length])
        wav[row, 0, : len(audio)] = audio
        lengths[row] = len(audio)
    # unreadable samples the stream passed over before these (logged as data/skipped)
    skipped = torch.tensor(sum(sample.get("skipped", 0) for sample in samples))
    return {"wav": wav, "lengths": lengths, "skipped": skipped}
