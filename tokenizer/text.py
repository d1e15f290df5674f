"""Text tokens: a sentencepiece model trained on the manifests' transcripts.

Language-aware in the way that matters: ``character_coverage`` is 1.0 when the transcripts
are mostly CJK (every Chinese character kept) and 0.9995 otherwise, as sentencepiece
recommends.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from academicodec.errors import UserError
from academicodec.identity import inputs_identity
from academicodec.outputs import own_files
from academicodec.pipelines.items import find_manifests, load_cuts

MODEL_TYPES = ("bpe", "unigram", "char", "word")


DEFAULT_VOCAB = 512


def transcripts(manifests: list[str | Path]) -> list[str]:
    texts = []
    for path in find_manifests(list(manifests)):
        for cut in load_cuts(path):
            texts.extend(s.text for s in cut.supervisions if s.text)
    return texts


def train_text_model(
    manifests: list[str | Path],
    out: str | Path,
    vocab_size: int | None = None,
    model_type: str = "bpe",
    overwrite: bool = False,
) -> Path:
    """Train ``OUT.model`` (+ ``OUT.vocab``) on every transcript of ``manifests``.

    ``vocab_size`` is exact: transcripts too few for it are a one-line error saying how
    large a vocabulary they allow. Without it: up to 512, fewer if the text allows fewer."""
    import sentencepiece as spm

    if model_type not in MODEL_TYPES:
        raise UserError(f"--model-type must be one of {list(MODEL_TYPES)}, not {model_type!r}")
    texts = transcripts(manifests)
    if not texts:
        raise UserError("the manifests hold no transcripts to train a text model on")
    prefix = Path(out).with_suffix("") if Path(out).suffix == ".model" else Path(out)
    described = {
        "inputs": inputs_identity(list(manifests)),
        "--vocab-size": vocab_size,
        "--model-type": model_type,
    }
    record = own_files(prefix, "text train", described, overwrite, (".model", ".vocab"))
    prefix.parent.mkdir(parents=True, exist_ok=True)
    cjk = sum(1 for t in texts for ch in t if "\u4e00" <= ch <= "\u9fff")
    total = sum(len(t) for t in texts) or 1
    with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8", delete=False) as f:
        f.write("\n".join(texts))
        corpus = f.name
    try:
        spm.SentencePieceTrainer.train(
            input=corpus,
            model_prefix=str(prefix),
            vocab_size=vocab_size or DEFAULT_VOCAB,
            model_type=model_type,
            character_coverage=1.0 if cjk / total > 0.3 else 0.9995,
            hard_vocab_limit=vocab_size is not None,
            minloglevel=2,
        )
    except RuntimeError as exc:
        reason = " ".join(str(exc).split())
        if "Vocabulary size" in reason and "too high" in reason:
            limit = reason.rsplit("<=", 1)[-1].strip(" .")
            raise UserError(
                f"--vocab-size {vocab_size}: {len(texts)} transcripts allow at most {limit} "
                f"pieces; pass --vocab-size {limit} or less (or more text)"
            ) from exc
        raise UserError(
            f"sentencepiece could not train on {len(texts)} transcripts: {reason}"
        ) from exc
    finally:
        Path(corpus).unlink(missing_ok=True)
    record()
    return prefix.parent / f"{prefix.name}.model"


class TextTokenizer:
    """Encodes a transcript into int32 token ids with a trained sentencepiece model."""

    def __init__(self, model_file: str | Path) -> None:
        import sentencepiece as spm

        path = Path(model_file)
        if not path.is_file():
            raise UserError(f"--text-model {path} does not exist")
        try:
            self.processor = spm.SentencePieceProcessor(model_file=str(path))
        except (RuntimeError, OSError) as exc:
            raise UserError(
                f"--text-model {path} is not a sentencepiece model (make one with "
                "academicodec text train)"
            ) from exc

    def __call__(self, text: str | None) -> list[int]:
        return [] if not text else list(self.processor.encode(text))
