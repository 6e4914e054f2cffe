"""Tables laid out as Ollama's CLI prints them (tablewriter, borderless, no white space, 4-space padding).

Every cell is left-aligned and padded to its column's width and followed by the padding, the last one too;
a header's last cell is followed by one space. Cells wider than the column limit (30, or 100 for long text)
are word-wrapped with the least raggedness, and the row grows to the tallest cell.
"""

from __future__ import annotations

from wcwidth import wcswidth

PADDING = "    "


def width(text: str) -> int:
    measured = wcswidth(text)
    return measured if measured >= 0 else len(text)


def _wrap_words(words: list[str], limit: int) -> list[list[str]]:
    """Break `words` into lines minimising the sum of squared slack (long words cost a penalty)."""
    n = len(words)
    penalty = 100_000
    best = [0] * (n + 1)
    breaks = [n] * (n + 1)
    for start in range(n - 1, -1, -1):
        line = -1
        lengths = []
        for word in words[start:]:
            line += 1 + width(word)
            lengths.append(line)
        if lengths[-1] <= limit:
            best[start], breaks[start] = 0, n
            continue
        best[start] = 2**31 - 1
        for end in range(start + 1, n):
            slack = limit - lengths[end - 1 - start]
            cost = slack * slack + best[end] + (penalty if lengths[end - 1 - start] > limit else 0)
            if cost < best[start]:
                best[start], breaks[start] = cost, end
    lines, start = [], 0
    while start < n:
        lines.append(words[start:breaks[start]])
        start = breaks[start]
    return lines


def wrap(text: str, limit: int) -> list[str]:
    words = text.split()
    if text == " ":
        return [" "]
    if not words:
        return [""]
    limit = max(limit, *(width(w) for w in words))
    return [" ".join(line) for line in _wrap_words(words, limit)]


def _cell_lines(text: str, limit: int) -> list[str]:
    paragraphs = text.split("\n")
    limit = min(max(width(p) for p in paragraphs), limit)
    lines: list[str] = []
    for i, paragraph in enumerate(paragraphs):
        if i:
            lines.append(" ")
        lines += wrap(paragraph, limit)
    return lines


def render(rows: list[list[str]], header: list[str] | None = None, limit: int = 30) -> str:
    cells = [[_cell_lines(cell, limit) for cell in row] for row in rows]
    header_cells = [_cell_lines(cell, limit) for cell in header] if header else []
    widths: dict[int, int] = {}
    for row in ([header_cells] if header else []) + cells:
        for i, lines in enumerate(row):
            widths[i] = max(widths.get(i, 0), *(width(line) for line in lines))
    out = []
    if header:
        last = len(widths) - 1
        out.append("".join(_pad(lines[0], widths[i]) + (" " if i == last else PADDING)
                           for i, lines in enumerate(header_cells)) + "\n")
    for row in cells:
        height = max((len(lines) for lines in row), default=1)
        for line in range(height):
            out.append("".join(_pad(lines[line] if line < len(lines) else "  ", widths[i]) + PADDING
                               for i, lines in enumerate(row)) + "\n")
    return "".join(out)


def _pad(text: str, column: int) -> str:
    return text + " " * max(0, column - width(text))
