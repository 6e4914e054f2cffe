"""The OpenAI-compatible routes: thin handlers that translate, run the native pipeline and translate back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from modelstore import model as stored
from modelstore.names import parse_name
from server import inference, openai, responses
from server import rerank as reranking
from server.api import RequestError, parse_request
from server.api import RerankRequest as NativeRerankRequest
from server.api_openai import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Completion,
    CompletionRequest,
    EmbeddingList,
    EmbedRequest,
    Model,
    ModelList,
    RerankList,
    RerankRequest,
    ResponsesRequest,
    ResponsesResponse,
    ResponsesStreamEvent,
    parse,
)
from server.embed import embed
from server.http import APIError, collect, read_json
from server.listing import listed_models
from server.observe import embedded, observed
from server.openapi import documented
from server.state import get_state

router = APIRouter()


async def _body(request: Request) -> Any:
    try:
        return await read_json(request)
    except RequestError as e:
        # Go's ShouldBindJSON reports an empty body as io.EOF.
        raise RequestError("EOF" if str(e) == "missing request body" else str(e)) from None


def _error(e: APIError) -> Response:
    return openai.error_response(e.message, e.status)


def _error_events(e: APIError) -> list[bytes]:
    """A failure after the stream began: an `error` payload (the SDKs raise on it), then [DONE]."""
    return [openai.sse_data(openai.error_body(e.message, e.status)), openai.DONE]

async def _stream_or_whole(request: Request, chunks: AsyncIterator[dict], *, stream: bool, stream_options: Any,
                           chunker: Callable[[bool], Any], whole: Callable[[list[dict]], dict]) -> Response:
    """Native chunks as OpenAI server-sent events, or collected into one OpenAI object."""
    if stream:
        sse = chunker(bool(stream_options and stream_options.include_usage))
        return await openai.sse_response(
            chunks, lambda chunk: [openai.sse_data(c) for c in sse.process(chunk)],
            on_error_before=_error, on_error_after=_error_events, finish=lambda: [openai.DONE])
    try:
        collected = await collect(chunks)
    except APIError as e:
        return _error(e)
    return openai.json_response(whole(collected))


@router.post("/v1/chat/completions")
@documented("OpenAI chat completion", request=ChatCompletionRequest, response=ChatCompletion,
            stream=ChatCompletionChunk,
            example={"model": "smollm2:135m", "messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 8,
                     "temperature": 0})
async def chat_completions(request: Request) -> Response:
    started = time.perf_counter()
    state = get_state(request)
    try:
        req: ChatCompletionRequest = parse(ChatCompletionRequest, await _body(request))
        native = openai.chat_request(req)
    except RequestError as e:
        return openai.error_response(str(e), 400)
    chunks = observed(request, inference.chat(state.store, state.scheduler, native, started), started, state.metrics)
    completion_id = openai.chat_id()
    return await _stream_or_whole(
        request, chunks, stream=req.stream and not native.debug_render_only, stream_options=req.stream_options,
        chunker=lambda usage: openai.ChatChunker(completion_id, native.model, int(time.time()), usage),
        whole=lambda collected: openai.chat_completion(completion_id, inference.join_chunks(
            collected, chat_request=True, with_tools=bool(native.tools))))


@router.post("/v1/completions")
@documented("OpenAI text completion", request=CompletionRequest, response=Completion, stream=Completion,
            example={"model": "smollm2:135m", "prompt": "Once upon a time", "max_tokens": 8, "temperature": 0})
async def completions(request: Request) -> Response:
    started = time.perf_counter()
    state = get_state(request)
    try:
        req: CompletionRequest = parse(CompletionRequest, await _body(request))
        native = openai.completion_request(req)
    except RequestError as e:
        return openai.error_response(str(e), 400)
    chunks = observed(request, inference.generate(state.store, state.scheduler, native, started), started,
                      state.metrics)
    completion_id = openai.completion_id()
    return await _stream_or_whole(
        request, chunks, stream=req.stream and not native.debug_render_only, stream_options=req.stream_options,
        chunker=lambda usage: openai.CompletionChunker(completion_id, native.model, int(time.time()), usage),
        whole=lambda collected: openai.completion(completion_id, inference.join_chunks(
            collected, chat_request=False, with_tools=False)))


@router.post("/v1/responses")
@documented("OpenAI Responses (input items, instructions, function tools, reasoning, text.format json_schema)",
            request=ResponsesRequest, response=ResponsesResponse, stream=ResponsesStreamEvent,
            example={"model": "smollm2:135m", "input": "Hello!", "max_output_tokens": 8, "temperature": 0})
async def create_response(request: Request) -> Response:
    started = time.perf_counter()
    state = get_state(request)
    try:
        req: ResponsesRequest = parse(ResponsesRequest, await _body(request))
        native = responses.chat_request(req)
    except RequestError as e:
        return openai.error_response(str(e), 400)
    chunks = observed(request, inference.chat(state.store, state.scheduler, native, started), started, state.metrics)
    resp_id, item_id = responses.response_id(), responses.message_item_id()
    if req.stream:
        converter = responses.StreamConverter(req, resp_id, item_id)
        return await openai.sse_response(
            chunks, lambda chunk: [responses.sse_event(*event) for event in converter.process(chunk)],
            on_error_before=_error,
            on_error_after=lambda e: [responses.sse_event(*converter.failed(e.message))],
            headers={"cache-control": "no-cache", "connection": "keep-alive"})
    try:
        collected = await collect(chunks)
    except APIError as e:
        return _error(e)
    final = inference.join_chunks(collected, chat_request=True, with_tools=bool(native.tools))
    return openai.json_response(responses.whole_response(req, resp_id, item_id, final))


@router.post("/v1/embeddings")
@documented("OpenAI embeddings", request=EmbedRequest, response=EmbeddingList,
            example={"model": "smollm2:135m", "input": "Hello"})
async def embeddings(request: Request) -> Response:
    state = get_state(request)
    try:
        req: EmbedRequest = parse(EmbedRequest, await _body(request))
        native, encoding = openai.embed_request(req)
    except RequestError as e:
        return openai.error_response(str(e), 400)
    try:
        result = await embed(state.store, state.scheduler, native)
        embedded(request, state.metrics, native.model, result)
    except APIError as e:
        return _error(e)
    return openai.json_response(openai.embedding_list(req.model or "", result, encoding))


@router.post("/v1/rerank")
@documented("Rerank documents against a query (llama-server's route; Jina's and Cohere's shape)",
            request=RerankRequest, response=RerankList,
            example={"model": "reranker", "query": "What is the capital of France?",
                     "documents": ["Paris is the capital of France.", "Cats sleep a lot."], "top_n": 1})
async def rerank(request: Request) -> Response:
    state = get_state(request)
    try:
        req: RerankRequest = parse(RerankRequest, await _body(request))
        native = parse_request(NativeRerankRequest, {
            "model": req.model or "", "query": req.query, "documents": req.documents, "top_n": req.top_n,
            "return_documents": bool(req.return_documents)})
    except RequestError as e:
        return openai.error_response(str(e), 400)
    try:
        result = await reranking.rerank(state.store, state.scheduler, native)
    except APIError as e:
        return _error(e)
    embedded(request, state.metrics, native.model, result)
    tokens = result["prompt_eval_count"]
    return openai.json_response({"model": native.model, "object": "list",
                                 "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                                 "results": result["results"]})


@router.get("/v1/models")
@documented("OpenAI model list", response=ModelList)
async def list_models(request: Request) -> Response:
    store = get_state(request).store

    def entry(model: stored.Model) -> dict[str, Any]:
        return openai.model_entry(model.short_name, model.modified_at_ns, parse_name(model.short_name).namespace)

    data = await asyncio.to_thread(listed_models, store, entry)
    # Ollama's list is a nil slice when empty: `null`, not `[]`.
    return openai.json_response({"object": "list", "data": data or None})


@router.get("/v1/models/{model}")
@documented("One OpenAI model", response=Model)
async def retrieve_model(model: str, request: Request) -> Response:
    store = get_state(request).store
    name = parse_name(model)
    if not name.is_valid():
        return openai.error_response("invalid model name", 400)
    found = await asyncio.to_thread(stored.load_model, store, store.canonical_name(name))
    if found is None:
        return openai.error_response(f"model '{name.display_shortest()}' not found", 404)
    return openai.json_response(openai.model_entry(model, found.modified_at_ns, name.namespace))
