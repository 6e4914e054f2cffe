"""Reranking with a cross-encoder (a GGUF whose pooling type is rank): each (query, document) pair is one
sequence, and the model's classifier head scores it. The pair is laid out as llama-server lays it out: the
GGUF's `rerank` template with `{query}` and `{document}` filled in when it has one, otherwise
BOS, query, EOS, SEP, document, EOS, each special token only where the vocabulary asks for it (EOS falling
back to SEP), so a BERT reranker reads `[CLS] query [SEP] document`."""

from __future__ import annotations

from collections.abc import Generator

import llama_cpp as lc

from engine.protocol import RerankResult
from engine.runner.embed import PooledEmbedder
from engine.runner.llama import LlamaModel
from engine.runner.window import INPUT_TOO_LONG, PromptError, bounded_tokens

NOT_A_RERANKER = "this model does not support reranking"


def pair_tokens(model: LlamaModel, query: str, document: str, limit: int, truncate: bool) -> list[int]:
    template = model.named_template("rerank")
    if template is not None:
        text = template.replace("{query}", query).replace("{document}", document)
        tokens = bounded_tokens(model, text, head=limit, add_special=False, parse_special=True)
        if len(tokens) > limit:
            raise PromptError(INPUT_TOO_LONG, 400)
        return tokens
    eos = model.eos if model.eos != lc.LLAMA_TOKEN_NULL else model.sep
    head = [model.bos] if model.add_bos else []
    head += bounded_tokens(model, query, head=limit, add_special=False, parse_special=False)
    head += [eos] if model.add_eos else []
    head += [model.sep] if model.add_sep else []
    tail = [eos] if model.add_eos else []
    body = bounded_tokens(model, document, head=limit, add_special=False, parse_special=False)
    room = limit - len(head) - len(tail)
    if len(body) > room:
        if not truncate or room < 1:  # the query alone must leave room for some of the document
            raise PromptError(INPUT_TOO_LONG, 400)
        body = body[:room]
    return head + body + tail


class Reranker:
    def __init__(self, embedder: PooledEmbedder) -> None:
        self.embedder = embedder

    def rerank(self, query: str, documents: list[str], truncate: bool) -> Generator[None, None, RerankResult]:
        """Pauses between decodes, as embeddings do, so that a cancel stops a long list."""
        pairs = [pair_tokens(self.embedder.model, query, doc, self.embedder.num_ctx, truncate) for doc in documents]
        outputs = yield from self.embedder.pooled(pairs)
        return RerankResult(scores=[output[0] for output in outputs],
                            prompt_eval_count=sum(len(tokens) for tokens in pairs))
