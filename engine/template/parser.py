"""Parser for Go text/template source: a port of Go's text/template/parse/parse.go.

Produces a `ParsedTemplate`: the main tree plus the trees of `{{define}}` / `{{block}}` templates. Errors
read like Go's, e.g. `template: :1: unexpected "}" in operand`.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, field

from engine.template.errors import TemplateError
from engine.template.gofmt import go_quote
from engine.template.lexer import LineIndex, Tok, Token, tokenize
from engine.template.literals import LiteralError, char_constant, number_value, unquote
from engine.template.nodes import (
    ActionNode,
    BoolNode,
    BreakNode,
    ChainNode,
    CommandNode,
    ContinueNode,
    DotNode,
    FieldNode,
    IdentifierNode,
    IfNode,
    ListNode,
    NilNode,
    Node,
    NumberNode,
    PipeNode,
    RangeNode,
    StringNode,
    TemplateNode,
    TextNode,
    VariableNode,
    WithNode,
)

MAX_PAREN_DEPTH = 100  # Go allows 10000; Python's stack is the limit here


@dataclass
class ParsedTemplate:
    root: ListNode
    defines: dict[str, ListNode] = field(default_factory=dict)


class _End(Node):
    """`{{end}}`: ends an item list; never part of the tree."""

    __slots__ = ()

    def __str__(self) -> str:
        return "{{end}}"


class _Else(Node):
    """`{{else}}`: ends an item list; never part of the tree."""

    __slots__ = ()

    def __str__(self) -> str:
        return "{{else}}"


_OPERAND_STARTS = frozenset({Tok.BOOL, Tok.CHAR_CONSTANT, Tok.COMPLEX, Tok.DOT, Tok.FIELD, Tok.IDENTIFIER,
                             Tok.NUMBER, Tok.NIL, Tok.RAW_STRING, Tok.STRING, Tok.VARIABLE, Tok.LEFT_PAREN})
_NOT_EXECUTABLE = (BoolNode, DotNode, NilNode, NumberNode, StringNode)


def is_empty_tree(node: Node) -> bool:
    """Go's IsEmptyTree: nothing but whitespace text."""
    if isinstance(node, ListNode):
        return all(is_empty_tree(n) for n in node.nodes)
    if isinstance(node, TextNode):
        return node.text.strip(" \t\r\n\v\f") == ""
    return False


class _Parser:
    def __init__(self, text: str, functions: Container[str]):
        self.tokens = tokenize(text)
        self.lines = LineIndex(text)
        self.functions = functions
        self.i = 0
        self.furthest = 0  # the latest token looked at: Go reports parse errors on its line
        self.vars = ["$"]
        self.range_depth = 0
        self.paren_depth = 0
        self.action_line = 0
        self.trees: dict[str, ListNode] = {}

    # --- token stream ---------------------------------------------------------------------------

    def next(self) -> Token:
        i = min(self.i, len(self.tokens) - 1)
        self.i = i + 1
        self.furthest = max(self.furthest, i)
        return self.tokens[i]

    def peek(self) -> Token:
        token = self.next()
        self.i -= 1
        return token

    def backup(self) -> None:
        self.i -= 1

    def next_non_space(self) -> Token:
        token = self.next()
        while token.typ == Tok.SPACE:
            token = self.next()
        return token

    def peek_non_space(self) -> Token:
        token = self.next_non_space()
        self.backup()
        return token

    # --- errors ---------------------------------------------------------------------------------

    def line(self, pos: int) -> int:
        return self.lines.line(pos)

    def errorf(self, message: str) -> None:
        raise TemplateError(f"template: :{self.line(self.tokens[self.furthest].pos)}: {message}")

    def expect(self, expected: Tok, context: str) -> Token:
        token = self.next_non_space()
        if token.typ != expected:
            self.unexpected(token, context)
        return token

    def unexpected(self, token: Token, context: str) -> None:
        if token.typ == Tok.ERROR:
            extra = ""
            if self.action_line != 0 and self.action_line != self.line(token.pos):
                extra = f" in action started at :{self.action_line}"
                if token.val.endswith(" action"):
                    extra = extra[len(" in action"):]  # avoid "action in action"
            self.errorf(f"{token}{extra}")
        self.errorf(f"unexpected {token} in {context}")

    # --- structure ------------------------------------------------------------------------------

    def parse(self) -> ParsedTemplate:
        root = ListNode(self.peek().pos)
        while self.peek().typ != Tok.EOF:
            if self.peek().typ == Tok.LEFT_DELIM:
                delim_at = self.i
                self.next()
                if self.next_non_space().typ == Tok.DEFINE:
                    self.parse_definition()
                    continue
                self.i = delim_at
            node = self.text_or_action()
            if isinstance(node, (_End, _Else)):
                self.errorf(f"unexpected {node}")
            root.nodes.append(node)
        self.add("", root)
        main = self.trees.pop("")
        return ParsedTemplate(main, self.trees)

    def add(self, name: str, root: ListNode) -> None:
        existing = self.trees.get(name)
        if existing is None or is_empty_tree(existing):
            self.trees[name] = root
        elif not is_empty_tree(root):
            self.errorf(f"template: multiple definition of template {go_quote(name)}")

    def _in_new_tree(self):
        """Save the per-tree parser state; {{define}} and {{block}} bodies start afresh."""
        saved = (self.vars, self.range_depth)
        self.vars, self.range_depth = ["$"], 0
        return saved

    def parse_definition(self) -> None:
        context = "define clause"
        token = self.next_non_space()
        if token.typ not in (Tok.STRING, Tok.RAW_STRING):
            self.unexpected(token, context)
        name = self.unquote(token)
        self.expect(Tok.RIGHT_DELIM, context)
        saved = self._in_new_tree()
        body, end = self.item_list()
        if not isinstance(end, _End):
            self.errorf(f"unexpected {end} in {context}")
        self.vars, self.range_depth = saved
        self.add(name, body)

    def item_list(self) -> tuple[ListNode, Node]:
        body = ListNode(self.peek_non_space().pos)
        while self.peek_non_space().typ != Tok.EOF:
            node = self.text_or_action()
            if isinstance(node, (_End, _Else)):
                return body, node
            body.nodes.append(node)
        self.errorf("unexpected EOF")
        raise AssertionError("unreachable")

    def text_or_action(self) -> Node:
        token = self.next_non_space()
        if token.typ == Tok.TEXT:
            return TextNode(token.pos, token.val)
        if token.typ == Tok.LEFT_DELIM:
            self.action_line = self.line(token.pos)
            try:
                return self.action()
            finally:
                self.action_line = 0
        self.unexpected(token, "input")
        raise AssertionError("unreachable")

    def action(self) -> Node:
        token = self.next_non_space()
        control = {
            Tok.BLOCK: self.block_control, Tok.ELSE: self.else_control, Tok.END: self.end_control,
            Tok.IF: self.if_control, Tok.RANGE: self.range_control, Tok.TEMPLATE: self.template_control,
            Tok.WITH: self.with_control,
        }.get(token.typ)
        if control is not None:
            return control()
        if token.typ in (Tok.BREAK, Tok.CONTINUE):
            return self.loop_control(token)
        self.backup()
        token = self.peek()
        return ActionNode(token.pos, self.pipeline("command", Tok.RIGHT_DELIM))

    def loop_control(self, keyword: Token) -> Node:
        name = "{{" + keyword.val + "}}"
        token = self.next_non_space()
        if token.typ != Tok.RIGHT_DELIM:
            self.unexpected(token, name)
        if self.range_depth == 0:
            self.errorf(f"{name} outside {{{{range}}}}")
        return BreakNode(keyword.pos) if keyword.typ == Tok.BREAK else ContinueNode(keyword.pos)

    def pipeline(self, context: str, end: Tok) -> PipeNode:
        pipe = PipeNode(self.peek_non_space().pos)
        while True:  # declarations: `$x :=`, `$x =`, `$i, $x :=`
            variable = self.peek_non_space()
            if variable.typ != Tok.VARIABLE:
                break
            variable_at = self.i
            self.next()
            following = self.peek_non_space()
            if following.typ in (Tok.ASSIGN, Tok.DECLARE):
                pipe.is_assign = following.typ == Tok.ASSIGN
                self.next_non_space()
                pipe.decl.append(VariableNode(variable.pos, tuple(variable.val.split("."))))
                self.vars.append(variable.val)
            elif following.typ == Tok.CHAR and following.val == ",":
                self.next_non_space()
                pipe.decl.append(VariableNode(variable.pos, tuple(variable.val.split("."))))
                self.vars.append(variable.val)
                if context == "range" and len(pipe.decl) < 2:
                    if self.peek_non_space().typ in (Tok.VARIABLE, Tok.RIGHT_DELIM, Tok.RIGHT_PAREN):
                        continue  # the second variable of `range $i, $x :=`
                    self.errorf("range can only initialize variables")
                self.errorf(f"too many declarations in {context}")
            else:
                self.i = variable_at  # a plain variable operand, not a declaration
            break
        while True:
            token = self.next_non_space()
            if token.typ == end:
                self.check_pipeline(pipe, context)
                return pipe
            if token.typ in _OPERAND_STARTS:
                self.backup()
                pipe.cmds.append(self.command())
            else:
                self.unexpected(token, context)

    def check_pipeline(self, pipe: PipeNode, context: str) -> None:
        if not pipe.cmds:
            self.errorf(f"missing value for {context}")
        for stage, cmd in enumerate(pipe.cmds[1:], start=2):
            if isinstance(cmd.args[0], _NOT_EXECUTABLE):
                self.errorf(f"non executable command in pipeline stage {stage}")

    def parse_control(self, context: str) -> tuple[int, PipeNode, ListNode, ListNode | None]:
        declared = len(self.vars)
        pipe = self.pipeline(context, Tok.RIGHT_DELIM)
        if context == "range":
            self.range_depth += 1
        body, following = self.item_list()
        if context == "range":
            self.range_depth -= 1
        else_list = None
        if isinstance(following, _Else):
            # `{{else if x}}` / `{{else with x}}` parse as `{{else}}{{if x}}...{{end}}{{end}}`
            if context == "if" and self.peek().typ == Tok.IF:
                self.next()
                else_list = ListNode(following.pos, [self.if_control()])
            elif context == "with" and self.peek().typ == Tok.WITH:
                self.next()
                else_list = ListNode(following.pos, [self.with_control()])
            else:
                else_list, following = self.item_list()
                if not isinstance(following, _End):
                    self.errorf(f"expected end; found {following}")
        del self.vars[declared:]
        return pipe.pos, pipe, body, else_list

    def if_control(self) -> Node:
        return IfNode(*self.parse_control("if"))

    def range_control(self) -> Node:
        return RangeNode(*self.parse_control("range"))

    def with_control(self) -> Node:
        return WithNode(*self.parse_control("with"))

    def end_control(self) -> Node:
        return _End(self.expect(Tok.RIGHT_DELIM, "end").pos)

    def else_control(self) -> Node:
        following = self.peek_non_space()
        if following.typ in (Tok.IF, Tok.WITH):
            return _Else(following.pos)  # leave the if/with for parse_control
        return _Else(self.expect(Tok.RIGHT_DELIM, "else").pos)

    def block_control(self) -> Node:
        context = "block clause"
        token = self.next_non_space()
        name = self.template_name(token, context)
        pipe = self.pipeline(context, Tok.RIGHT_DELIM)
        saved = self._in_new_tree()
        body, end = self.item_list()
        if not isinstance(end, _End):
            self.errorf(f"unexpected {end} in {context}")
        self.vars, self.range_depth = saved
        self.add(name, body)
        return TemplateNode(token.pos, name, pipe)

    def template_control(self) -> Node:
        context = "template clause"
        token = self.next_non_space()
        name = self.template_name(token, context)
        pipe = None
        if self.next_non_space().typ != Tok.RIGHT_DELIM:
            self.backup()
            pipe = self.pipeline(context, Tok.RIGHT_DELIM)
        return TemplateNode(token.pos, name, pipe)

    def template_name(self, token: Token, context: str) -> str:
        if token.typ not in (Tok.STRING, Tok.RAW_STRING):
            self.unexpected(token, context)
        return self.unquote(token)

    # --- operands -------------------------------------------------------------------------------

    def command(self) -> CommandNode:
        cmd = CommandNode(self.peek_non_space().pos, [])
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            token = self.next()
            if token.typ == Tok.SPACE:
                continue
            if token.typ in (Tok.RIGHT_DELIM, Tok.RIGHT_PAREN):
                self.backup()
            elif token.typ != Tok.PIPE:
                self.unexpected(token, "operand")
            break
        if not cmd.args:
            self.errorf("empty command")
        return cmd

    def operand(self) -> Node | None:
        node = self.term()
        if node is None or self.peek().typ != Tok.FIELD:
            return node
        chain_pos = self.peek().pos
        fields = []
        while self.peek().typ == Tok.FIELD:
            fields.append(self.next().val[1:])
        if isinstance(node, FieldNode):
            return FieldNode(chain_pos, node.ident + tuple(fields))
        if isinstance(node, VariableNode):
            return VariableNode(chain_pos, node.ident + tuple(fields))
        if isinstance(node, _NOT_EXECUTABLE):
            self.errorf(f"unexpected . after term {go_quote(str(node))}")
        return ChainNode(chain_pos, node, tuple(fields))

    def term(self) -> Node | None:
        token = self.next_non_space()
        typ = token.typ
        if typ == Tok.IDENTIFIER:
            if token.val not in self.functions:
                self.errorf(f"function {go_quote(token.val)} not defined")
            return IdentifierNode(token.pos, token.val)
        if typ == Tok.DOT:
            return DotNode(token.pos)
        if typ == Tok.NIL:
            return NilNode(token.pos)
        if typ == Tok.VARIABLE:
            return self.use_var(token)
        if typ == Tok.FIELD:
            return FieldNode(token.pos, tuple(token.val[1:].split(".")))
        if typ == Tok.BOOL:
            return BoolNode(token.pos, token.val == "true")
        if typ in (Tok.NUMBER, Tok.CHAR_CONSTANT, Tok.COMPLEX):
            return self.number(token)
        if typ == Tok.LEFT_PAREN:
            if self.paren_depth >= MAX_PAREN_DEPTH:
                self.errorf("max expression depth exceeded")
            self.paren_depth += 1
            try:
                return self.pipeline("parenthesized pipeline", Tok.RIGHT_PAREN)
            finally:
                self.paren_depth -= 1
        if typ in (Tok.STRING, Tok.RAW_STRING):
            return StringNode(token.pos, token.val, self.unquote(token))
        self.backup()
        return None

    def use_var(self, token: Token) -> VariableNode:
        node = VariableNode(token.pos, tuple(token.val.split(".")))
        if node.ident[0] not in self.vars:
            self.errorf(f"undefined variable {go_quote(node.ident[0])}")
        return node

    def number(self, token: Token) -> NumberNode:
        try:
            if token.typ == Tok.CHAR_CONSTANT:
                return NumberNode(token.pos, token.val, char_constant(token.val))
            if token.typ == Tok.COMPLEX:
                raise LiteralError("complex numbers are not supported")
            return NumberNode(token.pos, token.val, number_value(token.val))
        except LiteralError as e:
            self.errorf(str(e))
            raise AssertionError("unreachable") from e

    def unquote(self, token: Token) -> str:
        try:
            return unquote(token.val)
        except LiteralError as e:
            self.errorf(str(e))
            raise AssertionError("unreachable") from e


def parse(text: str, functions: Container[str]) -> ParsedTemplate:
    """Parse template source; `functions` names the functions the template may call."""
    try:
        return _Parser(text, functions).parse()
    except RecursionError:
        raise TemplateError("template: :1: template nesting too deep") from None
