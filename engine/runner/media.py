"""Images through a projector with llama.cpp's multimodal library (mtmd), via llama_cpp.mtmd_cpp.

The daemon marks image k in the prompt as `[img-k]` (Ollama's markers); here the markers become mtmd's
media marker, the prompt is split into text and image chunks, and the chunks are evaluated into one
sequence of the llama context (images are encoded by the projector, then decoded as embeddings).
"""

from __future__ import annotations

import ctypes
import re
from dataclasses import dataclass

import llama_cpp as lc
import llama_cpp.mtmd_cpp as mtmd

from engine.runner.llama import LlamaContext, LlamaError, LlamaModel

_MARKER = re.compile(r"\[img-(\d+)\]")


class MediaError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Evaluated:
    tokens: list[int]  # what the KV cache holds: text tokens, and a unique negative id per image position
    text_tokens: list[int]  # the prompt's text tokens (for repeat penalties)


_image_ids = iter(range(-1, -(1 << 62), -1))


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

    def evaluate(self, ctx: LlamaContext, prompt: str, images: list[bytes], *, seq_id: int, num_batch: int,
                 num_ctx: int) -> Evaluated:
        """Tokenize the prompt with its images and decode it all into `seq_id` from position 0; the logits of
        the last position are ready to sample from."""
        text, order = self.prompt_text(prompt, len(images))
        bitmaps = []
        chunks = mtmd.mtmd_input_chunks_init()
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
            n_pos = mtmd.mtmd_helper_get_n_pos(chunks)
            if n_pos > num_ctx:
                raise MediaError("the input length exceeds the context length")
            tokens, text_tokens = self._positions(chunks)
            new_n_past = lc.llama_pos(0)
            status = mtmd.mtmd_helper_eval_chunks(self.ctx, ctx.ctx, chunks, 0, seq_id, num_batch, True,
                                                  ctypes.byref(new_n_past))
            if status != 0:
                raise MediaError(f"failed to evaluate the prompt with its images (status {status})", 500)
            del tokens[new_n_past.value:]
            return Evaluated(tokens, text_tokens)
        finally:
            mtmd.mtmd_input_chunks_free(chunks)
            for bitmap in bitmaps:
                mtmd.mtmd_bitmap_free(bitmap)

    @staticmethod
    def _positions(chunks: mtmd.mtmd_input_chunks_p) -> tuple[list[int], list[int]]:
        tokens: list[int] = []
        text_tokens: list[int] = []
        for i in range(mtmd.mtmd_input_chunks_size(chunks)):
            chunk = mtmd.mtmd_input_chunks_get(chunks, i)
            if mtmd.mtmd_input_chunk_get_type(chunk) == mtmd.MTMD_INPUT_CHUNK_TYPE_TEXT:
                count = ctypes.c_size_t(0)
                pointer = mtmd.mtmd_input_chunk_get_tokens_text(chunk, ctypes.byref(count))
                piece = [pointer[j] for j in range(count.value)]
                tokens += piece
                text_tokens += piece
            else:  # an image's positions never match another prompt's, so no cache reuse past them
                tokens += [next(_image_ids) for _ in range(mtmd.mtmd_input_chunk_get_n_pos(chunk))]
        return tokens, text_tokens

    def close(self) -> None:
        if self.ctx:
            mtmd.mtmd_free(self.ctx)
            self.ctx = None
