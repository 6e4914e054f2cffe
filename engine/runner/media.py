"""Images through a projector with llama.cpp's multimodal library (mtmd), via llama_cpp.mtmd_cpp.

The daemon marks image k in the prompt as `[img-k]` (Ollama's markers); here the markers become mtmd's
media marker and the prompt is split into text and image chunks (`Projector.prepare`). The step loop then
evaluates them as any prompt: text in its batches, each image encoded by the projector and its embeddings
decoded a batch at a time between steps (`Projector.encode`, `Projector.decode_next`), while the other
sequences go on decoding.

In a slot's cache an image position is a negative id derived from the image's bytes and the position's
place in the image, so the same image at the same place is a cached prefix like any text.
"""

from __future__ import annotations

import ctypes
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import llama_cpp as lc
import llama_cpp.mtmd_cpp as mtmd
import numpy as np

from engine.runner.llama import LlamaContext, LlamaError, LlamaModel

_MARKER = re.compile(r"\[img-(\d+)\]")
_ID_SPACE = 1 << 62


class MediaError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def image_ids(data: bytes, positions: int) -> list[int]:
    """The cache ids of an image's positions: negative (text ids are not), from its bytes and the place."""
    start = int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little") % _ID_SPACE
    return [-1 - (start + i) % _ID_SPACE for i in range(positions)]


@dataclass
class Image:
    """One image of a prompt on its way into a slot's cache."""

    chunk: mtmd.mtmd_input_chunk_p  # owned: freed by Prepared.close()
    ids: list[int]  # its cache ids, one per position
    n_tokens: int  # embeddings (with M-RoPE, more than positions)
    non_causal: bool  # its embeddings attend to each other both ways: decoded in one batch
    embeddings: np.ndarray | None = None  # [n_tokens, n_embd], once encoded
    decoded: int = 0  # embeddings decoded so far
    filled: int = 0  # positions complete in the cache

    def next_count(self, limit: int) -> int:
        """Embeddings (and so KV cells) the next decode takes: at most `limit`, or all the rest."""
        left = self.n_tokens - self.decoded
        return left if self.non_causal else min(limit, left)


@dataclass
class Prepared:
    """A prompt with images, tokenized: the cache ids of all its positions and the pieces to evaluate."""

    tokens: list[int]
    text_tokens: list[int]  # for repeat penalties
    pieces: list[list[int] | Image] = field(default_factory=list)

    def remaining(self, cached: int) -> tuple[int, list[int], list[tuple[Image, list[int]]]]:
        """What is left to evaluate after the first `cached` positions: (cached, leading text, each image with
        the text that follows it). A cache ending inside an image is cut back to the image's start."""
        position, lead, images = 0, [], []
        for piece in self.pieces:
            size = len(piece) if isinstance(piece, list) else len(piece.ids)
            end = position + size
            if isinstance(piece, list):
                text = piece[max(cached - position, 0):] if end > cached else []
                (images[-1][1] if images else lead).extend(text)
            elif end > cached:
                cached = min(cached, position)
                images.append((piece, []))
            position = end
        return cached, lead, images

    def images(self) -> Iterator[Image]:
        return (piece for piece in self.pieces if isinstance(piece, Image))

    def close(self) -> None:
        for image in self.images():
            if image.chunk:
                mtmd.mtmd_input_chunk_free(image.chunk)
                image.chunk = None


class EmbeddingBatch:
    """A reusable llama_batch of image embeddings (up to `capacity`, with room for M-RoPE's four positions)."""

    def __init__(self, capacity: int, n_embd: int) -> None:
        self.capacity = capacity
        self.n_embd = n_embd
        self.raw = lc.llama_batch_init(capacity * 4, n_embd, 1)
        self.n_tokens = 0

    def fill(self, embeddings: np.ndarray, positions: np.ndarray, seq_id: int, logits_last: bool) -> None:
        """`positions`: [n] or, for M-RoPE, [4, n] (section-major, as llama.cpp reads them)."""
        n = len(embeddings)
        raw = self.raw
        data = np.ascontiguousarray(embeddings, dtype=np.float32)
        ctypes.memmove(raw.embd, data.ctypes.data, data.nbytes)
        flat = np.ascontiguousarray(positions, dtype=np.int32).ravel()
        ctypes.memmove(raw.pos, flat.ctypes.data, flat.nbytes)
        for i in range(n):
            raw.n_seq_id[i] = 1
            raw.seq_id[i][0] = seq_id
            raw.logits[i] = logits_last and i == n - 1
        self.n_tokens = n

    def close(self) -> None:
        if self.raw is not None:
            lc.llama_batch_free(self.raw)
            self.raw = None


class Projector:
    """One mtmd context: the projector GGUF loaded against the text model."""

    def __init__(self, path: str, model: LlamaModel, *, threads: int, use_gpu: bool) -> None:
        params = mtmd.mtmd_context_params_default()
        params.use_gpu = use_gpu
        params.n_threads = threads
        params.print_timings = False
        self.marker = (params.media_marker or mtmd.mtmd_default_marker()).decode()
        ctx = mtmd.mtmd_init_from_file(path.encode(), model.model, params)
        if not ctx:
            raise LlamaError(f"failed to load the projector: {path}")
        self.ctx = ctx
        self.model = model
        self.n_embd = lc.llama_model_n_embd_inp(model.model)
        self.mrope = bool(mtmd.mtmd_decode_use_mrope(ctx))
        self._batch: EmbeddingBatch | None = None

    def prompt_text(self, prompt: str, count: int) -> tuple[str, list[int]]:
        """The prompt with `[img-k]` markers as mtmd markers, and the images in the order they appear.
        Images without a marker go first; a marker for an image that was not sent stays text."""
        order: list[int] = []

        def replace(match: re.Match[str]) -> str:
            k = int(match.group(1))
            if k < count and k not in order:
                order.append(k)
                return self.marker
            return match.group(0)

        text = _MARKER.sub(replace, prompt)
        missing = [k for k in range(count) if k not in order]
        return self.marker * len(missing) + text, missing + order

    def prepare(self, prompt: str, images: list[bytes], num_ctx: int) -> Prepared:
        """Tokenize the prompt with its images (each image's bytes decoded, none encoded yet)."""
        text, order = self.prompt_text(prompt, len(images))
        bitmaps = []
        chunks = mtmd.mtmd_input_chunks_init()
        prepared = Prepared([], [])
        try:
            for k in order:
                data = images[k]
                buffer = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
                bitmap = mtmd.mtmd_helper_bitmap_init_from_buf(self.ctx, buffer, len(data), False)
                if not bitmap:
                    raise MediaError(f"failed to decode image {k}")
                bitmaps.append(bitmap)
            encoded = text.encode()
            source = mtmd.mtmd_input_text(encoded, len(encoded), True, True)
            array = (mtmd.mtmd_bitmap_p_ctypes * len(bitmaps))(*bitmaps)
            status = mtmd.mtmd_tokenize(self.ctx, chunks, ctypes.byref(source), array, len(bitmaps))
            if status != 0:
                raise MediaError(f"failed to tokenize the prompt with its images (status {status})")
            if mtmd.mtmd_helper_get_n_pos(chunks) > num_ctx:
                raise MediaError("the input length exceeds the context length")
            sources = iter(images[k] for k in order)
            for i in range(mtmd.mtmd_input_chunks_size(chunks)):
                chunk = mtmd.mtmd_input_chunks_get(chunks, i)
                if mtmd.mtmd_input_chunk_get_type(chunk) == mtmd.MTMD_INPUT_CHUNK_TYPE_TEXT:
                    count = ctypes.c_size_t(0)
                    pointer = mtmd.mtmd_input_chunk_get_tokens_text(chunk, ctypes.byref(count))
                    piece = [pointer[j] for j in range(count.value)]
                    prepared.pieces.append(piece)
                    prepared.tokens += piece
                    prepared.text_tokens += piece
                elif mtmd.mtmd_input_chunk_get_type(chunk) == mtmd.MTMD_INPUT_CHUNK_TYPE_IMAGE:
                    ids = image_ids(next(sources), mtmd.mtmd_input_chunk_get_n_pos(chunk))
                    non_causal = bool(mtmd.mtmd_decode_use_non_causal(self.ctx, chunk))
                    image = Image(mtmd.mtmd_input_chunk_copy(chunk), ids, mtmd.mtmd_input_chunk_get_n_tokens(chunk),
                                  non_causal)
                    prepared.pieces.append(image)
                    prepared.tokens += ids
                else:
                    raise MediaError("only images are supported")
            return prepared
        except BaseException:
            prepared.close()
            raise
        finally:
            mtmd.mtmd_input_chunks_free(chunks)
            for bitmap in bitmaps:
                mtmd.mtmd_bitmap_free(bitmap)

    def encode(self, image: Image) -> None:
        """Run the image through the projector (one pass; it cannot be split) and keep its embeddings."""
        if mtmd.mtmd_encode_chunk(self.ctx, image.chunk) != 0:
            raise MediaError("failed to encode the image", 500)
        output = mtmd.mtmd_get_output_embd(self.ctx)
        image.embeddings = np.ctypeslib.as_array(output, shape=(image.n_tokens, self.n_embd)).copy()

    def decode_next(self, ctx: LlamaContext, image: Image, *, seq_id: int, position: int, limit: int,
                    logits_last: bool) -> list[int]:
        """Decode the image's next embeddings (at most `limit`; all of them when attention within the image
        is not causal) into `seq_id`, whose cache holds `position` positions. Returns the ids of the positions
        now complete, for the slot's tokens: with M-RoPE (positions are not one per embedding, and the
        image's all start at `position`) none until the last batch. With `logits_last`, the image's last
        embedding gets logits (the decode's last output)."""
        assert image.embeddings is not None
        first = image.decoded
        count = image.next_count(limit)
        if self._batch is None or self._batch.capacity < count:
            if self._batch is not None:
                self._batch.close()
            self._batch = EmbeddingBatch(max(count, limit), self.n_embd)
        if self.mrope:
            places = (mtmd.mtmd_decoder_pos * image.n_tokens)()
            mtmd.mtmd_helper_image_get_decoder_pos(mtmd.mtmd_input_chunk_get_tokens_image(image.chunk), position,
                                                   places)
            section = slice(first, first + count)
            positions = np.array([[p.t for p in places[section]], [p.y for p in places[section]],
                                  [p.x for p in places[section]], [p.z for p in places[section]]], dtype=np.int32)
        else:
            positions = np.arange(position, position + count, dtype=np.int32)
        done = first + count == image.n_tokens
        self._batch.fill(image.embeddings[first:first + count], positions, seq_id, logits_last and done)
        if image.non_causal:
            lc.llama_set_causal_attn(ctx.ctx, False)
        try:
            ctx.decode(self._batch)  # type: ignore[arg-type]
        finally:
            if image.non_causal:
                lc.llama_set_causal_attn(ctx.ctx, True)
        image.decoded += count  # after the decode: one that found no room in the cache can be tried again
        complete = (len(image.ids) if done else 0) if self.mrope else image.filled + count
        ids = image.ids[image.filled:complete]
        image.filled = complete
        return ids

    def close(self) -> None:
        if self._batch is not None:
            self._batch.close()
            self._batch = None
        if self.ctx:
            mtmd.mtmd_free(self.ctx)
            self.ctx = None
