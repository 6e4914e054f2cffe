"""Executes a parsed template against data, following Go's text/template/exec.go.

Data is the Python value model of gotypes.py. Lookups of missing map keys yield None (Go's
`missingkey=zero` on map[string]any), which prints as `<no value>` and is false.
"""

from __future__ import annotations

from typing import Any

from engine.template.errors import ExecError, FuncError
from engine.template.funcs import FUNCTIONS, SHORT_CIRCUIT
from engine.template.gofmt import format_value, go_quote, sorted_keys
from engine.template.gotypes import ByteSlice, GoMap, GoStruct, go_type_name, is_true
from engine.template.lexer import LineIndex
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

MAX_TEMPLATE_DEPTH = 100


class _Missing:
    """No value flowing in from a previous pipeline stage."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


_BREAK = _Break()
_CONTINUE = _Continue()


class _State:
    __slots__ = ("out", "vars", "defines", "lines", "name", "depth", "zero_missing_keys")

    def __init__(self, defines: dict[str, ListNode], lines: LineIndex, zero_missing_keys: bool):
        self.zero_missing_keys = zero_missing_keys
        self.out: list[str] = []
        self.vars: list[list] = []  # [name, value] pairs, innermost last
        self.defines = defines
        self.lines = lines
        self.name = ""  # the template being executed, for error messages
        self.depth = 0

    # --- errors and variables -----------------------------------------------------------------

    def error(self, node: Node, message: str) -> None:
        pos = node.pos
        location = f"{self.lines.line(pos)}:{self.lines.byte_column(pos)}"
        raise ExecError(f"template: :{location}: executing {go_quote(self.name)} at <{node}>: {message}")

    def var_value(self, node: Node, name: str) -> Any:
        for entry in reversed(self.vars):
            if entry[0] == name:
                return entry[1]
        self.error(node, f"undefined variable: {name}")

    def set_var(self, node: Node, name: str, value: Any) -> None:
        for entry in reversed(self.vars):
            if entry[0] == name:
                entry[1] = value
                return
        self.error(node, f"undefined variable: {name}")

    # --- walking the tree -----------------------------------------------------------------------

    def walk(self, dot: Any, body: ListNode) -> None:
        for node in body.nodes:
            _WALKERS[type(node)](self, dot, node)

    def walk_text(self, dot: Any, node: TextNode) -> None:
        self.out.append(node.text)

    def walk_action(self, dot: Any, node: ActionNode) -> None:
        value = self.eval_pipeline(dot, node.pipe)
        if not node.pipe.decl:  # a declaration prints nothing
            if type(value) is not str:
                value = "<no value>" if value is None else format_value(value)
            self.out.append(value)

    def walk_if(self, dot: Any, node: IfNode) -> None:
        mark = len(self.vars)
        if is_true(self.eval_pipeline(dot, node.pipe)):
            self.walk(dot, node.list)
        elif node.else_list is not None:
            self.walk(dot, node.else_list)
        del self.vars[mark:]

    def walk_with(self, dot: Any, node: WithNode) -> None:
        mark = len(self.vars)
        value = self.eval_pipeline(dot, node.pipe)
        if is_true(value):
            self.walk(value, node.list)
        elif node.else_list is not None:
            self.walk(dot, node.else_list)
        del self.vars[mark:]

    def walk_range(self, dot: Any, node: RangeNode) -> None:
        mark = len(self.vars)
        value = self.eval_pipeline(dot, node.pipe)
        iterations = self._iterations(node, value)
        body_mark = len(self.vars)
        decl = node.pipe.decl
        ran = False
        try:
            for index, elem in iterations:
                ran = True
                if decl:
                    if node.pipe.is_assign:
                        self.set_var(node, decl[0].ident[0], index if len(decl) > 1 else elem)
                        if len(decl) > 1:
                            self.set_var(node, decl[1].ident[0], elem)
                    else:
                        self.vars[-1][1] = elem  # with two variables, the element is the second
                        if len(decl) > 1:
                            self.vars[-2][1] = index
                try:
                    self.walk(elem, node.list)
                except _Continue:
                    pass
                del self.vars[body_mark:]
        except _Break:
            ran = True
        if not ran and node.else_list is not None:
            self.walk(dot, node.else_list)
        del self.vars[mark:]

    def _iterations(self, node: RangeNode, value: Any):
        if value is None:
            return ()
        if isinstance(value, dict):
            return ((key, value[key]) for key in sorted_keys(value))
        if isinstance(value, ByteSlice):
            value = value.as_bytes()
        if isinstance(value, (list, tuple, bytes, bytearray)):
            return enumerate(value)
        if isinstance(value, int) and not isinstance(value, bool):
            if len(node.pipe.decl) > 1:
                self.error(node.pipe, f"can't use {value} to iterate over more than one variable")
            return ((None, i) for i in range(value))
        self.error(node.pipe, f"range can't iterate over {format_value(value)}")

    def walk_break(self, dot: Any, node: BreakNode) -> None:
        raise _BREAK

    def walk_continue(self, dot: Any, node: ContinueNode) -> None:
        raise _CONTINUE

    def walk_template(self, dot: Any, node: TemplateNode) -> None:
        body = self.defines.get(node.name)
        if body is None:
            self.error(node, f"template {go_quote(node.name)} not defined")
        if self.depth >= MAX_TEMPLATE_DEPTH:
            self.error(node, f"exceeded maximum template depth ({MAX_TEMPLATE_DEPTH})")
        new_dot = self.eval_pipeline(dot, node.pipe) if node.pipe is not None else None
        saved = (self.vars, self.name)
        self.vars, self.name = [["$", new_dot]], node.name  # invoked templates see none of our variables
        self.depth += 1
        try:
            self.walk(new_dot, body)
        finally:
            self.vars, self.name = saved
            self.depth -= 1

    # --- evaluation -----------------------------------------------------------------------------

    def eval_pipeline(self, dot: Any, pipe: PipeNode) -> Any:
        value = MISSING
        for cmd in pipe.cmds:
            value = self.eval_command(dot, cmd, value)
        for variable in pipe.decl:
            if pipe.is_assign:
                self.set_var(variable, variable.ident[0], value)
            else:
                self.vars.append([variable.ident[0], value])
        return value

    def not_a_function(self, args: list[Node] | None, final: Any) -> None:
        if args is not None and (len(args) > 1 or final is not MISSING):
            self.error(args[0], f"can't give argument to non-function {args[0]}")

    def eval_command(self, dot: Any, cmd: CommandNode, final: Any) -> Any:
        first = cmd.args[0]
        kind = type(first)
        if kind is FieldNode:
            return self.eval_field_chain(dot, dot, first, first.ident, cmd.args, final)
        if kind is VariableNode:
            return self.eval_variable(dot, first, cmd.args, final)
        if kind is IdentifierNode:
            return self.eval_function(dot, first, cmd, cmd.args, final)
        if kind is ChainNode:
            return self.eval_chain(dot, first, cmd.args, final)
        self.not_a_function(cmd.args, final)
        if kind is PipeNode:
            return self.eval_pipeline(dot, first)
        if kind is DotNode:
            return dot
        if kind is NilNode:
            self.error(first, "nil is not a command")
        return first.value  # bool, number or string constant

    def eval_arg(self, dot: Any, node: Node) -> Any:
        kind = type(node)
        if kind is FieldNode:
            return self.eval_field_chain(dot, dot, node, node.ident, [node], MISSING)
        if kind is VariableNode:
            return self.eval_variable(dot, node, None, MISSING)
        if kind is DotNode:
            return dot
        if kind is PipeNode:
            return self.eval_pipeline(dot, node)
        if kind is IdentifierNode:
            return self.eval_function(dot, node, node, None, MISSING)
        if kind is ChainNode:
            return self.eval_chain(dot, node, None, MISSING)
        if kind is NilNode:
            return None
        return node.value

    def eval_variable(self, dot: Any, node: VariableNode, args: list[Node] | None, final: Any) -> Any:
        value = self.var_value(node, node.ident[0])
        if len(node.ident) == 1:
            self.not_a_function(args, final)
            return value
        return self.eval_field_chain(dot, value, node, node.ident[1:], args, final)

    def eval_chain(self, dot: Any, node: ChainNode, args: list[Node] | None, final: Any) -> Any:
        if isinstance(node.node, NilNode):
            self.error(node, f"indirection through explicit nil in {node}")
        receiver = self.eval_arg(dot, node.node)
        return self.eval_field_chain(dot, receiver, node, node.fields, args, final)

    def eval_field_chain(self, dot: Any, receiver: Any, node: Node, ident: tuple[str, ...],
                         args: list[Node] | None, final: Any) -> Any:
        last = len(ident) - 1
        from_any_map = False  # values looked up in a map[string]any are interface{}-typed
        for i, name in enumerate(ident):
            if receiver is None:
                return None  # no value at all: its fields are no value either
            if i == last:
                return self.eval_field(dot, name, node, args, final, receiver, from_any_map)
            value = self.eval_field(dot, name, node, None, MISSING, receiver, from_any_map)
            if value is None and (self.zero_missing_keys or type(receiver) is not dict or name in receiver):
                # a nil interface{} (what missingkey=zero yields, or a JSON null) has no fields
                self.error(node, f"nil pointer evaluating interface {{}}.{ident[i + 1]}")
            from_any_map = type(receiver) is dict
            receiver = value
        return receiver

    def eval_field(self, dot: Any, name: str, node: Node, args: list[Node] | None, final: Any,
                   receiver: Any, from_any_map: bool = False) -> Any:
        if type(receiver) is dict:  # map[string]any: the top-level data and decoded JSON objects
            if final is not MISSING or (args is not None and len(args) > 1):
                self.error(node, f"{name} is not a method but has arguments")
            return receiver.get(name)
        method = getattr(receiver, "METHODS", {}).get(name)
        if method is not None:
            count = (len(args) - 1 if args else 0) + (final is not MISSING)
            if count:
                self.error(node, f"wrong number of args for {name}: want 0 got {count}")
            return getattr(receiver, method)()
        has_args = (args is not None and len(args) > 1) or final is not MISSING
        if isinstance(receiver, GoStruct):
            if name in receiver.FIELD_NAMES:
                if has_args:
                    self.error(node, f"{name} has arguments but cannot be invoked as function")
                return getattr(receiver, name)
        elif isinstance(receiver, dict):
            if has_args:
                self.error(node, f"{name} is not a method but has arguments")
            if name in receiver:
                return receiver[name]
            return receiver.zero() if isinstance(receiver, GoMap) else None
        type_name = "interface {}" if from_any_map else go_type_name(receiver)
        self.error(node, f"can't evaluate field {name} in type {type_name}")

    def eval_function(self, dot: Any, node: IdentifierNode, cmd: Node, args: list[Node] | None,
                      final: Any) -> Any:
        name = node.ident
        operands = args[1:] if args else []
        count = len(operands) + (final is not MISSING)
        if name in SHORT_CIRCUIT:
            if count < 1:
                self.error(node, f"wrong number of args for {name}: want at least 1 got 0")
            value = None
            for operand in operands:
                value = self.eval_arg(dot, operand)
                if is_true(value) == (name == "or"):
                    return value
            return final if final is not MISSING else value
        function = FUNCTIONS[name]
        fixed = len(function.params)
        if function.variadic is None and count != fixed:
            self.error(node, f"wrong number of args for {name}: want {fixed} got {count}")
        if function.variadic is not None and count < fixed:
            self.error(node, f"wrong number of args for {name}: want at least {fixed} got {len(operands)}")
        values = []
        for i, operand in enumerate(operands):
            value = self.eval_arg(dot, operand)
            kind = function.params[i] if i < fixed else function.variadic
            if kind == "string" and type(value) is not str:
                self._wrong_argument_type(operand, value)
            values.append(value)
        if final is not MISSING:
            kind = function.params[count - 1] if count <= fixed else function.variadic
            if kind == "string" and type(final) is not str:
                self._wrong_argument_type(cmd, final)
            values.append(final)
        try:
            return function.call(*values)
        except FuncError as e:
            self.error(cmd, f"error calling {name}: {e}")

    def _wrong_argument_type(self, node: Node, value: Any) -> None:
        if isinstance(node, (BoolNode, NumberNode, StringNode)):
            self.error(node, f"expected string; found {node}")
        if isinstance(node, NilNode):
            self.error(node, "cannot assign nil to string")
        if value is None:
            if isinstance(node, FieldNode) and self.zero_missing_keys:
                self.error(node, "wrong type for value; expected string; got interface {}")
            self.error(node, "invalid value; expected string")
        self.error(node, f"wrong type for value; expected string; got {go_type_name(value)}")


_WALKERS = {
    TextNode: _State.walk_text,
    ActionNode: _State.walk_action,
    IfNode: _State.walk_if,
    WithNode: _State.walk_with,
    RangeNode: _State.walk_range,
    BreakNode: _State.walk_break,
    ContinueNode: _State.walk_continue,
    TemplateNode: _State.walk_template,
    ListNode: _State.walk,
}


def execute(root: ListNode, data: Any, *, defines: dict[str, ListNode], lines: LineIndex,
            zero_missing_keys: bool = True) -> str:
    """Render `root` with `data` as both dot and `$`. With zero_missing_keys (Go's missingkey=zero, as
    Ollama sets it) a missing map key yields a nil interface{}, whose fields are an error; without it
    (Go's default) the missing value's fields are simply missing too."""
    state = _State(defines, lines, zero_missing_keys)
    state.vars.append(["$", data])
    try:
        state.walk(data, root)
    except RecursionError:
        raise ExecError("template: :1: executing \"\" : template nesting too deep") from None
    return "".join(state.out)
