"""Tokenizer for Go text/template source: a port of the state machine in Go's text/template/parse/lex.go.

The whole input is tokenized up front; a lexing error becomes an ERROR token at the point where Go's lazy
lexer would have produced it, so the parser reports whichever problem Go would have reported first.
Positions are indexes into the Python string (code points); the parser converts them to Go byte offsets only
when it formats an error.
"""

from __future__ import annotations

import bisect
from enum import IntEnum

from engine.template.gofmt import go_quote, go_rune_repr


class Tok(IntEnum):
    ERROR = 0
    BOOL = 1
    CHAR = 2  # a printable ASCII character inside an action: the grab bag for ',' and friends
    CHAR_CONSTANT = 3
    COMPLEX = 4
    ASSIGN = 5  # '='
    DECLARE = 6  # ':='
    EOF = 7
    FIELD = 8  # '.Name'
    IDENTIFIER = 9
    LEFT_DELIM = 10
    LEFT_PAREN = 11
    NUMBER = 12
    PIPE = 13
    RAW_STRING = 14
    RIGHT_DELIM = 15
    RIGHT_PAREN = 16
    SPACE = 17
    STRING = 18
    TEXT = 19
    VARIABLE = 20  # '$' or '$name'
    KEYWORD = 21  # keywords sort after this marker
    BLOCK = 22
    BREAK = 23
    CONTINUE = 24
    DOT = 25
    DEFINE = 26
    ELSE = 27
    END = 28
    IF = 29
    NIL = 30
    RANGE = 31
    TEMPLATE = 32
    WITH = 33


KEYWORDS = {
    ".": Tok.DOT, "block": Tok.BLOCK, "break": Tok.BREAK, "continue": Tok.CONTINUE, "define": Tok.DEFINE,
    "else": Tok.ELSE, "end": Tok.END, "if": Tok.IF, "nil": Tok.NIL, "range": Tok.RANGE,
    "template": Tok.TEMPLATE, "with": Tok.WITH,
}

LEFT_DELIM = "{{"
RIGHT_DELIM = "}}"
LEFT_COMMENT = "/*"
RIGHT_COMMENT = "*/"
SPACE_CHARS = " \t\r\n"
TRIM_MARKER_LEN = 2  # '-' plus the space next to it


class Token:
    __slots__ = ("typ", "pos", "val")

    def __init__(self, typ: Tok, pos: int, val: str):
        self.typ = typ
        self.pos = pos
        self.val = val

    def __str__(self) -> str:
        # Go's item.String(), used verbatim in "unexpected ..." parse errors.
        if self.typ == Tok.EOF:
            return "EOF"
        if self.typ == Tok.ERROR:
            return self.val
        if self.typ > Tok.KEYWORD:
            return f"<{self.val}>"
        if len(self.val) > 10:
            return go_quote(self.val[:10]) + "..."
        return go_quote(self.val)

    def __repr__(self) -> str:
        return f"Token({self.typ.name}, {self.pos}, {self.val!r})"


def is_space(c: str) -> bool:
    return c != "" and c in SPACE_CHARS  # "" (end of input) is a substring of anything


def is_alphanumeric(c: str) -> bool:
    return c == "_" or c.isalpha() or c.isdecimal()


def has_left_trim_marker(s: str, at: int) -> bool:
    return s[at:at + 1] == "-" and is_space(s[at + 1:at + 2])


def has_right_trim_marker(s: str, at: int) -> bool:
    return is_space(s[at:at + 1]) and s[at + 1:at + 2] == "-"


class LineIndex:
    """Maps a position in the source to its 1-based line, and to Go's byte column for error contexts."""

    def __init__(self, text: str):
        self.text = text
        self.newlines = [i for i, c in enumerate(text) if c == "\n"]

    def line(self, pos: int) -> int:
        return 1 + bisect.bisect_left(self.newlines, pos)

    def byte_column(self, pos: int) -> int:
        # Go's ErrorContext: bytes since the last newline, or the byte offset itself on the first line.
        n = bisect.bisect_left(self.newlines, pos)
        start = self.newlines[n - 1] + 1 if n else 0
        return len(self.text[start:pos].encode("utf-8", "surrogatepass"))


class _Lexer:
    def __init__(self, text: str):
        self.input = text
        self.pos = 0
        self.start = 0
        self.paren_depth = 0
        self.tokens: list[Token] = []

    # --- primitives -----------------------------------------------------------------------------

    def next(self) -> str:
        """The next character, or "" at the end of input."""
        if self.pos >= len(self.input):
            return ""
        c = self.input[self.pos]
        self.pos += 1
        return c

    def peek(self) -> str:
        return self.input[self.pos:self.pos + 1]

    def backup(self, c: str) -> None:
        if c:
            self.pos -= 1

    def emit(self, typ: Tok) -> None:
        self.tokens.append(Token(typ, self.start, self.input[self.start:self.pos]))
        self.start = self.pos

    def ignore(self) -> None:
        self.start = self.pos

    def accept(self, valid: str) -> bool:
        c = self.next()
        if c and c in valid:
            return True
        self.backup(c)
        return False

    def accept_run(self, valid: str) -> None:
        while True:
            c = self.next()
            if not c or c not in valid:
                self.backup(c)
                return

    def error(self, message: str) -> None:
        self.tokens.append(Token(Tok.ERROR, self.start, message))

    def at_right_delim(self) -> tuple[bool, bool]:
        """(at a right delimiter, it carries a trim marker)."""
        s, p = self.input, self.pos
        if has_right_trim_marker(s, p) and s.startswith(RIGHT_DELIM, p + TRIM_MARKER_LEN):
            return True, True
        return s.startswith(RIGHT_DELIM, p), False

    def at_terminator(self) -> bool:
        c = self.peek()
        return c == "" or is_space(c) or c in ".,|:()" or c == RIGHT_DELIM[0]

    # --- states: each returns the next state, or None when lexing stops -------------------------

    def run(self) -> list[Token]:
        state = self.lex_text
        while state is not None:
            state = state()
        return self.tokens

    def lex_text(self):
        x = self.input.find(LEFT_DELIM, self.pos)
        if x < 0:
            self.pos = len(self.input)
            if self.pos > self.start:
                self.emit(Tok.TEXT)
            self.emit(Tok.EOF)
            return None
        self.pos = x
        trim = 0
        if has_left_trim_marker(self.input, x + len(LEFT_DELIM)):
            text = self.input[self.start:x]
            trim = len(text) - len(text.rstrip(SPACE_CHARS))
        self.pos -= trim
        if self.pos > self.start:
            self.emit(Tok.TEXT)
        self.pos += trim
        self.ignore()
        return self.lex_left_delim

    def lex_left_delim(self):
        self.pos += len(LEFT_DELIM)
        after_marker = TRIM_MARKER_LEN if has_left_trim_marker(self.input, self.pos) else 0
        if self.input.startswith(LEFT_COMMENT, self.pos + after_marker):
            self.pos += after_marker
            self.ignore()
            return self.lex_comment
        self.emit(Tok.LEFT_DELIM)
        self.pos += after_marker
        self.ignore()
        self.paren_depth = 0
        return self.lex_inside_action

    def lex_comment(self):
        self.pos += len(LEFT_COMMENT)
        end = self.input.find(RIGHT_COMMENT, self.pos)
        if end < 0:
            return self.error("unclosed comment")
        self.pos = end + len(RIGHT_COMMENT)
        delim, trim = self.at_right_delim()
        if not delim:
            return self.error("comment ends before closing delimiter")
        if trim:
            self.pos += TRIM_MARKER_LEN
        self.pos += len(RIGHT_DELIM)
        if trim:
            self._skip_leading_space()
        self.ignore()
        return self.lex_text

    def _skip_leading_space(self) -> None:
        rest = self.input[self.pos:]
        self.pos += len(rest) - len(rest.lstrip(SPACE_CHARS))

    def lex_right_delim(self):
        trim = has_right_trim_marker(self.input, self.pos)
        if trim:
            self.pos += TRIM_MARKER_LEN
            self.ignore()
        self.pos += len(RIGHT_DELIM)
        self.emit(Tok.RIGHT_DELIM)
        if trim:
            self._skip_leading_space()
            self.ignore()
        return self.lex_text

    def lex_inside_action(self):
        delim, _ = self.at_right_delim()
        if delim:
            if self.paren_depth == 0:
                return self.lex_right_delim
            return self.error("unclosed left paren")
        c = self.next()
        if c == "":
            return self.error("unclosed action")
        if is_space(c):
            self.backup(c)  # put the space back in case it starts " -}}"
            return self.lex_space
        if c == "=":
            self.emit(Tok.ASSIGN)
        elif c == ":":
            if self.next() != "=":
                return self.error("expected :=")
            self.emit(Tok.DECLARE)
        elif c == "|":
            self.emit(Tok.PIPE)
        elif c == '"':
            return self.lex_quote
        elif c == "`":
            return self.lex_raw_quote
        elif c == "$":
            return self.lex_variable
        elif c == "'":
            return self.lex_char
        elif c == "." and self.pos < len(self.input) and not ("0" <= self.input[self.pos] <= "9"):
            return self.lex_field
        elif c in ".+-" or "0" <= c <= "9":
            self.backup(c)
            return self.lex_number
        elif is_alphanumeric(c):
            self.backup(c)
            return self.lex_identifier
        elif c == "(":
            self.emit(Tok.LEFT_PAREN)
            self.paren_depth += 1
        elif c == ")":
            self.paren_depth -= 1
            if self.paren_depth < 0:
                self.ignore()
                return self.error(f"unexpected right paren {go_rune_repr(c)}")
            self.emit(Tok.RIGHT_PAREN)
        elif c <= "\x7f" and c.isprintable():
            self.emit(Tok.CHAR)
        else:
            return self.error(f"unrecognized character in action: {go_rune_repr(c)}")
        return self.lex_inside_action

    def lex_space(self):
        count = 0
        while is_space(self.peek()):
            self.next()
            count += 1
        # A trim-marked closing delimiter starts with a space: leave that space to lex_right_delim.
        if has_right_trim_marker(self.input, self.pos - 1) and self.input.startswith(
                RIGHT_DELIM, self.pos - 1 + TRIM_MARKER_LEN):
            self.pos -= 1
            if count == 1:
                return self.lex_right_delim
        self.emit(Tok.SPACE)
        return self.lex_inside_action

    def lex_identifier(self):
        while True:
            c = self.next()
            if not is_alphanumeric(c):
                break
        self.backup(c)
        word = self.input[self.start:self.pos]
        if not self.at_terminator():
            return self.error(f"bad character {go_rune_repr(self.peek())}")
        keyword = KEYWORDS.get(word)
        if keyword is not None and keyword > Tok.KEYWORD:
            self.emit(keyword)
        elif word in ("true", "false"):
            self.emit(Tok.BOOL)
        else:
            self.emit(Tok.IDENTIFIER)
        return self.lex_inside_action

    def lex_field(self):
        return self._lex_field_or_variable(Tok.FIELD)

    def lex_variable(self):
        if self.at_terminator():  # a bare '$'
            self.emit(Tok.VARIABLE)
            return self.lex_inside_action
        return self._lex_field_or_variable(Tok.VARIABLE)

    def _lex_field_or_variable(self, typ: Tok):
        if self.at_terminator():  # a bare '.' or '$'
            self.emit(Tok.VARIABLE if typ == Tok.VARIABLE else Tok.DOT)
            return self.lex_inside_action
        while True:
            c = self.next()
            if not is_alphanumeric(c):
                break
        self.backup(c)
        if not self.at_terminator():
            return self.error(f"bad character {go_rune_repr(self.peek())}")
        self.emit(typ)
        return self.lex_inside_action

    def lex_char(self):
        while True:
            c = self.next()
            if c == "\\":
                c = self.next()
                if c not in ("", "\n"):
                    continue
            if c in ("", "\n"):
                return self.error("unterminated character constant")
            if c == "'":
                break
        self.emit(Tok.CHAR_CONSTANT)
        return self.lex_inside_action

    def lex_number(self):
        if not self._scan_number():
            return self.error(f"bad number syntax: {go_quote(self.input[self.start:self.pos])}")
        if self.peek() in ("+", "-"):
            # Complex: 1+2i. No spaces, must end in 'i'.
            if not self._scan_number() or self.input[self.pos - 1] != "i":
                return self.error(f"bad number syntax: {go_quote(self.input[self.start:self.pos])}")
            self.emit(Tok.COMPLEX)
        else:
            self.emit(Tok.NUMBER)
        return self.lex_inside_action

    def _scan_number(self) -> bool:
        self.accept("+-")
        digits = "0123456789_"
        if self.accept("0"):
            if self.accept("xX"):
                digits = "0123456789abcdefABCDEF_"
            elif self.accept("oO"):
                digits = "01234567_"
            elif self.accept("bB"):
                digits = "01_"
        self.accept_run(digits)
        if self.accept("."):
            self.accept_run(digits)
        if len(digits) == 11 and self.accept("eE"):
            self.accept("+-")
            self.accept_run("0123456789_")
        if len(digits) == 23 and self.accept("pP"):
            self.accept("+-")
            self.accept_run("0123456789_")
        self.accept("i")
        if is_alphanumeric(self.peek()):
            self.next()
            return False
        return True

    def lex_quote(self):
        while True:
            c = self.next()
            if c == "\\":
                c = self.next()
                if c not in ("", "\n"):
                    continue
            if c in ("", "\n"):
                return self.error("unterminated quoted string")
            if c == '"':
                break
        self.emit(Tok.STRING)
        return self.lex_inside_action

    def lex_raw_quote(self):
        end = self.input.find("`", self.pos)
        if end < 0:
            return self.error("unterminated raw quoted string")
        self.pos = end + 1
        self.emit(Tok.RAW_STRING)
        return self.lex_inside_action


def tokenize(text: str) -> list[Token]:
    """All tokens of `text`, ending with EOF or with an ERROR token."""
    return _Lexer(text).run()
