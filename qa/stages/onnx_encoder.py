"""Encode questions with ONNX Runtime, so that asking never imports torch.

Importing torch, transformers and sentence-transformers takes several seconds,
far more than everything else a cold ``qa ask`` does. So at index time, when
the sentence-transformers model is loaded anyway, ``export`` writes the
model's transformer to ONNX; at query time ``OnnxEncoder`` encodes with
onnxruntime, tokenizers and numpy alone.

Only the transformer is exported (token ids -> token vectors). The steps after
it (pooling, Dense layers, normalisation) are a few array operations: they are
read from the live sentence-transformers modules, recorded in
``encoder.json`` and replayed in numpy, so nothing about a model is guessed
from its name. Query and document prompts (e5's ``query: `` / ``passage: ``)
are recorded too and applied the way sentence-transformers applies them. A
model with any other module is refused at export; the caller then keeps
encoding with sentence-transformers.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

FORMAT_VERSION = 1
META = "encoder.json"
TOKENIZER = "tokenizer.json"
# Optimised once at export, with its weights in a side file that onnxruntime
# maps instead of parsing: a session then opens about twice as fast.
MODEL = "model.onnx"
WEIGHTS = "model.onnx.data"
OPSET = 17
# Exported vectors must match sentence-transformers' to this cosine, or the export is refused.
MIN_COSINE = 0.9999
# Checked in two batches, the long text alone: padded to the model's maximum
# length, the short ones would cost as much as the long one.
_VERIFY_BATCHES = [
    [
        "What did NIST sign with Korea?",
        "Der Premierminister reiste im April 2024 zu einem Staatsbesuch nach Washington.",
        "한국산업기술진흥원은 국립표준기술연구소와 협력의향서를 체결했다.",
        "日美两国领导人在华盛顿举行会谈。",
        "x",
    ],
    ["A long text that is cut at the model's maximum length. " * 80],
]


class ExportError(Exception):
    """The model cannot be exported faithfully; queries keep using sentence-transformers."""


def cache_dir(index_dir: Path, model: str) -> Path:
    """Where an index keeps the ONNX export of a model, shared by its generations.

    Readable from the name, unique by a hash of it: ``org/model`` and
    ``org-model`` must not share a folder.
    """
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", model).strip("-.")[-60:] or "model"
    return index_dir / "models" / f"{slug}-{hashlib.sha256(model.encode()).hexdigest()[:8]}"


def is_exported(folder: Path, model: str) -> bool:
    """An export of ``model`` in this qa's format is complete in ``folder``."""
    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("format_version") == FORMAT_VERSION and meta.get("model") == model


def export(st: "SentenceTransformer", model: str, target: Path) -> None:
    """Export a loaded model to ``target``, verified against the model, all or nothing.

    The export is built in a staging folder beside ``target`` and renamed into
    place, so a reader sees either no export or a complete one.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    staging.mkdir()
    try:
        _export(st, model, staging)
        old = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.old")
        if target.exists():
            os.replace(target, old)
        os.replace(staging, target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _export(st: "SentenceTransformer", model: str, folder: Path) -> None:
    import onnxruntime as ort
    import torch
    from tokenizers import Tokenizer

    modules = list(st)
    transformer = modules[0] if modules else None
    if type(transformer).__name__ != "Transformer":
        raise ExportError(f"the first module is {type(transformer).__name__}, not a Transformer")
    tokenizer = transformer.tokenizer
    if tokenizer is None or not getattr(tokenizer, "is_fast", False):
        raise ExportError("the model has no fast tokenizer (tokenizer.json)")
    steps = _post_steps(modules[1:], folder)

    # The backend tokenizer carries the model's own normalisation (lower-casing
    # included). Truncation and padding are set at query time from encoder.json,
    # not from whatever a tokenizer.json happens to have baked in.
    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    backend.no_truncation()
    backend.no_padding()
    backend.save(str(folder / TOKENIZER))

    inputs = ["input_ids", "attention_mask"]
    if "token_type_ids" in tokenizer.model_input_names:
        inputs.append("token_type_ids")

    class Body(torch.nn.Module):
        def __init__(self, network):
            super().__init__()
            self.network = network

        def forward(self, *tensors):
            return self.network(**dict(zip(inputs, tensors)), return_dict=True).last_hidden_state

    # A padded batch, so the attention mask is traced as an input rather than folded away.
    sample = tokenizer(["a sample sentence to trace the model with", "short"], padding=True, return_tensors="pt")
    raw = folder / "raw.onnx"
    axes = {name: {0: "batch", 1: "sequence"} for name in [*inputs, "last_hidden_state"]}
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # The TorchScript exporter: seconds, where the dynamo one takes tens of seconds and onnxscript.
        torch.onnx.export(
            Body(transformer.auto_model.float().eval()),
            tuple(sample[name] for name in inputs),
            str(raw),
            input_names=inputs,
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    # EXTENDED fusions hold on any CPU; ALL would bake this machine's memory layouts into the file.
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(folder / MODEL)
    options.add_session_config_entry("session.optimized_model_external_initializers_file_name", WEIGHTS)
    options.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
    ort.InferenceSession(str(raw), options, providers=["CPUExecutionProvider"])
    raw.unlink()

    meta = {
        "format_version": FORMAT_VERSION,
        "model": model,
        "inputs": inputs,
        "max_seq_length": int(st.max_seq_length or tokenizer.model_max_length),
        "pad_id": int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0),
        "pad_token": tokenizer.pad_token or "[PAD]",
        "padding_side": getattr(tokenizer, "padding_side", "right"),
        "dimension": int(st.get_embedding_dimension()),
        "steps": steps,
        "prompts": {name: text or "" for name, text in (st.prompts or {}).items()},
        "default_prompt_name": st.default_prompt_name,
    }
    encoder = OnnxEncoder(folder, meta)
    for texts in _VERIFY_BATCHES:
        for ours, theirs in (
            (encoder.encode_queries(texts), st.encode_query(texts, normalize_embeddings=True)),
            (encoder.encode_documents(texts), st.encode_document(texts, normalize_embeddings=True)),
        ):
            worst = float(np.min(np.sum(ours * np.asarray(theirs, dtype=np.float32), axis=1)))
            if worst < MIN_COSINE:
                raise ExportError(f"ONNX vectors differ from sentence-transformers' (cosine {worst:.6f})")
    # Written last: its presence is what marks the export complete.
    (folder / META).write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")


def _post_steps(modules: list, folder: Path) -> list[dict]:
    """The modules after the transformer as numpy steps; Dense weights go to .npy files."""
    steps: list[dict] = []
    for position, module in enumerate(modules, start=1):
        kind = type(module).__name__
        if kind == "Pooling":
            modes = [module.pooling_mode] if isinstance(module.pooling_mode, str) else list(module.pooling_mode)
            unknown = set(modes) - set(_POOLERS)
            if unknown:
                raise ExportError(f"pooling mode {sorted(unknown)} is not supported")
            steps.append({"type": "pooling", "modes": modes, "include_prompt": bool(module.include_prompt)})
        elif kind == "Dense":
            activation = type(module.activation_function).__name__
            if activation not in ("Identity", "Tanh"):
                raise ExportError(f"Dense activation {activation} is not supported")
            linear = module.linear
            weight = linear.weight.detach().float().numpy().T
            bias = linear.bias.detach().float().numpy() if linear.bias is not None else np.zeros(weight.shape[1], np.float32)
            np.save(folder / f"dense_{position}_weight.npy", np.ascontiguousarray(weight))
            np.save(folder / f"dense_{position}_bias.npy", bias)
            steps.append({"type": "dense", "name": f"dense_{position}", "activation": activation})
        elif kind == "Normalize":
            steps.append({"type": "normalize"})
        else:
            raise ExportError(f"module {kind} is not supported")
    if not any(step["type"] == "pooling" for step in steps):
        raise ExportError("the model has no Pooling module")
    return steps


class OnnxEncoder:
    """A model exported by ``export``: normalised float32 vectors, no torch."""

    def __init__(self, folder: Path, meta: dict | None = None):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.meta = meta if meta is not None else json.loads((folder / META).read_text(encoding="utf-8"))
        self.name = str(self.meta["model"])
        self.dimension = int(self.meta["dimension"])
        self.max_tokens = int(self.meta["max_seq_length"])
        self.prompts: dict[str, str] = self.meta["prompts"]
        self._tokenizer = Tokenizer.from_file(str(folder / TOKENIZER))
        # Longest-first truncation at the model's maximum and padding to the
        # longest text of a batch: what sentence-transformers does.
        self._tokenizer.enable_truncation(max_length=int(self.meta["max_seq_length"]))
        self._tokenizer.enable_padding(
            direction=self.meta["padding_side"], pad_id=self.meta["pad_id"], pad_token=self.meta["pad_token"]
        )
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # optimised at export
        options.intra_op_num_threads = min(4, os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(folder / MODEL), options, providers=["CPUExecutionProvider"])
        self._dense = {
            step["name"]: (np.load(folder / f"{step['name']}_weight.npy"), np.load(folder / f"{step['name']}_bias.npy"))
            for step in self.meta["steps"]
            if step["type"] == "dense"
        }
        self._prompt_lengths: dict[str, int] = {}

    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for ``text``, without special tokens."""
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Like sentence-transformers' ``encode_query``: the ``query`` prompt if the model has one."""
        return self.encode(texts, self.prompts["query"] if "query" in self.prompts else self._default_prompt())

    def encode_documents(
        self, texts: Sequence[str], batch_size: int = 32, on_batch: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Like ``encode_document``: the first of the ``document``, ``passage``, ``corpus`` prompts."""
        prompt = next((self.prompts[name] for name in ("document", "passage", "corpus") if name in self.prompts), None)
        vectors = self.encode(texts, self._default_prompt() if prompt is None else prompt, batch_size)
        if on_batch:
            on_batch(len(texts))
        return vectors

    def _default_prompt(self) -> str:
        name = self.meta["default_prompt_name"]
        return self.prompts.get(name, "") if name else ""

    def encode(self, texts: Sequence[str], prompt: str = "", batch_size: int = 32) -> np.ndarray:
        """One normalised row per text, ``prompt`` prepended to each."""
        texts = [prompt + text for text in texts]
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        # Similar lengths side by side: less padding to compute.
        order = np.argsort([-len(text) for text in texts], kind="stable")
        for offset in range(0, len(texts), batch_size):
            rows = order[offset : offset + batch_size]
            vectors[rows] = self._encode_batch([texts[row] for row in rows], prompt)
        return vectors

    def _encode_batch(self, texts: list[str], prompt: str) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
        feed = {"input_ids": np.asarray([e.ids for e in encodings], dtype=np.int64), "attention_mask": mask}
        if "token_type_ids" in self.meta["inputs"]:
            feed["token_type_ids"] = np.asarray([e.type_ids for e in encodings], dtype=np.int64)
        hidden = self._session.run(None, feed)[0]
        vectors = hidden
        for step in self.meta["steps"]:
            if step["type"] == "pooling":
                pooling_mask = mask
                if prompt and not step["include_prompt"]:
                    pooling_mask = _without_prompt(mask, self._prompt_length(prompt))
                vectors = np.concatenate([_POOLERS[mode](hidden, pooling_mask, mask) for mode in step["modes"]], axis=1)
            elif step["type"] == "dense":
                weight, bias = self._dense[step["name"]]
                vectors = vectors @ weight + bias
                if step["activation"] == "Tanh":
                    vectors = np.tanh(vectors)
            elif step["type"] == "normalize":
                vectors = _normalise(vectors)
        return _normalise(vectors.astype(np.float32, copy=False))

    def _prompt_length(self, prompt: str) -> int:
        """Tokens of the prompt without a trailing special token, as sentence-transformers counts them."""
        if prompt not in self._prompt_lengths:
            encoding = self._tokenizer.encode(prompt)
            length = sum(encoding.attention_mask)
            if encoding.special_tokens_mask and encoding.special_tokens_mask[length - 1]:
                length -= 1
            self._prompt_lengths[prompt] = length
        return self._prompt_lengths[prompt]


def _normalise(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def _without_prompt(mask: np.ndarray, length: int) -> np.ndarray:
    """The mask with the prompt's tokens (after any left padding) switched off."""
    first = mask.argmax(axis=1)
    positions = np.arange(mask.shape[1])[None, :]
    return np.where(positions < (first + length)[:, None], 0, mask)


def _mean(hidden: np.ndarray, mask: np.ndarray, attention: np.ndarray) -> np.ndarray:
    weights = mask[..., None].astype(np.float32)
    return (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)


def _mean_sqrt_len(hidden: np.ndarray, mask: np.ndarray, attention: np.ndarray) -> np.ndarray:
    weights = mask[..., None].astype(np.float32)
    return (hidden * weights).sum(axis=1) / np.sqrt(np.maximum(weights.sum(axis=1), 1e-9))


def _cls(hidden: np.ndarray, mask: np.ndarray, attention: np.ndarray) -> np.ndarray:
    return hidden[np.arange(len(hidden)), mask.argmax(axis=1)]


def _max(hidden: np.ndarray, mask: np.ndarray, attention: np.ndarray) -> np.ndarray:
    return np.where(mask[..., None] > 0, hidden, -np.inf).max(axis=1)


def _last_token(hidden: np.ndarray, mask: np.ndarray, attention: np.ndarray) -> np.ndarray:
    last = mask.shape[1] - 1 - mask[:, ::-1].argmax(axis=1)
    return hidden[np.arange(len(hidden)), last]


def _weighted_mean(hidden: np.ndarray, mask: np.ndarray, attention: np.ndarray) -> np.ndarray:
    """Later tokens weigh more, counted from the first real token (``attention``, not the prompt-free mask)."""
    positions = np.arange(1, hidden.shape[1] + 1, dtype=np.float32)[None, :] - attention.argmax(axis=1)[:, None]
    weights = mask[..., None] * positions[..., None]
    return (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)


_POOLERS = {
    "mean": _mean,
    "mean_sqrt_len_tokens": _mean_sqrt_len,
    "cls": _cls,
    "max": _max,
    "lasttoken": _last_token,
    "weightedmean": _weighted_mean,
}
