"""Texts longer than a window could ever use are cut before they are tokenized.

Tokenizing costs memory in proportion to the text (llama.cpp's pieces, then a Python int per token): a
256 MB prompt took a runner past 18 GB. No token covers more characters than the longest token's text,
so a text of more than `reach(n)` characters has more than n tokens, and tokens beyond a window are
dropped anyway. Cutting the text first keeps the same tokens, bar the few at the cut, which a margin of
MARGIN tokens keeps out of what is used. (Tokenizers that drop whitespace, BERT's WordPiece and T5's
Unigram, could keep more of a text made mostly of spaces; nobody sends those.)
"""

from __future__ import annotations

from engine.runner.llama import LlamaModel

INPUT_TOO_LONG = "the input length exceeds the context length"
MARGIN = 16


class PromptError(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def beyond(model: LlamaModel, text: str, tokens: int) -> bool:
    """Whether `text` surely has more than `tokens` + MARGIN tokens (cheap for short texts)."""
    if len(text) <= tokens + MARGIN:  # every token covers at least one character
        return False
    return len(text) > reach(model, tokens)


def reach(model: LlamaModel, tokens: int) -> int:
    """Characters that `tokens` + MARGIN tokens can cover at most."""
    return (tokens + MARGIN) * model.longest_piece


def bounded_tokens(model: LlamaModel, text: str, *, head: int = 0, tail: int = 0, add_special: bool,
                   parse_special: bool) -> list[int]:
    """The text's tokens, all of them unless it is beyond what the caller can use: with `head`, a text
    beyond `head` tokens gives its first `head` + 1 (one more shows that it goes on); with `tail`, a text
    beyond `tail` tokens gives its last `tail`."""
    if head > 0 and beyond(model, text, head):
        return model.tokenize(text[:reach(model, head)], add_special=add_special, parse_special=parse_special)[
            :head + 1]
    if tail > 0 and beyond(model, text, tail):
        return model.tokenize(text[-reach(model, tail):], add_special=False, parse_special=parse_special)[-tail:]
    return model.tokenize(text, add_special=add_special, parse_special=parse_special)


def prompt_tokens(model: LlamaModel, prompt: str, num_ctx: int, num_keep: int, truncate: bool) -> list[int]:
    """A completion prompt's tokens; when it is beyond the window, only what truncation would keep: the
    first `num_keep` (plus BOS; all the window but one when negative) and the last of the rest."""
    if not beyond(model, prompt, num_ctx):
        return model.tokenize(prompt, add_special=True, parse_special=True)
    if not truncate:
        raise PromptError(INPUT_TOO_LONG, 400)
    keep = num_ctx - 1 if num_keep < 0 else min(num_keep + model.add_bos, num_ctx - 1)
    head = model.tokenize(prompt[:reach(model, keep)], add_special=True, parse_special=True)[:keep]
    tail = model.tokenize(prompt[-reach(model, num_ctx):], add_special=False, parse_special=True)
    return head + tail[max(0, len(tail) - (num_ctx - len(head))):]
