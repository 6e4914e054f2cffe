"""Thinking output (runtime.md §5.2): the tags a Go template wraps `.Thinking` in, and the streaming
parser that splits a model's output into thinking and content (Ollama's thinking package)."""

from __future__ import annotations

from engine.template.nodes import (
    ActionNode,
    BranchNode,
    CommandNode,
    FieldNode,
    ListNode,
    Node,
    PipeNode,
    RangeNode,
    TemplateNode,
    TextNode,
)

_GO_SPACE = " \t\n\v\f\r\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
    "\u2028\u2029\u202f\u205f\u3000"


def _lstrip(text: str) -> str:
    """Go's strings.TrimLeftFunc(s, unicode.IsSpace)."""
    return text.lstrip(_GO_SPACE)


def _children(node: Node) -> list[Node]:
    """The nodes Go's templateVisit descends into (chains, fields and literals are leaves)."""
    if isinstance(node, ListNode):
        return list(node.nodes)
    if isinstance(node, BranchNode):
        return [n for n in (node.pipe, node.list, node.else_list) if n is not None]
    if isinstance(node, ActionNode):
        return [node.pipe]
    if isinstance(node, TemplateNode):
        return [node.pipe] if node.pipe is not None else []
    if isinstance(node, PipeNode):
        return list(node.cmds)
    if isinstance(node, CommandNode):
        return list(node.args)
    return []


def _uses_field(node: Node, name: str) -> bool:
    if isinstance(node, FieldNode) and node.ident and node.ident[0] == name:
        return True
    return any(_uses_field(child, name) for child in _children(node))


def infer_tags(root: ListNode | None) -> tuple[str, str]:
    """Ollama's InferTags: for each `.Thinking` inside a `range` over `.Messages`, the nearest enclosing
    list's first and last text nodes (trimmed) are the opening and closing tags; later finds win.
    ("", "") when the template has none, and then the model cannot think."""
    opening = closing = ""
    if root is None:
        return opening, closing
    ancestors: list[Node] = []

    def visit(node: Node) -> None:
        nonlocal opening, closing
        ancestors.append(node)
        if isinstance(node, FieldNode) and node.ident and node.ident[0] == "Thinking":
            ranged = next((a for a in reversed(ancestors) if isinstance(a, RangeNode)), None)
            if ranged is not None and _uses_field(ranged.pipe, "Messages"):
                enclosing = next((a for a in reversed(ancestors) if isinstance(a, ListNode)), None)
                if enclosing is not None and enclosing.nodes:
                    first, last = enclosing.nodes[0], enclosing.nodes[-1]
                    if isinstance(first, TextNode):
                        opening = first.text.strip(_GO_SPACE)
                    if isinstance(last, TextNode):
                        closing = last.text.strip(_GO_SPACE)
        for child in _children(node):
            visit(child)
        ancestors.pop()

    visit(root)
    return opening, closing


LOOKING_FOR_OPENING, STARTED_EATING_WHITESPACE, THINKING, DONE_EATING_WHITESPACE, DONE = range(5)


class ThinkingParser:
    """Splits streamed output into (thinking, content). Leading whitespace is skipped; output that starts
    with the opening tag is thinking until the closing tag (a partial tag at the end is held back);
    whitespace around the thinking is dropped. Output that does not start with the tag is all content."""

    def __init__(self, opening: str, closing: str) -> None:
        self.opening = opening
        self.closing = closing
        self.state = LOOKING_FOR_OPENING
        self._acc = ""

    @property
    def thinking_done(self) -> bool:
        return self.state in (DONE_EATING_WHITESPACE, DONE)

    def add(self, text: str) -> tuple[str, str]:
        self._acc += text
        thinking: list[str] = []
        content: list[str] = []
        more = True
        while more:
            t, c, more = self._eat()
            thinking.append(t)
            content.append(c)
        return "".join(thinking), "".join(content)

    def flush(self) -> tuple[str, str]:
        """At the end of the output: held text as (thinking, content). A partial closing tag is thinking;
        a partial opening tag is content; leftover whitespace is dropped."""
        acc, self._acc = self._acc, ""
        if self.state == THINKING:
            return acc, ""
        if self.state == LOOKING_FOR_OPENING and acc.strip(_GO_SPACE):
            return "", acc
        return "", ""

    def _eat(self) -> tuple[str, str, bool]:
        acc = self._acc
        if self.state == LOOKING_FOR_OPENING:
            trimmed = _lstrip(acc)
            if trimmed.startswith(self.opening):
                after = _lstrip(trimmed[len(self.opening):])
                self._acc = after
                self.state = THINKING if after else STARTED_EATING_WHITESPACE
                return "", "", True
            if self.opening.startswith(trimmed):  # a partial tag, or only whitespace so far
                return "", "", False
            self.state = DONE  # no thinking: the untrimmed text is content
            self._acc = ""
            return "", acc, False
        if self.state == STARTED_EATING_WHITESPACE:
            trimmed = _lstrip(acc)
            self._acc = ""
            if not trimmed:
                return "", "", False
            self.state = THINKING
            self._acc = trimmed
            return "", "", True
        if self.state == THINKING:
            at = acc.find(self.closing)
            if at >= 0:
                thinking = acc[:at]
                remaining = _lstrip(acc[at + len(self.closing):])
                self._acc = ""
                self.state = DONE if remaining else DONE_EATING_WHITESPACE
                return thinking, remaining, False
            held = _overlap(acc, self.closing)
            self._acc = acc[len(acc) - held:] if held else ""
            return acc[:len(acc) - held], "", False
        if self.state == DONE_EATING_WHITESPACE:
            trimmed = _lstrip(acc)
            self._acc = ""
            if trimmed:
                self.state = DONE
            return "", trimmed, False
        self._acc = ""
        return "", acc, False


def _overlap(text: str, delim: str) -> int:
    """The length of the longest end of `text` that is a start of `delim`."""
    for k in range(min(len(delim), len(text)), 0, -1):
        if text.endswith(delim[:k]):
            return k
    return 0
