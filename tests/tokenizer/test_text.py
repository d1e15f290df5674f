"""Text tokens: sentencepiece trained on transcripts, English and Chinese."""

from pathlib import Path

import pytest

from academicodec.errors import UserError
from academicodec.manifests import prepare
from academicodec.manifests.synthetic import make_aishell
from academicodec.tokenizer.text import TextTokenizer, train_text_model, transcripts


def test_chinese_transcripts_round_trip(tmp_path: Path) -> None:
    make_aishell(tmp_path / "src", {"train": 12})
    prepare("aishell", tmp_path / "src", tmp_path / "manifests")
    model = train_text_model([tmp_path / "manifests"], tmp_path / "zh", 80, "bpe")
    tokenizer = TextTokenizer(model)
    for text in transcripts([tmp_path / "manifests"]):
        ids = tokenizer(text)
        assert ids and tokenizer.processor.decode(ids) == text  # every character covered


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="--model-type"):
        train_text_model([tmp_path], tmp_path / "m", model_type="words")
    with pytest.raises(UserError, match="--text-model"):
        TextTokenizer(tmp_path / "missing.model")
