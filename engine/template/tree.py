"""The parse-tree walks Ollama's template.go does: collecting identifiers (Vars) and cutting a template
after its first `{{ .Response }}` (the final turn of legacy templates)."""

from __future__ import annotations

from engine.template.errors import TemplateError
from engine.template.nodes import (
    ActionNode,
    BranchNode,
    FieldNode,
    ListNode,
    Node,
    PipeNode,
    TemplateNode,
    VariableNode,
)


def identifiers(node: Node) -> list[str]:
    """Ollama's Identifiers: every field and variable name used in printed or tested pipelines
    (declarations and chained fields such as `(x).Field` are not looked at)."""
    if isinstance(node, ListNode):
        return [name for child in node.nodes for name in identifiers(child)]
    if isinstance(node, TemplateNode):
        if node.pipe is None:
            raise TemplateError("undefined template specified")
        return identifiers(node.pipe)
    if isinstance(node, ActionNode):
        return identifiers(node.pipe)
    if isinstance(node, BranchNode):
        names = identifiers(node.pipe) + identifiers(node.list)
        if node.else_list is not None:
            names += identifiers(node.else_list)
        return names
    if isinstance(node, PipeNode):
        return [name for cmd in node.cmds for arg in cmd.args for name in identifiers(arg)]
    if isinstance(node, (FieldNode, VariableNode)):
        return list(node.ident)
    return []


def cut_after_response(root: ListNode) -> ListNode:
    """A copy of the tree with everything after the first `.Response` field removed; the action holding
    it stays. Mirrors Ollama's deleteNode walk, including what it does not look into (if/range/with
    conditions, chained fields). Where Ollama would crash on an else branch that the cut empties
    entirely, the else branch is dropped instead."""
    cut = False

    def doomed(node: Node) -> bool:
        nonlocal cut
        if isinstance(node, FieldNode) and "Response" in node.ident:
            cut = True
            return False
        return cut

    def walk(node: Node) -> Node | None:
        if doomed(node):
            return None
        if isinstance(node, ListNode):
            return ListNode(node.pos, [kept for child in node.nodes if (kept := walk(child)) is not None])
        if isinstance(node, BranchNode):
            body = walk(node.list)
            else_list = walk(node.else_list) if node.else_list is not None else None
            return type(node)(node.pos, node.pipe, body, else_list)
        if isinstance(node, ActionNode):
            pipe = walk(node.pipe)
            return None if pipe is None else ActionNode(node.pos, pipe)
        if isinstance(node, PipeNode):
            commands = []
            for cmd in node.cmds:
                args = [kept for arg in cmd.args if (kept := walk(arg)) is not None]
                if not args:
                    return None
                commands.append(type(cmd)(cmd.pos, args))
            return PipeNode(node.pos, node.decl, commands, node.is_assign) if commands else None
        return node

    result = walk(root)  # the root list itself is never cut
    assert isinstance(result, ListNode)
    return result
