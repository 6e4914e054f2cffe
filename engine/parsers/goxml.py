"""The part of Go's encoding/xml (xml.Unmarshal, strict mode) that the XML-style tool-call parsers rely
on: the first element of a document, its attributes, the character data directly inside each element,
and the same errors for malformed markup."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_ENTITIES = {"amp": "&", "lt": "<", "gt": ">", "apos": "'", "quot": '"'}
_NAME = re.compile(r"[^\s<>/=\"'!?]+")
_SPACE = " \t\r\n"


class XMLError(ValueError):
    pass


@dataclass
class Element:
    name: str
    attrs: dict[str, str] = field(default_factory=dict)
    text: str = ""  # character data directly inside, not inside children
    children: list[Element] = field(default_factory=list)

    def all(self, name: str) -> list[Element]:
        return [child for child in self.children if child.name == name]


def _check_chars(text: str, line: int) -> None:
    for c in text:
        o = ord(c)
        if not (o in (0x9, 0xA, 0xD) or 0x20 <= o <= 0xD7FF or 0xE000 <= o <= 0xFFFD or 0x10000 <= o <= 0x10FFFF):
            raise XMLError(f"XML syntax error on line {line}: illegal character code U+{o:04X}")


def _unescape(raw: str, line: int) -> str:
    _check_chars(raw, line)
    out: list[str] = []
    i = 0
    while True:
        amp = raw.find("&", i)
        if amp < 0:
            out.append(raw[i:])
            break
        out.append(raw[i:amp])
        semi = raw.find(";", amp)
        name = raw[amp + 1:semi] if semi > 0 else ""
        text = _entity(name)
        if semi < 0 or text is None:
            shown = raw[amp:semi + 1] if semi > 0 else raw[amp:amp + 1]
            raise XMLError(f"XML syntax error on line {line}: invalid character entity {shown}")
        out.append(text)
        i = semi + 1
    # Go turns \r\n and lone \r into \n in character data and attribute values
    return "".join(out).replace("\r\n", "\n").replace("\r", "\n")


def _entity(name: str) -> str | None:
    if name in _ENTITIES:
        return _ENTITIES[name]
    try:
        if name.startswith("#x"):
            return chr(int(name[2:], 16))
        if name.startswith("#"):
            return chr(int(name[1:], 10))
    except (ValueError, OverflowError):
        return None
    return None


def unmarshal(document: str, root: str) -> Element:
    """The first element of `document`, which must be named `root`; everything after it is ignored."""
    pos = 0
    stack: list[Element] = []
    top: Element | None = None
    n = len(document)

    def line() -> int:
        return document.count("\n", 0, pos) + 1

    while True:
        lt = document.find("<", pos)
        text_end = n if lt < 0 else lt
        if text_end > pos:
            text = _unescape(document[pos:text_end], line())
            if stack:
                stack[-1].text += text
        pos = text_end
        if lt < 0:
            raise XMLError(f"XML syntax error on line {line()}: unexpected EOF")
        if document.startswith("</", pos):
            match = _NAME.match(document, pos + 2)
            name = match.group() if match else ""
            end = pos + 2 + len(name)
            while end < n and document[end] in _SPACE:
                end += 1
            if not name or end >= n or document[end] != ">":
                raise XMLError(f"XML syntax error on line {line()}: invalid characters between </{name} and >")
            if not stack:
                raise XMLError(f"XML syntax error on line {line()}: unexpected end element </{name}>")
            if stack[-1].name != name:
                raise XMLError(f"XML syntax error on line {line()}: element <{stack[-1].name}> closed by </{name}>")
            stack.pop()
            pos = end + 1
            if not stack and top is not None:
                return top
            continue
        if document.startswith("<!--", pos):
            close = document.find("-->", pos + 4)
            if close < 0:
                raise XMLError(f"XML syntax error on line {line()}: unexpected EOF")
            pos = close + 3
            continue
        if document.startswith("<![CDATA[", pos):
            close = document.find("]]>", pos + 9)
            if close < 0:
                raise XMLError(f"XML syntax error on line {line()}: unexpected EOF in CDATA section")
            if stack:
                stack[-1].text += document[pos + 9:close]
            pos = close + 3
            continue
        element, pos, self_closing = _start_tag(document, pos, line())
        if top is None:
            if element.name != root:
                raise XMLError(f"expected element type <{root}> but have <{element.name}>")
            top = element
        else:
            stack[-1].children.append(element)
        if self_closing:
            if not stack:
                return top
            continue
        stack.append(element)


def _start_tag(document: str, pos: int, line: int) -> tuple[Element, int, bool]:
    match = _NAME.match(document, pos + 1)
    if match is None:
        raise XMLError(f"XML syntax error on line {line}: expected element name after <")
    element = Element(match.group())
    i = match.end()
    n = len(document)
    while True:
        while i < n and document[i] in _SPACE:
            i += 1
        if i >= n:
            raise XMLError(f"XML syntax error on line {line}: unexpected EOF")
        if document[i] == ">":
            return element, i + 1, False
        if document.startswith("/>", i):
            return element, i + 2, True
        attr = _NAME.match(document, i)
        if attr is None:
            raise XMLError(f"XML syntax error on line {line}: expected attribute name in element")
        i = attr.end()
        while i < n and document[i] in _SPACE:
            i += 1
        if i >= n or document[i] != "=":
            raise XMLError(f"XML syntax error on line {line}: attribute name without = in element")
        i += 1
        while i < n and document[i] in _SPACE:
            i += 1
        if i >= n or document[i] not in "\"'":
            raise XMLError(f"XML syntax error on line {line}: unquoted or missing attribute value in element")
        quote = document[i]
        close = document.find(quote, i + 1)
        if close < 0:
            raise XMLError(f"XML syntax error on line {line}: unexpected EOF")
        value = document[i + 1:close]
        if "<" in value:
            raise XMLError(f"XML syntax error on line {line}: unescaped < inside quoted string")
        element.attrs.setdefault(attr.group(), _unescape(value, line))
        i = close + 1


def escape_text(s: str) -> str:
    """xml.EscapeText: the five markup characters and \\t \\n \\r as references; characters XML cannot
    hold become U+FFFD."""
    out: list[str] = []
    for c in s:
        o = ord(c)
        if c == '"':
            out.append("&#34;")
        elif c == "'":
            out.append("&#39;")
        elif c == "&":
            out.append("&amp;")
        elif c == "<":
            out.append("&lt;")
        elif c == ">":
            out.append("&gt;")
        elif c == "\t":
            out.append("&#x9;")
        elif c == "\n":
            out.append("&#xA;")
        elif c == "\r":
            out.append("&#xD;")
        elif not (0x20 <= o <= 0xD7FF or 0xE000 <= o <= 0xFFFD or 0x10000 <= o <= 0x10FFFF):
            out.append("\ufffd")
        else:
            out.append(c)
    return "".join(out)


def escape_outside(text: str, markup: re.Pattern[str]) -> str:
    """The text with `&`, `<` and `>` escaped everywhere but in the matches of `markup`, so that only those
    are tags to the XML reader (model output is not XML: a `<` in an argument value is just a character)."""
    out: list[str] = []
    last = 0
    for match in markup.finditer(text):
        out += [_escape_markup(text[last:match.start()]), match.group()]
        last = match.end()
    out.append(_escape_markup(text[last:]))
    return "".join(out)


def _escape_markup(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
