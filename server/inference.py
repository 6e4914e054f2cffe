"""The generate and chat pipelines: resolve the model, check it can do the job, schedule, render, stream."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Any

from engine.capabilities import COMPLETION, EMBEDDING, INSERT, RERANK, THINKING, TOOLS, model_capabilities
from engine.client import RunnerError
from engine.grammar import FormatError, format_to_grammar
from engine.layouts.runnable import sees_images
from engine.options import OptionError, Options, layered_options
from engine.parsers import Parser, ParserError, UnknownParser, effective_parser_name, parser_for_model, uses_harmony
from engine.parsers.harmony import FINAL_ANSWER_PREFIX
from engine.prompt import ChatPrompt, PromptTemplate, Tokenize, chat_prompt, tag_images
from engine.protocol import CompletionRequest, Done, invalid_token_message
from engine.renderers import RenderError, UnknownRendererError, resolve_name, runner_prompt, tokenizer_adds_bos
from engine.scheduler import LoadedModel, ModelSpec, QueueFull, Scheduler
from engine.template import TemplateError
from engine.thinking import ThinkingParser, infer_tags
from engine.tools import ToolParser, tool_call_id
from modelstore import gojson
from modelstore.model import Model, load_model
from modelstore.names import Name, parse_name
from modelstore.store import ModelStore
from server.api import ChatRequest, GenerateRequest
from server.envconfig import TRACE
from server.http import APIError

log = logging.getLogger(__name__)


def now_text() -> str:
    return gojson.format_utc_ns(time.time_ns())


@dataclass
class Resolved:
    name: Name
    model: Model
    capabilities: list[str]


def resolve_model(store: ModelStore, raw: str, *, empty_status: int, empty_message: str) -> Resolved:
    """Parse and look a model up; the not-found message quotes the name as the client sent it."""
    if not raw.strip():
        raise APIError(empty_message, empty_status)
    name = parse_name(raw)
    if not name.is_valid():
        raise APIError("invalid model name", 400)
    model = load_model(store, store.canonical_name(name))
    if model is None or model.gguf() is None:
        raise APIError(f"model '{raw}' not found", 404)
    return Resolved(name, model, model_capabilities(model))


def model_spec(resolved: Resolved) -> ModelSpec:
    model = resolved.model
    info = model.gguf()
    return ModelSpec(
        key=str(model.model_path),
        model_path=str(model.model_path),
        name=model.name.display_shortest(),
        digest=model.digest,
        details=model.details(),
        adapters=tuple(str(p) for p in model.adapter_paths),
        projectors=tuple(str(p) for p in model.projector_paths),
        train_ctx=info.context_length or 0,
        embedding=bool({EMBEDDING, RERANK} & set(resolved.capabilities)) and COMPLETION not in resolved.capabilities,
        vision="vision" in resolved.capabilities,
        draft=str(model.draft_path) if model.draft_path is not None else "",
    )


def request_options(model: Model, options: dict[str, Any] | None) -> Options:
    try:
        return layered_options(model.params, options)
    except OptionError as e:
        # Ollama answers 500 here; a wrong option type is the client's mistake, so 400.
        raise APIError(str(e), 400) from None


def prompt_template(resolved: Resolved, override: str = "") -> PromptTemplate:
    """The request's TEMPLATE if it gives one, else the model's renderer, Go template or Jinja template."""
    model = resolved.model
    info = model.gguf()
    try:
        if override:
            return PromptTemplate.for_model(override, None)
        if model.config.renderer:
            name = resolve_name(model.config.renderer, short_name=model.name.display_shortest(),
                                name=str(model.name), model_type=model.config.model_type)
            return PromptTemplate.for_renderer(name, model.template)
        jinja = info.kv.get("tokenizer.chat_template")
        tokens = info.kv.get("tokenizer.ggml.tokens") or []
        return PromptTemplate.for_model(
            model.template, jinja if isinstance(jinja, str) else None,
            _token_text(tokens, info.kv.get("tokenizer.ggml.bos_token_id")),
            _token_text(tokens, info.kv.get("tokenizer.ggml.eos_token_id")),
        )
    except TemplateError as e:
        raise APIError(str(e), 400 if not override else 500) from None
    except UnknownRendererError as e:
        raise APIError(str(e), 500) from None  # the model's config is at fault, not the request


async def render_prompt(render: Awaitable[ChatPrompt]) -> ChatPrompt:
    """A renderer that refuses the conversation (qwen3.8 with no user query...) is the client's mistake:
    Ollama answers 500 with the text, pollama 400."""
    try:
        return await render
    except RenderError as e:
        raise APIError(str(e), 400) from None


def completion_prompt(resolved: Resolved, prompt: str, leading_bos: str) -> str:
    info = resolved.model.gguf()
    return runner_prompt(prompt, leading_bos, tokenizer_adds_bos(info.kv if info is not None else {}))


def _token_text(tokens: list, token_id: Any) -> str:
    if isinstance(token_id, int) and 0 <= token_id < len(tokens):
        return str(tokens[token_id])
    return ""


def check_think(resolved: Resolved, raw_name: str, think: bool | str | None) -> bool | str | None:
    """Thinking models think unless told not to; asking a model that cannot is a 400."""
    if THINKING in resolved.capabilities:
        return True if think is None else think
    if think is not None and think is not False:
        raise APIError(f"{gojson.go_quote(raw_name)} does not support thinking", 400)
    return think


def check_top_logprobs(top_logprobs: int) -> None:
    if not 0 <= top_logprobs <= 20:
        raise APIError("top_logprobs must be between 0 and 20", 400)


def grammar_for(fmt: Any) -> str | None:
    try:
        return format_to_grammar(fmt)
    except FormatError as e:
        raise APIError(str(e), 400) from None


def _think_level(think: bool | str | None) -> tuple[bool | None, str]:
    if isinstance(think, str):
        return True, think
    return think, "medium" if think is True else ""


def _thinking_on(think: bool | str | None) -> bool:
    return think is True or isinstance(think, str)


def thinking_tags(resolved: Resolved, template: PromptTemplate) -> tuple[str, str]:
    """The tags around the model's thinking: inferred from its Go template, or `<think>`…`</think>` for a
    model that only has a Jinja template that thinks."""
    if template.go is not None:
        return infer_tags(template.go.root)
    if THINKING in resolved.capabilities:
        return "<think>", "</think>"
    return "", ""


def thinking_parser(resolved: Resolved, template: PromptTemplate, think: bool | str | None,
                    prompt: str) -> ThinkingParser | None:
    """A parser when thinking is on and the tags are known; primed when the prompt already opened them."""
    opening, closing = thinking_tags(resolved, template)
    if not (_thinking_on(think) and opening and closing):
        return None
    parser = ThinkingParser(opening, closing)
    if prompt.strip().endswith(opening):
        parser.add(opening)
    return parser


def tool_parser(template: PromptTemplate, tools: list[dict[str, Any]]) -> ToolParser:
    if template.go is not None:
        return ToolParser.for_template(tools, template.go.root)
    # A Jinja-only model: llama.cpp would parse its calls; guess the common tag.
    return ToolParser(tools, "<tool_call>" if template.jinja and "<tool_call>" in template.jinja else "{")


def builtin_parser(resolved: Resolved) -> Parser | None:
    """The model's built-in output parser (its config's, or harmony for gpt-oss), fresh for this request;
    it replaces the template's thinking and tool-call parsing."""
    try:
        return parser_for_model(resolved.model)
    except UnknownParser as e:
        raise APIError(str(e), 500) from None


def harmony_think(resolved: Resolved, think: bool | str | None) -> bool | str | None:
    """Harmony's reasoning effort has no `max`: it is `high` there."""
    return "high" if think == "max" and uses_harmony(resolved.model) else think


def parse_builtin(parser: Parser, text: str, done: bool) -> tuple[str, str, list[dict[str, Any]]]:
    """(content, thinking, calls) of a piece of output; a parse failure ends the request with its text."""
    try:
        content, thought, calls = parser.add(text, done)
    except ParserError as e:
        raise APIError(str(e), 500) from None
    return content, thought, calls


async def _completion(loaded: LoadedModel, request: CompletionRequest) -> AsyncIterator[Any]:
    # Prompts only at trace (OLLAMA_DEBUG=2), as Ollama logs them.
    log.log(TRACE, "completion request: prompt=%r", request.prompt)
    try:
        async with loaded.slot():
            async for event in loaded.runner.completion(request):
                yield event
    except QueueFull as e:  # too many waiting for a slot
        raise APIError(str(e), 503) from None
    except RunnerError as e:
        raise APIError(str(e), e.status) from None


async def _enter(scheduler: Scheduler, resolved: Resolved, opts: Options, keep_alive: float | None,
                 shift: bool) -> tuple[Any, LoadedModel]:
    context = scheduler.use(model_spec(resolved), opts, keep_alive, shift=shift)
    try:
        loaded = await context.__aenter__()
    except QueueFull as e:
        raise APIError(str(e), 503) from None
    except RunnerError as e:
        raise APIError(str(e), e.status) from None
    return context, loaded


def counting(loaded: LoadedModel) -> Tokenize:
    """Tokenize for fitting a prompt into the window: a text beyond it is not tokenized whole, only far
    enough to see that it does not fit."""
    return functools.partial(loaded.runner.tokenize, tail=loaded.num_ctx + 1)


def checked_context(context: list[int], loaded: LoadedModel) -> list[int]:
    """A request's `context` ids; one outside the model's vocabulary is the client's mistake."""
    n_vocab = loaded.runner.info.n_vocab
    bad = next((token for token in context if not 0 <= token < n_vocab), None)
    if bad is not None:
        raise APIError(invalid_token_message(bad, n_vocab), 400)
    return context


def _metrics(done: Done, started: float, loaded_at: float) -> dict[str, int]:
    return {
        "total_duration": int((time.perf_counter() - started) * 1e9),
        "load_duration": int((loaded_at - started) * 1e9),
        "prompt_eval_count": done.prompt_eval_count,
        "prompt_eval_duration": done.prompt_eval_duration,
        "eval_count": done.eval_count,
        "eval_duration": done.eval_duration,
    }


def _debug_info(prompt: str, images: list[bytes]) -> dict[str, Any]:
    info: dict[str, Any] = {"rendered_template": prompt}
    if images:
        info["image_count"] = len(images)
    return info


def _sees_images(model: Model) -> bool:
    return sees_images(model.model_path, model.projector_paths)


# Ollama's runner refused images for a model without a vision encoder with this text.
NO_VISION = "this model is missing data required for image input"


def check_images(resolved: Resolved, has_images: bool) -> None:
    """An image for a model that cannot see is refused (as Ollama does), not dropped for the model to guess."""
    if has_images and not _sees_images(resolved.model):
        raise APIError(NO_VISION, 400)


# ---------------------------------------------------------------------------------------------------
# /api/generate


async def generate(
    store: ModelStore, scheduler: Scheduler, req: GenerateRequest, started: float
) -> AsyncIterator[dict]:
    """Every chunk of /api/generate; the caller streams them or joins them."""
    check_top_logprobs(req.top_logprobs)
    resolved = resolve_model(store, req.model, empty_status=404, empty_message=f"model '{req.model}' not found")
    if req.prompt == "" and req.keep_alive == 0:
        await scheduler.unload(str(resolved.model.model_path))
        yield {"model": req.model, "created_at": now_text(), "response": "", "done": True, "done_reason": "unload"}
        return
    if req.raw and (req.template or req.system or req.context):
        raise APIError("raw mode does not support template, system, or context", 400)
    parser = None if req.raw else builtin_parser(resolved)
    if parser is not None:
        # as Ollama: generate's parser sees the request's own think value, before the model's default
        parser.init(None, None, harmony_think(resolved, req.think))
    think = harmony_think(resolved, check_think(resolved, req.model, req.think))
    if COMPLETION not in resolved.capabilities:
        raise APIError(f"{gojson.go_quote(req.model)} does not support generate", 400)
    if req.suffix and INSERT not in resolved.capabilities:
        raise APIError(f"{resolved.name} does not support insert", 400)
    check_images(resolved, bool(req.images))
    opts = request_options(resolved.model, req.options)
    grammar = grammar_for(req.format)
    model_template = prompt_template(resolved)
    template = prompt_template(resolved, req.template) if req.template else model_template
    context, loaded = await _enter(scheduler, resolved, opts, req.keep_alive, req.shift is not False)
    try:
        loaded_at = time.perf_counter()
        if req.prompt == "":
            yield {"model": req.model, "created_at": now_text(), "response": "", "done": True, "done_reason": "load"}
            return
        prompt, images, leading_bos = await _generate_prompt(req, resolved, template, loaded, think)
        if req.debug_render_only:
            yield {"model": req.model, "created_at": now_text(), "response": "", "done": False,
                   "_debug_info": _debug_info(prompt, images)}
            return
        thinking = None if parser is not None else \
            thinking_parser(resolved, model_template, think, prompt)  # raw prompts too, as Ollama
        request = CompletionRequest(prompt=completion_prompt(resolved, prompt, leading_bos),
                                    options=opts.predict_options(), grammar=grammar,
                                    shift=req.shift is not False, truncate=req.truncate is not False,
                                    logprobs=req.logprobs, top_logprobs=req.top_logprobs,
                                    images=images)
        pieces: list[str] = []
        async for event in _completion(loaded, request):
            if isinstance(event, Done):
                final: dict[str, Any] = {"model": req.model, "created_at": now_text(), "response": "",
                                         "done": True, "done_reason": event.done_reason}
                if parser is not None:
                    final["response"], held_thinking, calls = parse_builtin(parser, "", True)
                    if held_thinking:
                        final["thinking"] = held_thinking
                    if calls:
                        final["tool_calls"] = calls
                elif thinking is not None:
                    held_thinking, held_content = thinking.flush()
                    final["response"] = held_content
                    if held_thinking:
                        final["thinking"] = held_thinking
                if not req.raw:
                    final["context"] = await loaded.runner.tokenize(prompt + "".join(pieces), tail=loaded.num_ctx)
                final.update(_metrics(event, started, loaded_at))
                yield final
                return
            pieces.append(event.text)
            chunk: dict[str, Any] = {"model": req.model, "created_at": now_text(), "response": event.text,
                                     "done": False}
            if parser is not None or thinking is not None:
                if parser is not None:
                    # calls only count on the last piece of a generate answer, as in Ollama
                    chunk["response"], thought, _ = parse_builtin(parser, event.text, False)
                else:
                    thought, chunk["response"] = thinking.add(event.text)
                if thought:
                    chunk["thinking"] = thought
                if not thought and not chunk["response"] and not event.logprobs:
                    continue
            if event.logprobs:
                chunk["logprobs"] = event.logprobs
            yield chunk
    finally:
        await context.__aexit__(None, None, None)


async def load_pinned(store: ModelStore, scheduler: Scheduler, model: str) -> None:
    """Load a model as an empty /api/generate does, kept loaded until it is unloaded (POLLAMA_PRELOAD)."""
    request = GenerateRequest(model=model, keep_alive=-1)
    async for _ in generate(store, scheduler, request, time.perf_counter()):
        pass


async def _generate_prompt(req: GenerateRequest, resolved: Resolved, template: PromptTemplate,
                           loaded: LoadedModel, think: bool | str | None) -> tuple[str, list[bytes], str]:
    """(prompt, images, the BOS text a renderer put in front): a renderer renders the prompt as a one-turn
    chat, as Ollama does; a request TEMPLATE or a suffix goes through the Go template."""
    images = list(req.images or [])
    if req.raw:
        return req.prompt, images, ""
    if req.suffix:
        return template.render_suffix(req.prompt, req.suffix), images, ""
    model = resolved.model
    messages: list[dict[str, Any]] = []
    system = req.system or model.system
    if system:
        messages.append({"role": "system", "content": system})
    if req.context is None:
        messages += model.messages
    user: dict[str, Any] = {"role": "user", "content": req.prompt}
    if images:
        user["images"] = images
    messages.append(user)
    think_on, level = _think_level(think)
    prefix = await loaded.runner.detokenize(checked_context(req.context, loaded)) if req.context else ""
    if req.template:
        tagged, images = tag_images(messages)
        return prefix + template.render(tagged, think=think_on, think_level=level), images, ""
    rendered = await render_prompt(chat_prompt(
        template, messages, tokenize=counting(loaded), num_ctx=loaded.num_ctx,
        truncate=req.truncate is not False, think=think_on, think_level=level, think_value=think,
        count_images=_sees_images(model)))
    return prefix + rendered.text, rendered.images, template.leading_bos


# ---------------------------------------------------------------------------------------------------
# /api/chat


class _ChatOutput:
    """Runs the model's text through its built-in parser, or else through the thinking parser and then
    the tool parser, as Ollama's chat handler does; turns runner events into the `message` parts of
    chunks."""

    def __init__(self, thinking: ThinkingParser | None, tools: ToolParser | None,
                 builtin: Parser | None = None) -> None:
        self.thinking = thinking
        self.tools = tools
        self.builtin = builtin
        self.thought = ""  # all thinking so far: a format waits until it is over

    @property
    def passthrough(self) -> bool:
        """No parser: every runner chunk is passed on as it is."""
        return self.thinking is None and self.tools is None and self.builtin is None

    def parse(self, text: str, done: bool = False) -> tuple[str, str, list[dict[str, Any]]]:
        """(thinking, content, calls) of a piece of output, through the built-in parser."""
        assert self.builtin is not None
        content, thought, calls = parse_builtin(self.builtin, text, done)
        self.thought += thought
        return thought, content, [{"id": tool_call_id(), **{k: v for k, v in call.items() if k != "id"}}
                                 for call in calls]

    def think(self, text: str) -> tuple[str, str]:
        """(thinking, content) of a piece of output; both empty while the thinking parser holds it back."""
        thought, content = self.thinking.add(text) if self.thinking is not None else ("", text)
        self.thought += thought
        return thought, content

    def calls(self, content: str) -> tuple[str, list[dict[str, Any]]]:
        """The content that is not part of a tool call, and the calls completed by this piece."""
        if self.tools is None or not content:
            return content, []
        calls, content = self.tools.add(content)
        return content, [{"id": tool_call_id(), **call} for call in calls]

    def finish(self) -> tuple[str, str, list[dict[str, Any]]]:
        """(thinking, content, calls) the parsers still hold when the output ends."""
        if self.builtin is not None:
            return self.parse("", True)
        thought, content = self.thinking.flush() if self.thinking is not None else ("", "")
        self.thought += thought
        content, calls = self.calls(content)
        if self.tools is not None and not content and not calls:
            content = self.tools.content()
        return thought, content, calls


def _message(content: str, thought: str = "", calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if thought:
        message["thinking"] = thought
    if calls:
        message["tool_calls"] = calls
    return message


async def chat(store: ModelStore, scheduler: Scheduler, req: ChatRequest, started: float) -> AsyncIterator[dict]:
    """Every chunk of /api/chat."""
    check_top_logprobs(req.top_logprobs)
    resolved = resolve_model(store, req.model, empty_status=400, empty_message="model is required")
    if not req.messages and req.keep_alive == 0:
        await scheduler.unload(str(resolved.model.model_path))
        yield {"model": req.model, "created_at": now_text(), "message": {"role": "assistant", "content": ""},
               "done": True, "done_reason": "unload"}
        return
    think = check_think(resolved, req.model, req.think)
    if COMPLETION not in resolved.capabilities:
        raise APIError(f"{gojson.go_quote(req.model)} does not support chat", 400)
    if req.tools and TOOLS not in resolved.capabilities:
        raise APIError(f"{resolved.name} does not support tools", 400)
    check_images(resolved, any(m.images for m in req.messages or []))
    opts = request_options(resolved.model, req.options)
    grammar = grammar_for(req.format)
    template = prompt_template(resolved)
    parser = builtin_parser(resolved)
    context, loaded = await _enter(scheduler, resolved, opts, req.keep_alive, req.shift is not False)
    try:
        loaded_at = time.perf_counter()
        if not req.messages:
            yield {"model": req.model, "created_at": now_text(), "message": {"role": "assistant", "content": ""},
                   "done": True, "done_reason": "load"}
            return
        messages = _chat_messages(resolved.model, [m.template_dict() for m in req.messages])
        think = harmony_think(resolved, think)
        tools = req.tools
        if parser is not None:
            # the parser may rename the tools the prompt shows (harmony); it maps the names back
            tools = parser.init(req.tools, messages[-1] if messages else None, think)
        think_on, level = _think_level(think)
        truncate = req.truncate is not False

        async def render(history: list[dict[str, Any]]) -> ChatPrompt:
            return await render_prompt(chat_prompt(
                template, history, tokenize=counting(loaded), num_ctx=loaded.num_ctx, truncate=truncate,
                tools=tools, think=think_on, think_level=level, think_value=think,
                count_images=_sees_images(resolved.model)))

        rendered = await render(messages)
        if req.debug_render_only:
            yield {"model": req.model, "created_at": now_text(), "message": {"role": "assistant", "content": ""},
                   "done": False, "_debug_info": _debug_info(rendered.text, rendered.images)}
            return
        if parser is not None:
            output = _ChatOutput(None, None, parser)
            # a model told not to think answers under the format at once
            thinks = THINKING in resolved.capabilities and not (
                parser.has_thinking_support and think is not None and not _thinking_on(think))
        else:
            output = _ChatOutput(thinking_parser(resolved, template, think, rendered.text),
                                 tool_parser(template, req.tools) if req.tools else None)
            thinks = output.thinking is not None
        # A thinking model thinks without the format; once it starts answering, the answer is asked for
        # again with the thinking as history and the format applied (runtime.md §5.3).
        format_after_thinking = grammar is not None and thinks
        while True:
            restart = False
            request = CompletionRequest(prompt=completion_prompt(resolved, rendered.text, template.leading_bos),
                                        options=opts.predict_options(),
                                        grammar=None if format_after_thinking else grammar,
                                        shift=req.shift is not False, truncate=truncate,
                                        logprobs=req.logprobs, top_logprobs=req.top_logprobs,
                                        images=rendered.images)
            async with contextlib.aclosing(_completion(loaded, request)) as events:
                async for event in events:
                    if isinstance(event, Done):
                        thought, content, calls = output.finish()
                        final: dict[str, Any] = {"model": req.model, "created_at": now_text(),
                                                 "message": _message(content, thought, calls),
                                                 "done": True, "done_reason": event.done_reason}
                        final.update(_metrics(event, started, loaded_at))
                        yield final
                        return
                    chunk: dict[str, Any] = {"model": req.model, "created_at": now_text(), "done": False}
                    if output.passthrough:
                        chunk["message"] = _message(event.text)
                    elif output.builtin is not None:
                        thought, content, calls = output.parse(event.text)
                        if format_after_thinking and output.thought and content:
                            restart = True  # this piece is dropped: the answer is asked for again
                            break
                        chunk["message"] = _message(content, thought, calls)
                        if not (thought or content or calls or event.logprobs):
                            continue
                    else:
                        thought, content = output.think(event.text)
                        if format_after_thinking and output.thought and content:
                            restart, content = True, ""  # the answer is asked for again, under the format
                        content, calls = output.calls(content)
                        chunk["message"] = _message(content, thought, calls)
                        if not (thought or content or calls or event.logprobs):
                            if restart:
                                break
                            continue
                    if event.logprobs:
                        chunk["logprobs"] = event.logprobs
                    yield chunk
                    if restart:
                        break
            if not restart:
                return
            format_after_thinking = False
            rendered = await render(messages + [{"role": "assistant", "content": "", "thinking": output.thought}])
            if parser is not None and effective_parser_name(resolved.model) == "harmony":
                # the prompt ends in the thinking message; close it and open the answer the format binds
                rendered = dataclasses.replace(rendered, text=rendered.text + FINAL_ANSWER_PREFIX)
    finally:
        await context.__aexit__(None, None, None)


def _chat_messages(model: Model, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Modelfile MESSAGEs first; the model's SYSTEM in front unless the request starts with a system;
    for qwen3 and deepseek-r1, `<think>` blocks dropped from assistant turns before the last user turn."""
    result = list(model.messages) + messages
    if model.system and (not messages or messages[0].get("role") != "system"):
        result.insert(0, {"role": "system", "content": model.system})
    if model.config.model_family == "qwen3" or model.name.model == "deepseek-r1":
        last_user = max((i for i, m in enumerate(result) if m.get("role") == "user"), default=-1)
        for i, message in enumerate(result[:last_user]):
            if message.get("role") == "assistant":
                _, content = ThinkingParser("<think>", "</think>").add(message.get("content") or "")
                result[i] = {**message, "content": content}
    return result


def join_chunks(chunks: list[dict], *, chat_request: bool, with_tools: bool) -> dict:
    """A non-streamed response: text fields joined, everything else from the last chunk."""
    final = dict(chunks[-1])
    key_text = "content" if chat_request else "response"
    texts = [(c["message"] if chat_request else c).get(key_text, "") for c in chunks]
    thinking = "".join((c["message"] if chat_request else c).get("thinking", "") for c in chunks)
    logprobs = [lp for c in chunks for lp in c.get("logprobs", [])]
    if chat_request:
        message = dict(final["message"])
        message["content"] = "".join(texts)
        if thinking:
            message["thinking"] = thinking
        calls = [tc for c in chunks for tc in c["message"].get("tool_calls", [])]
        if with_tools and calls:
            message["tool_calls"] = calls
        final["message"] = message
    else:
        final["response"] = "".join(texts)
        if thinking:
            final["thinking"] = thinking
    if logprobs:
        final["logprobs"] = logprobs
    return final
