"""Parse-tree nodes, mirroring Go's text/template/parse node types.

`str(node)` reproduces Go's Node.String() (used in error messages). `pos` is the node's index in the
template source. Nodes are immutable after parsing; tree rewrites build new nodes.
"""

from __future__ import annotations

from typing import Any

from engine.template.gofmt import go_quote


class Node:
    __slots__ = ("pos",)

    def __init__(self, pos: int):
        self.pos = pos

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class ListNode(Node):
    __slots__ = ("nodes",)

    def __init__(self, pos: int, nodes: list[Node] | None = None):
        super().__init__(pos)
        self.nodes: list[Node] = nodes if nodes is not None else []

    def __str__(self) -> str:
        return "".join(str(n) for n in self.nodes)


class TextNode(Node):
    __slots__ = ("text",)

    def __init__(self, pos: int, text: str):
        super().__init__(pos)
        self.text = text

    def __str__(self) -> str:
        return self.text


# --- operands ---------------------------------------------------------------------------------------

class FieldNode(Node):
    """`.A.B`: ident = ("A", "B")."""

    __slots__ = ("ident",)

    def __init__(self, pos: int, ident: tuple[str, ...]):
        super().__init__(pos)
        self.ident = ident

    def __str__(self) -> str:
        return "".join("." + i for i in self.ident)


class VariableNode(Node):
    """`$x.A`: ident = ("$x", "A")."""

    __slots__ = ("ident",)

    def __init__(self, pos: int, ident: tuple[str, ...]):
        super().__init__(pos)
        self.ident = ident

    def __str__(self) -> str:
        return ".".join(self.ident)


class ChainNode(Node):
    """A term followed by field accesses, e.g. `(index .M 0).Name`."""

    __slots__ = ("node", "fields")

    def __init__(self, pos: int, node: Node, fields: tuple[str, ...]):
        super().__init__(pos)
        self.node = node
        self.fields = fields

    def __str__(self) -> str:
        head = f"({self.node})" if isinstance(self.node, PipeNode) else str(self.node)
        return head + "".join("." + f for f in self.fields)


class IdentifierNode(Node):
    """A function name."""

    __slots__ = ("ident",)

    def __init__(self, pos: int, ident: str):
        super().__init__(pos)
        self.ident = ident

    def __str__(self) -> str:
        return self.ident


class DotNode(Node):
    __slots__ = ()

    def __str__(self) -> str:
        return "."


class NilNode(Node):
    __slots__ = ()

    def __str__(self) -> str:
        return "nil"


class BoolNode(Node):
    __slots__ = ("value",)

    def __init__(self, pos: int, value: bool):
        super().__init__(pos)
        self.value = value

    def __str__(self) -> str:
        return "true" if self.value else "false"


class NumberNode(Node):
    """A numeric constant; `value` is its Go ideal-constant value (int or float)."""

    __slots__ = ("text", "value")

    def __init__(self, pos: int, text: str, value: Any):
        super().__init__(pos)
        self.text = text
        self.value = value

    def __str__(self) -> str:
        return self.text


class StringNode(Node):
    __slots__ = ("quoted", "value")

    def __init__(self, pos: int, quoted: str, value: str):
        super().__init__(pos)
        self.quoted = quoted
        self.value = value

    def __str__(self) -> str:
        return self.quoted


# --- pipelines and actions ----------------------------------------------------------------------------

class CommandNode(Node):
    __slots__ = ("args",)

    def __init__(self, pos: int, args: list[Node]):
        super().__init__(pos)
        self.args = args

    def __str__(self) -> str:
        return " ".join(f"({a})" if isinstance(a, PipeNode) else str(a) for a in self.args)


class PipeNode(Node):
    """`$x := cmd | cmd`: decl holds the declared (or, with is_assign, assigned) variables."""

    __slots__ = ("is_assign", "decl", "cmds")

    def __init__(self, pos: int, decl: list[VariableNode] | None = None,
                 cmds: list[CommandNode] | None = None, is_assign: bool = False):
        super().__init__(pos)
        self.is_assign = is_assign
        self.decl: list[VariableNode] = decl if decl is not None else []
        self.cmds: list[CommandNode] = cmds if cmds is not None else []

    def __str__(self) -> str:
        head = ", ".join(str(v) for v in self.decl) + " := " if self.decl else ""  # Go prints := for = too
        return head + " | ".join(str(c) for c in self.cmds)


class ActionNode(Node):
    """`{{ pipeline }}`: printed unless the pipeline declares variables."""

    __slots__ = ("pipe",)

    def __init__(self, pos: int, pipe: PipeNode):
        super().__init__(pos)
        self.pipe = pipe

    def __str__(self) -> str:
        return "{{" + str(self.pipe) + "}}"


class BranchNode(Node):
    """Common shape of if / range / with."""

    __slots__ = ("pipe", "list", "else_list")
    KEYWORD = ""

    def __init__(self, pos: int, pipe: PipeNode, body: ListNode, else_list: ListNode | None):
        super().__init__(pos)
        self.pipe = pipe
        self.list = body
        self.else_list = else_list

    def __str__(self) -> str:
        text = "{{" + self.KEYWORD + " " + str(self.pipe) + "}}" + str(self.list)
        if self.else_list is not None:
            text += "{{else}}" + str(self.else_list)
        return text + "{{end}}"


class IfNode(BranchNode):
    __slots__ = ()
    KEYWORD = "if"


class RangeNode(BranchNode):
    __slots__ = ()
    KEYWORD = "range"


class WithNode(BranchNode):
    __slots__ = ()
    KEYWORD = "with"


class BreakNode(Node):
    __slots__ = ()

    def __str__(self) -> str:
        return "{{break}}"


class ContinueNode(Node):
    __slots__ = ()

    def __str__(self) -> str:
        return "{{continue}}"


class TemplateNode(Node):
    """`{{template "name" pipeline}}`; pipe is None when no pipeline is given."""

    __slots__ = ("name", "pipe")

    def __init__(self, pos: int, name: str, pipe: PipeNode | None):
        super().__init__(pos)
        self.name = name
        self.pipe = pipe

    def __str__(self) -> str:
        if self.pipe is None:
            return "{{template " + go_quote(self.name) + "}}"
        return "{{template " + go_quote(self.name) + " " + str(self.pipe) + "}}"
