"""`/api/generate`, `/api/chat`, `/api/embed` and `/api/embeddings`."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator

from fastapi import APIRouter, Request
from starlette.responses import Response

from server import embed as embeddings
from server import inference
from server import rerank as reranking
from server.api import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    EmbedRequest,
    EmbedResponse,
    GenerateRequest,
    GenerateResponse,
    RerankRequest,
    RerankResponse,
    parse_request,
)
from server.http import APIError, collect, json_response, read_json, stream_response
from server.observe import embedded, observed, record_of
from server.openapi import documented
from server.state import get_state

router = APIRouter()


async def _respond(first: dict | None, chunks: AsyncGenerator[dict], *, stream: bool, chat: bool,
                   with_tools: bool) -> Response:
    """The answer to a generation whose first chunk has been taken: load, unload and render-only answers are
    one object even when streaming."""
    shape = ChatResponse if chat else GenerateResponse
    if first is not None and (first.get("done_reason") in ("load", "unload") or "_debug_info" in first):
        await chunks.aclose()  # runs the pipeline's cleanup: the scheduler hold is released
        return json_response(shape.model_validate(first).wire())
    if stream:
        return await stream_response(chunks, first, lambda chunk: shape.model_validate(chunk).wire())
    collected = await collect(chunks, first)
    if not collected:
        raise APIError("no response", 500)
    return json_response(shape.model_validate(inference.join_chunks(collected, chat_request=chat,
                                                                    with_tools=with_tools)).wire())


@router.post("/api/generate")
@documented("Complete a prompt", request=GenerateRequest, response=GenerateResponse, stream=GenerateResponse,
            example={"model": "smollm2:135m", "prompt": "Why is the sky blue?", "stream": False,
                     "options": {"num_predict": 8, "temperature": 0}})
async def generate(request: Request) -> Response:
    started = time.perf_counter()
    state = get_state(request)
    req: GenerateRequest = parse_request(GenerateRequest, await read_json(request))
    chunks = observed(request, inference.generate(state.store, state.scheduler, req, started), started, state.metrics)
    return await _respond(await anext(chunks, None), chunks, stream=req.stream is not False, chat=False,
                          with_tools=False)


@router.post("/api/chat")
@documented("The next message of a chat", request=ChatRequest, response=ChatResponse, stream=ChatResponse,
            example={"model": "smollm2:135m", "messages": [{"role": "user", "content": "Hello!"}], "stream": False,
                     "options": {"num_predict": 8, "temperature": 0}})
async def chat(request: Request) -> Response:
    started = time.perf_counter()
    state = get_state(request)
    req: ChatRequest = parse_request(ChatRequest, await read_json(request))
    chunks = observed(request, inference.chat(state.store, state.scheduler, req, started), started, state.metrics)
    return await _respond(await anext(chunks, None), chunks, stream=req.stream is not False, chat=True,
                          with_tools=bool(req.tools))


@router.post("/api/embed")
@documented("Embeddings of one or more inputs", request=EmbedRequest, response=EmbedResponse,
            example={"model": "smollm2:135m", "input": ["Hello", "World"]})
async def embed(request: Request) -> Response:
    state = get_state(request)
    req: EmbedRequest = parse_request(EmbedRequest, await read_json(request))
    result = await embeddings.embed(state.store, state.scheduler, req)
    embedded(request, state.metrics, req.model, result)
    return json_response(result)


@router.post("/api/rerank")
@documented("Score documents against a query with a reranker model (pollama's own; Ollama has none)",
            request=RerankRequest, response=RerankResponse,
            example={"model": "reranker", "query": "What is the capital of France?",
                     "documents": ["Paris is the capital of France.", "Cats sleep a lot."], "top_n": 1})
async def rerank(request: Request) -> Response:
    state = get_state(request)
    req: RerankRequest = parse_request(RerankRequest, await read_json(request))
    result = await reranking.rerank(state.store, state.scheduler, req)
    embedded(request, state.metrics, req.model, result)
    return json_response(result)


@router.post("/api/embeddings")
@documented("The embedding of one prompt (the older route)", request=EmbeddingRequest, response=EmbeddingResponse,
            example={"model": "smollm2:135m", "prompt": "Hello"})
async def legacy_embeddings(request: Request) -> Response:
    state = get_state(request)
    req: EmbeddingRequest = parse_request(EmbeddingRequest, await read_json(request))
    record_of(request).model = req.model
    return json_response(await embeddings.embeddings(state.store, state.scheduler, req))
