"""The ``academicodec`` command: one sub-command per stage, each calling one library function.

The CLI only parses arguments, shows progress and prints summaries; every stage is usable
from Python with the same behaviour. A ``UserError`` prints as one line (exit 2); anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

import logging
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup, TyperOption

from academicodec import __version__
from academicodec.errors import Interrupted, UserError
from academicodec.outputs import removed_if_failed
from academicodec.progress import tqdm_progress

app = typer.Typer(
    name="academicodec",
    help="Corpora -> manifests -> shards -> codec training -> discrete codes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=False)

STRICT_FAILURE = 1
USER_ERROR = 2
INTERRUPTED = 130


def _flags_without_type(self: TyperOption, ctx: typer.Context) -> str | None:
    """Flags take no value: show none (typer 0.29 prints ``<bool>`` beside every flag,
    which reads as if ``--json true`` were the syntax)."""
    return None if self.is_flag else _option_type(self, ctx)


_option_type = TyperOption.display_type_rich
TyperOption.display_type_rich = _flags_without_type  # type: ignore[method-assign]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"academicodec {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more detail.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print version.")
    ] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


class _CorpusGroup(TyperGroup):
    """``prepare CORPUS``: an unknown corpus is named with the ones there are."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        from typer._click.exceptions import UsageError as ParserError

        if args and not args[0].startswith("-") and self.get_command(ctx, args[0]) is None:
            raise ParserError(
                f"unknown corpus {args[0]!r}: choose from {', '.join(self.list_commands(ctx))}"
            )
        return super().resolve_command(ctx, args)


prepare_app = typer.Typer(
    cls=_CorpusGroup,
    help="Scan a corpus into Lhotse manifests plus prepare_report.json (faults never stop it).",
    no_args_is_help=True,
)
app.add_typer(prepare_app, name="prepare")

# Options every corpus takes (one definition, five commands).
Src = Annotated[Path, typer.Argument(help="The corpus directory.")]
Out = Annotated[Path, typer.Argument(help="Where manifests and the report go.")]
Jobs = Annotated[int, typer.Option("--jobs", "-j", min=1, help="Parallel probing processes.")]
Verify = Annotated[bool, typer.Option(help="Fully decode every file (slow, thorough).")]
Strict = Annotated[bool, typer.Option(help="Exit non-zero if any file was skipped.")]
Overwrite = Annotated[
    bool,
    typer.Option("--overwrite", help="Replace OUT's manifests of another corpus or options."),
]
Language = Annotated[str | None, typer.Option(help="Language to record in the manifests.")]


@prepare_app.command("libritts")
def prepare_libritts(
    src: Src,
    out: Out,
    jobs: Jobs = 1,
    verify: Verify = False,
    strict: Strict = False,
    overwrite: Overwrite = False,
    parts: Annotated[
        list[str] | None,
        typer.Option(
            "--parts", metavar="PART", help="Parts to keep, e.g. train-clean-100 (repeatable)."
        ),
    ] = None,
) -> None:
    """LibriTTS / LibriTTS-R: one manifest set per part found under SRC."""
    _prepare("libritts", src, out, jobs, verify, strict, overwrite, parts=parts or None)


@prepare_app.command("vctk")
def prepare_vctk(
    src: Src,
    out: Out,
    jobs: Jobs = 1,
    verify: Verify = False,
    strict: Strict = False,
    overwrite: Overwrite = False,
    mic: Annotated[
        str | None, typer.Option(help="VCTK 0.92 microphone: mic1 (default) | mic2.")
    ] = None,
) -> None:
    """VCTK 0.80 (wav48) or 0.92 (flac, two microphones)."""
    _prepare("vctk", src, out, jobs, verify, strict, overwrite, mic=mic)


@prepare_app.command("aishell")
def prepare_aishell(
    src: Src,
    out: Out,
    jobs: Jobs = 1,
    verify: Verify = False,
    strict: Strict = False,
    overwrite: Overwrite = False,
) -> None:
    """AISHELL-1: wav/{train,dev,test} with the transcript file."""
    _prepare("aishell", src, out, jobs, verify, strict, overwrite)


@prepare_app.command("folder")
def prepare_folder(
    src: Src,
    out: Out,
    jobs: Jobs = 1,
    verify: Verify = False,
    strict: Strict = False,
    overwrite: Overwrite = False,
    language: Language = None,
    name: Annotated[
        str | None,
        typer.Option(help="Corpus name and id prefix [default: the folder's name]."),
    ] = None,
) -> None:
    """Any tree of wav/flac/mp3/ogg, with .txt/.lab or metadata.csv transcripts."""
    _prepare("folder", src, out, jobs, verify, strict, overwrite, language=language, name=name)


@prepare_app.command("hf")
def prepare_hf(
    src: Annotated[Path, typer.Argument(help="A saved HF dataset folder or parquet files.")],
    out: Out,
    jobs: Jobs = 1,
    verify: Verify = False,
    strict: Strict = False,
    overwrite: Overwrite = False,
    language: Language = None,
    audio_column: Annotated[str | None, typer.Option(help="The audio column [audio].")] = None,
    text_column: Annotated[str | None, typer.Option(help="The transcript column.")] = None,
    id_column: Annotated[str | None, typer.Option(help="A column of unique ids.")] = None,
) -> None:
    """A local Hugging Face dataset (audio written out once, then probed like files)."""
    _prepare(
        "hf",
        src,
        out,
        jobs,
        verify,
        strict,
        overwrite,
        language=language,
        audio_column=audio_column,
        text_column=text_column,
        id_column=id_column,
    )


def _prepare(
    corpus: str, src: Path, out: Path, jobs: int, verify: bool, strict: bool, overwrite: bool,
    **options: Any,
) -> None:  # fmt: skip
    from academicodec.manifests import prepare as run_prepare

    with removed_if_failed(out):
        report = run_prepare(
            corpus, src, out, jobs=jobs, verify=verify, progress=tqdm_progress,
            overwrite=overwrite, **options,
        )  # fmt: skip
    table = Table(title=f"{corpus}: {report.source}")
    for column in ("split", "recordings", "without text", "hours"):
        table.add_column(column, justify="left" if column == "split" else "right")
    for split, counts in sorted(report.splits.items()):
        table.add_row(
            split, str(counts.recordings), str(counts.without_text), f"{counts.seconds / 3600:.3f}"
        )
    console.print(table)
    if report.skipped:
        reasons = Counter(f.reason.split(":")[0] for f in report.skipped)
        summary = ", ".join(f"{n} {reason}" for reason, n in reasons.most_common())
        console.print(f"[yellow]skipped {len(report.skipped)} file(s)[/]: {summary}")
    if report.warnings:
        files = len({warning.path for warning in report.warnings})
        console.print(f"{files} file(s) kept with a warning (see the report)")
    console.print(f"manifests in {report.output}\nreport: {report.path}")
    if strict and report.skipped:
        raise typer.Exit(STRICT_FAILURE)


PathOrUrl = TypeVar("PathOrUrl", str, Path)
# tokenize and eval: shards are always checked against index.json (count, size); this adds
# the sha256 of each.
VerifyShards = Annotated[
    bool, typer.Option("--verify", help="Check input shards' sha256 against index.json.")
]


def inputs_and_out(
    paths: list[PathOrUrl], command: str, inputs: str = "INPUT"
) -> tuple[list[PathOrUrl], PathOrUrl]:
    """The ``INPUT... OUT`` arguments: at least one input, then the output, last."""
    if len(paths) < 2:
        raise UserError(
            f"{command} needs at least one {inputs} and then OUT (got {len(paths)} path)"
        )
    return list(paths[:-1]), paths[-1]


@app.command()
def shard(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="MANIFEST... OUT: cut manifests (or prepare dirs), then OUT; paths or URLs "
            "(s3://...)"
        ),
    ],
    sample_rate: Annotated[int, typer.Option("--sample-rate", "-r", help="Target rate, Hz.")],
    samples_per_shard: Annotated[int, typer.Option(min=1, help="Samples in every shard.")] = 1000,
    jobs: Annotated[
        int, typer.Option("--jobs", "-j", min=1, help="Parallel writer processes.")
    ] = 1,
    audio_format: Annotated[str, typer.Option("--format", help="flac | wav")] = "flac",
    max_duration: Annotated[
        float, typer.Option(min=0.001, help="Split longer cuts (seconds).")
    ] = 30.0,
    min_duration: Annotated[float, typer.Option(min=0, help="Skip shorter cuts (seconds).")] = 0.1,
    seed: Annotated[int, typer.Option(help="Seed of the sample-to-shard shuffle.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace shards from other settings.")] = False,
) -> None:
    """Write webdataset tar shards + index.json at the model's rate (resumable, rank-sliced)."""
    from academicodec import distrib
    from academicodec.pipelines import ShardSettings, write_shards

    inputs, out = inputs_and_out(paths, "shard", "MANIFEST")
    settings = ShardSettings(
        sample_rate=sample_rate,
        samples_per_shard=samples_per_shard,
        format=audio_format,
        max_duration=max_duration,
        min_duration=min_duration,
        seed=seed,
    )
    with removed_if_failed(out):
        index = write_shards(
            inputs, out, settings, jobs=jobs, overwrite=overwrite, progress=tqdm_progress
        )
    if index is None:
        console.print(f"rank {distrib.rank()}: wrote its shards into {out}")
        return
    console.print(
        f"{len(index.shards)} shard(s), {index.total_samples} samples, "
        f"{index.total_seconds / 3600:.3f} h at {index.sample_rate} Hz in {out}"
    )
    if index.skipped:
        console.print(f"[yellow]skipped {len(index.skipped)} item(s)[/] (listed in index.json)")


@app.command()
def presets(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list instead.")] = False,
) -> None:
    """List the codec presets: rates, codebooks, bitrate and generator parameters."""
    import json

    from academicodec.models.presets import describe_presets

    rows = describe_presets()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    # Fits 80 columns: no borders, the codebooks as K x size, parameters in millions
    # (the family is in the name; --json has every field).
    table = Table(title="codec presets", box=None, pad_edge=False)
    for header in ("preset", "Hz", "hop", "frames/s", "codes", "kbps", "params"):
        table.add_column(header, justify="left" if header == "preset" else "right", no_wrap=True)
    for row in rows:
        table.add_row(
            row["name"], str(row["sample_rate"]), str(row["hop_length"]),
            f"{row['frame_rate']:g}", f"{row['num_codebooks']}x{row['codebook_size']}",
            f"{row['bitrate_kbps']:g}", f"{row['parameters'] / 1e6:.1f}M",
        )  # fmt: skip
    console.print(table)


@app.command()
def train(
    preset: Annotated[str, typer.Option(help="Preset name or YAML path.")],
    data: Annotated[str, typer.Option(help="Shard folder (or its index.json); a path or URL.")],
    out: Annotated[Path, typer.Option(help="Run folder: checkpoints, logs, TensorBoard.")],
    val: Annotated[str | None, typer.Option(help="Validation shards (default: --data).")] = None,
    max_steps: Annotated[int, typer.Option(min=1, help="Stop after this many steps.")] = 1000,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="KEY=VALUE preset override (repeatable).")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Require a checkpoint to continue from.")] = False,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    workers: Annotated[int, typer.Option(min=0, help="DataLoader workers per rank.")] = 2,
    ckpt_every: Annotated[
        int, typer.Option(min=0, help="Checkpoint every N steps (0: only at the end).")
    ] = 500,
    val_every: Annotated[int, typer.Option(min=0, help="Validate every N steps (0: never).")] = 500,
    keep: Annotated[int, typer.Option(min=1, help="Step checkpoints to keep.")] = 3,
    allow_nan: Annotated[
        bool,
        typer.Option(
            help="Keep going however many steps in a row have NaN/inf losses or gradients "
            "(each is still skipped and logged; without it, train.max_bad_steps in a row stop "
            "the run)."
        ),
    ] = False,
    compile_model: Annotated[bool, typer.Option("--compile", help="torch.compile.")] = False,
    precision: Annotated[
        Literal["auto", "bf16", "fp32"],
        typer.Option(help="auto: bf16 on GPU, fp32 on CPU; bf16 covers the whole step."),
    ] = "auto",
    seed: Annotated[int, typer.Option(help="Seed of weights, data order and dropout.")] = 0,
    override: Annotated[
        bool,
        typer.Option(
            "--override",
            help="Resume even though the preset, --set or options differ from the run's "
            "checkpoint (the changes are applied and logged).",
        ),
    ] = False,
    overwrite: Annotated[
        bool,
        typer.Option("--overwrite", help="Start over: remove the run in --out first."),
    ] = False,
) -> None:
    """Train a codec (one process, or torchrun for DDP); re-running the same RUN resumes,
    with the settings it started with unless --override."""
    from academicodec import distrib
    from academicodec.training import RunOptions
    from academicodec.training import train as run_train

    if resume and not (out / "checkpoints" / "last.pt").is_file():
        raise UserError(f"--resume: {out}/checkpoints/last.pt does not exist")
    if resume and overwrite:
        raise UserError("--resume continues the run that --overwrite removes: pass one")
    options = RunOptions(
        out=out, data=data, val=val, max_steps=max_steps, device=device, workers=workers,
        ckpt_every=ckpt_every, val_every=val_every, keep=keep, allow_nan=allow_nan,
        compile=compile_model, precision=precision, seed=seed, override=override,
        overwrite=overwrite,
    )  # fmt: skip
    try:
        with removed_if_failed(out):
            state = run_train(preset, options, parse_overrides(overrides))
    except Interrupted as exc:
        _said_on_interrupt[0] = str(exc)
        raise
    if distrib.is_main():
        console.print(f"step {state.step} (epoch {state.epoch}); checkpoints in {out}/checkpoints")


@app.command()
def export(
    run: Annotated[Path, typer.Argument(help="A run folder (or a checkpoint file).")],
    out_dir: Annotated[Path, typer.Argument(help="Where model.safetensors + config.yaml go.")],
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an export of other weights in OUT.")
    ] = False,
) -> None:
    """Export a run's generator and quantizer for inference (tokenize, decode, eval)."""
    from academicodec.training import export_run

    with removed_if_failed(out_dir):
        console.print(f"exported to {export_run(run, out_dir, overwrite)}", soft_wrap=True)


def _batch_seconds(value: str | None) -> float | str | None:
    """--batch-seconds: a number, ``auto``, or not given (None)."""
    if value is None or value == "auto":
        return value
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if seconds < 0:
        raise UserError(
            f"Invalid value for '--batch-seconds': {value} is not a number >= 0 (0: one item "
            "a batch) or auto"
        )
    return seconds


@app.command()
def tokenize(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="INPUT... OUT: manifests, prepare/shard folders, audio folders, HF data; "
            "manifests, shards and OUT may be URLs (s3://...)"
        ),
    ],
    model: Annotated[
        str, typer.Option("--model", "-m", help="Export dir or checkpoint (path or URL).")
    ],
    formats: Annotated[
        str, typer.Option("--format", help="webdataset,shar,parquet")
    ] = "webdataset",
    batch_seconds: Annotated[
        str | None,
        typer.Option(
            help="Padded audio per batch (0: one item; auto: probe the encoder). "
            "Default: 120 on CPU, 300 on GPU."
        ),
    ] = None,
    max_chunk_seconds: Annotated[
        float,
        typer.Option(
            min=0.001,
            help="Longer items: encoded in chunks (causal models - Mimi, Meta's EnCodec - "
            "stream through them: the whole item's codes).",
        ),
    ] = 20.0,
    items_per_shard: Annotated[int, typer.Option(min=1, help="Items per output shard.")] = 1000,
    n_q: Annotated[int | None, typer.Option("--n-q", min=1, help="Codebooks to keep.")] = None,
    bandwidth: Annotated[
        float | None,
        typer.Option(min=0.001, help="kbps instead of --n-q (EnCodec 24 kHz: 6 = 8 codebooks)."),
    ] = None,
    text_model: Annotated[
        str | None, typer.Option(help="sentencepiece model (text train); path or URL.")
    ] = None,
    device: Annotated[str, typer.Option(help="cpu | cuda | cuda:N")] = "cpu",
    workers: Annotated[int, typer.Option(min=0, help="DataLoader workers reading audio.")] = 2,
    precision: Annotated[
        Literal["fp32", "tf32", "bf16"],
        typer.Option(help="Encoder numerics (fp32: TF32 off); recorded in index.json."),
    ] = "fp32",
    batching: Annotated[
        Literal["auto", "groups", "one-call"],
        typer.Option(help="auto: one padded call on GPU, cache-sized groups on CPU."),
    ] = "auto",
    bucket_seconds: Annotated[
        float, typer.Option(min=0, help="One-call batches padded to whole N seconds.")
    ] = 1.0,
    compile_model: Annotated[
        bool, typer.Option("--compile", help="torch.compile the encoder (per shape: slow on CPU).")
    ] = False,
    overwrite: Annotated[
        bool,
        typer.Option("--overwrite", help="Replace codes of another model/settings in OUT."),
    ] = False,
    verify: VerifyShards = False,
) -> None:
    """Encode every input item into sharded discrete codes (resumable, rank-sliced)."""
    from academicodec import distrib
    from academicodec.tokenizer.run import TokenizeSettings
    from academicodec.tokenizer.run import tokenize as run_tokenize

    inputs, out = inputs_and_out(paths, "tokenize")
    settings = TokenizeSettings(
        formats=tuple(f.strip() for f in formats.split(",") if f.strip()),
        batch_seconds=_batch_seconds(batch_seconds),
        max_chunk_seconds=max_chunk_seconds,
        items_per_shard=items_per_shard,
        n_q=n_q,
        workers=workers,
        bandwidth=bandwidth,
        precision=precision,
        compile=compile_model,
        batching=batching,
        bucket_seconds=bucket_seconds,
        verify=verify,
    )
    from academicodec.distrib import local_device

    with removed_if_failed(out):
        index = run_tokenize(
            model, inputs, out, settings, text_model, local_device(device),
            tqdm_progress, overwrite=overwrite,
        )  # fmt: skip
    if index is None:
        console.print(f"rank {distrib.rank()}: wrote its shards into {out}")
        return
    totals = index.totals
    console.print(
        f"{totals.items} items ({totals.seconds / 3600:.3f} h) -> "
        f"{index.num_codebooks} x {index.codebook_size} codes at "
        f"{index.frame_rate:g} frames/s ({index.precision}), "
        f"{', '.join(index.formats)} in {out}"
    )
    if index.skipped:
        console.print(f"[yellow]skipped {len(index.skipped)} item(s)[/] (tokenize_report.json)")


text_app = typer.Typer(
    help="Text tokens for the transcripts (sentencepiece).", no_args_is_help=True
)
app.add_typer(text_app, name="text")


@text_app.command("train")
def text_train(
    paths: Annotated[list[Path], typer.Argument(help="MANIFEST... OUT (model prefix)")],
    vocab_size: Annotated[
        int | None,
        typer.Option(
            min=2, help="Exact vocabulary size [default: 512, or fewer if the text is small]."
        ),
    ] = None,
    model_type: Annotated[str, typer.Option(help="bpe | unigram | char | word")] = "bpe",
    overwrite: Annotated[
        bool,
        typer.Option("--overwrite", help="Replace OUT.model of other manifests or options."),
    ] = False,
) -> None:
    """Train a sentencepiece model on the manifests' transcripts."""
    from academicodec.tokenizer.text import train_text_model

    inputs, out = inputs_and_out(paths, "text train", "MANIFEST")
    model = train_text_model(inputs, out, vocab_size, model_type, overwrite)
    console.print(f"text model: {model}")


@app.command()
def decode(
    codes_dir: Annotated[Path, typer.Argument(help="A tokenize output folder.")],
    out_dir: Annotated[Path, typer.Argument(help="Where the .wav files go.")],
    model: Annotated[Path, typer.Option("--model", "-m", help="Export dir or checkpoint.")],
    ids: Annotated[list[str] | None, typer.Option("--ids", help="Only these ids.")] = None,
    device: Annotated[str, typer.Option(help="cpu | cuda | cuda:N")] = "cpu",
    force: Annotated[
        bool, typer.Option("--force", help="Decode with another model than made the codes.")
    ] = False,
    overwrite: Annotated[
        bool,
        typer.Option("--overwrite", help="Replace OUT's audio of other codes, model or ids."),
    ] = False,
) -> None:
    """Turn codes back into audio files at the model's rate, named by item id."""
    from academicodec.distrib import check_device
    from academicodec.tokenizer.decode import decode_codes

    with removed_if_failed(out_dir):
        written = decode_codes(
            codes_dir, out_dir, model, ids, check_device(device), tqdm_progress, force,
            overwrite,
        )  # fmt: skip
    console.print(f"{len(written)} file(s) in {out_dir}")


@app.command("eval")
def evaluate_command(
    paths: Annotated[
        list[str],
        typer.Argument(help="INPUT... OUT: manifests, shards, folders; paths or URLs (s3://...)"),
    ],
    model: Annotated[
        str, typer.Option("--model", "-m", help="Export dir or checkpoint (path or URL).")
    ],
    n_q: Annotated[
        list[int] | None,
        typer.Option("--n-q", min=1, help="Codebooks to use (repeat for a curve)."),
    ] = None,
    bandwidth: Annotated[
        list[float] | None,
        typer.Option(min=0.001, help="kbps levels instead of --n-q (repeatable)."),
    ] = None,
    max_items: Annotated[int | None, typer.Option(min=1, help="Evaluate at most N items.")] = None,
    device: Annotated[str, typer.Option(help="cpu | cuda")] = "cpu",
    precision: Annotated[
        Literal["fp32", "tf32", "bf16"],
        typer.Option(help="Make codes at this precision (+ agreement with fp32's)."),
    ] = "fp32",
    verify: VerifyShards = False,
    overwrite: Annotated[
        bool,
        typer.Option("--overwrite", help="Replace OUT's evaluation of another model/inputs."),
    ] = False,
) -> None:
    """Encode -> decode every item: PESQ, STOI, SI-SDR, mel distance, bitrate, code use."""
    from academicodec.evaluation import evaluate

    inputs, out = inputs_and_out(paths, "eval")
    from academicodec.distrib import check_device

    with removed_if_failed(out):
        summary = evaluate(
            model, inputs, out, n_q, max_items, check_device(device),
            tqdm_progress, bandwidth, precision, verify, overwrite,
        )  # fmt: skip
    for n_q, level in summary.levels.items():
        overall = level.overall
        console.print(
            f"n_q {n_q} ({level.kbps:g} kbps): PESQ-WB {overall['pesq_wb'].mean_or_nan():.3f}, "
            f"STOI {overall['stoi'].mean_or_nan():.3f}, "
            f"SI-SDR {overall['si_sdr'].mean_or_nan():.2f} dB"
            + ("" if precision == "fp32" else f", codes = fp32's: {level.codes_equal_to_fp32:.2%}")
        )
    if summary.training_data_overlap:
        console.print(f"[yellow]warning[/]: {summary.training_data_overlap}", soft_wrap=True)
    console.print(f"report: {out}/report.md", soft_wrap=True)


@app.command("import")
def import_command(
    source: Annotated[
        Path,
        typer.Argument(
            help="A released checkpoint (Meta EnCodec .th, DAC weights*.pth, AcademiCodec), "
            "a Hugging Face folder (config.json + model.safetensors or pytorch_model.bin), "
            "or a Hugging Face repo id in the local cache (facebook/encodec_24khz)."
        ),
    ],
    out_dir: Annotated[Path, typer.Argument(help="Where model.safetensors + config.yaml go.")],
    family: Annotated[
        str | None,
        typer.Option(help="hificodec | encodec | dac: refuse a source of another family."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="AcademiCodec HiFi-Codec: the original config_*.json."),
    ] = None,
    preset: Annotated[
        str | None, typer.Option(help="Preset to start from (default: by source and rate).")
    ] = None,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="KEY=VALUE preset override (repeatable).")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an export of other weights in OUT.")
    ] = False,
) -> None:
    """Convert a released codec into our export, usable as --model everywhere (strict key
    mapping, weights-only loading; docs/models.md lists the sources)."""
    from academicodec.models import save_codec
    from academicodec.models.hub import RESTRICTED_FAMILIES, card_licence, resolve_source
    from academicodec.models.pretrained import import_codec

    model = import_codec(source, family, config, preset, parse_overrides(overrides))
    path = resolve_source(source)
    licence = card_licence(path)
    if licence is not None:
        console.print(f"licence: {licence} (the model card, {path / 'README.md'})", soft_wrap=True)
    elif model.config.family in RESTRICTED_FAMILIES:
        restricted = RESTRICTED_FAMILIES[model.config.family]
        console.print(f"licence: {restricted}; no model card here", soft_wrap=True)
    origin = {"source": str(source), "path": str(path.resolve())}
    out = save_codec(model, out_dir, origin, overwrite)
    rates = [model.bitrate_kbps(n) for n in model.supported_n_q()]
    console.print(
        f"{model.config.source or model.config.family}: {model.sample_rate} Hz, hop "
        f"{model.hop_length} ({model.frame_rate:g} frames/s), {model.num_codebooks} x "
        f"{model.codebook_size} codes ({rates[0]:g}-{rates[-1]:g} kbps), "
        f"{model.generator_parameters():,} parameters -> {out}",
        soft_wrap=True,
    )
    console.print(f"framing: {model.framing()}", soft_wrap=True)


@app.command()
def info(
    path: Annotated[Path, typer.Argument(help="Manifests, shards, codes, an export, a run.")],
    items: Annotated[bool, typer.Option("--items", help="Codes: every item's shape.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead.")] = False,
) -> None:
    """What an output holds: items, hours, rates, codebooks, model, formats."""
    import json

    from academicodec.info import describe

    summary = describe(path, items)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    shapes = summary.pop("item_shapes", None)
    for key, value in summary.items():
        if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            console.print(f"{key}:", soft_wrap=True)
            for name, inner in value.items():
                cells = ", ".join(f"{k} {_short(v)}" for k, v in inner.items())
                console.print(f"  {name}: {cells}", soft_wrap=True)
        elif value not in (None, [], {}):
            console.print(f"{key}: {_short(value)}", soft_wrap=True)
    if shapes is not None:  # one line per item: id, then frames x codebooks
        console.print("items:")
        for item_id, shape in shapes.items():
            console.print(f"  {item_id}: {' x '.join(map(str, shape))}", soft_wrap=True)


def _short(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_short(v)}" for k, v in value.items())
    return str(value)


# The former name, kept for scripts: the same command.
app.command("import-academicodec", hidden=True)(import_command)


def parse_overrides(pairs: list[str] | None) -> dict[str, object]:
    """``KEY=VALUE`` strings (values parsed as YAML: numbers, lists, true/false)."""
    import yaml

    parsed: dict[str, object] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--set expects KEY=VALUE, got {pair!r}")
        parsed[key.strip()] = yaml.safe_load(value)
    return parsed


@app.command()
def demo(
    out: Annotated[Path, typer.Argument(help="Where the demo corpus and outputs go.")] = Path(
        "demo_out"
    ),
    espeak: Annotated[bool, typer.Option(help="Use espeak-ng speech when installed.")] = True,
    train_steps: Annotated[int, typer.Option(help="Training steps of the tiny codec.")] = 200,
) -> None:
    """Build a small demo corpus and run every stage on it, printing where each output went."""
    from academicodec.demo import run_demo

    result = run_demo(
        out, use_espeak=espeak, train_steps=train_steps, progress=tqdm_progress, log=console.print
    )
    table = Table(title="academicodec demo")
    table.add_column("stage", no_wrap=True)
    table.add_column("result")
    for stage, summary, _ in result.rows:
        table.add_row(stage, summary)
    console.print(table)
    # Paths in full, one a line, never folded inside a name: they are what to type next.
    console.print("outputs:")
    for stage, _, location in result.rows:
        console.print(f"  {stage}: {location}", soft_wrap=True, highlight=False)
    console.print(
        f"The corpus is {result.voice}. The figures in README.md were measured with "
        "espeak-ng speech; synthetic voiced signals (no espeak-ng installed, or --no-espeak) "
        "give other numbers.",
        soft_wrap=True,
    )


# What Ctrl-C leaves behind, stage by stage (train says it itself: the step it saved).
KEPT_ON_CTRL_C = {
    "shard": "finished shards are kept; re-run the same command to resume",
    "tokenize": "finished code shards are kept; re-run the same command to resume",
    "decode": "files written so far are kept; re-run the same command (it decodes all again)",
    "eval": "an interrupted evaluation keeps nothing (it does not resume per item); re-run "
    "the same command to start it again",
    "prepare": "nothing is kept (manifests are written at the end); re-run the same command",
    "train": "steps since the last checkpoint are lost; re-run the same command to resume",
}


# A stage that caught Ctrl-C itself and knows what it kept (train: the step it saved).
_said_on_interrupt: list[str | None] = [None]


def _interrupted(args: list[str]) -> str:
    stage = next((a for a in args if not a.startswith("-")), "")
    return f"interrupted: {KEPT_ON_CTRL_C.get(stage, 'nothing was written')}"


def _repeated_option(args: list[str]) -> str | None:
    """A single-value option given more than once (click keeps the last one silently:
    ``eval --model A --model B`` scored B alone); None when there is none."""
    from typer.core import TyperGroup, TyperOption

    command: Any = typer.main.get_command(app)
    tokens = iter(args)
    for token in tokens:  # walk down the command groups to the command itself
        if not isinstance(command, TyperGroup):
            tokens = iter([token, *tokens])
            break
        if token.startswith("-"):
            continue
        command = command.commands.get(token)
        if command is None:
            return None  # click reports unknown commands itself
    names: dict[str, TyperOption] = {}
    for param in command.params:
        if isinstance(param, TyperOption):
            for opt in (*param.opts, *param.secondary_opts):
                names[opt] = param
    seen: dict[str, list[str]] = {}
    for token in tokens:
        if token == "--":
            break
        name = token.split("=", 1)[0]
        param = names.get(name)
        if param is None:
            continue
        if not param.is_flag and not param.count and "=" not in token:
            next(tokens, None)  # its value
        if not (param.multiple or param.count or param.is_flag):
            seen.setdefault(param.name or name, []).append(name)
    for spelled in seen.values():
        if len(spelled) > 1:
            return (
                f"{' / '.join(dict.fromkeys(spelled))} is given {len(spelled)} times, but it "
                "takes one value (only the last would count): give it once"
            )
    return None


# botocore's answers for credentials it cannot find (an AWS_PROFILE naming no profile too).
CREDENTIAL_ERRORS = ("NoCredentialsError", "PartialCredentialsError", "ProfileNotFound")


def _missing_credentials(exc: BaseException) -> str | None:
    """The one line for an object store that answered "no credentials" (``CREDENTIAL_ERRORS``
    anywhere in the exception's chain), naming the command's URLs and where credentials are
    read from; None for anything else."""
    seen: BaseException | None = exc
    while seen is not None:
        if type(seen).__name__ in CREDENTIAL_ERRORS:
            urls = [a for a in sys.argv[1:] if "://" in a] or ["the object store"]
            return (
                f"no credentials for {', '.join(urls)} ({seen}): set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), and AWS_ENDPOINT_URL for a store "
                'other than AWS (docs/data.md, "Object storage")'
            )
        seen = seen.__cause__ or seen.__context__
    return None


def main() -> None:
    """Console-script entry point: user errors - ours and the option parser's - become one
    line on stderr (exit 2); Ctrl-C says how to go on (exit 130)."""
    from typer._click.exceptions import ClickException
    from typer.exceptions import Abort

    _said_on_interrupt[0] = None
    try:
        repeated = _repeated_option(sys.argv[1:])
        if repeated:
            raise UserError(repeated)
        code = app(standalone_mode=False)
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(USER_ERROR)
    except ClickException as exc:
        typer.echo(f"error: {' '.join(exc.format_message().split())}", err=True)
        sys.exit(USER_ERROR)
    except Abort:  # Ctrl-C at a prompt (typer turns it into exit code 130 elsewhere)
        code = INTERRUPTED
    except Exception as exc:
        missing = _missing_credentials(exc)
        if missing is None:
            raise
        typer.echo(f"error: {missing}", err=True)
        sys.exit(USER_ERROR)
    if code == INTERRUPTED:
        typer.echo(_said_on_interrupt[0] or _interrupted(sys.argv[1:]), err=True)
    if isinstance(code, int) and code:
        sys.exit(code)
