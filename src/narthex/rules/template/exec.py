"""Template execution with text/template's semantics and error texts (text/template/exec.go).

Python values model Go ones (see :mod:`gofmt`); ``None`` stands both for Go's nil and for the invalid
``reflect.Value`` a missing map key or nil data yields, which prints as ``<no value>``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from narthex.rules.template import nodes as n
from narthex.rules.template.gofmt import format_value, go_quote, go_type_name
from narthex.rules.template.gofunc import ANY, NILABLE, VALUE, FuncError, GoFunc, assignable, method_of
from narthex.rules.template.htmlescape import ContextScanner, escape_in_context
from narthex.rules.template.parser import Tree
from narthex.rules.template.values import map_zero

# Go allows 100000 nested template calls; Python's stack is far shallower.
MAX_EXEC_DEPTH = 100


class _Missing:
    """Go's ``missingVal``: no value piped in from a previous command."""

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


class TemplateExecError(Exception):
    """An execution error, with Go's text: ``template: x:1:3: executing "x" at <.Foo>: ...``."""


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


def is_true(value: Any) -> tuple[bool, bool]:
    """Go's truth (not the zero value of its type) and whether the value has a truth at all."""
    if value is None:
        return False, True
    if isinstance(value, bool):
        return value, True
    if isinstance(value, int | float | complex):
        return value != 0, True
    if isinstance(value, str | Mapping | Sequence):
        return len(value) > 0, True
    # Pointers, structs and functions are true when present.
    return True, True


class Executor:
    """Executes one template (and the templates it calls) against data, collecting output."""

    def __init__(
        self,
        trees: Mapping[str, Tree],
        funcs: Mapping[str, GoFunc],
        missing_key: str = "invalid",
        html: bool = False,
    ) -> None:
        self.trees = trees
        self.funcs = funcs
        self.missing_key = missing_key
        self.scanner = ContextScanner() if html else None
        self.out: list[str] = []
        self.tree: Tree | None = None
        self.node: n.Node | None = None
        self.vars: list[list[Any]] = []
        self.depth = 0

    # -- entry points ----------------------------------------------------------------------------------------

    def execute(self, name: str, data: Any) -> str:
        """Run template ``name`` with ``data`` as dot; returns the output or raises TemplateExecError."""
        tree = self.trees.get(name)
        self.tree = tree
        self.vars = [["$", data]]
        if tree is None:
            raise TemplateExecError(f"template: {name}: {go_quote(name)} is an incomplete or empty template")
        self.out = []
        try:
            self.walk(data, tree.root)
        except RecursionError:
            self.errorf(f"exceeded maximum template depth ({MAX_EXEC_DEPTH})")
        if self.scanner is not None:
            self.out.append(self.scanner.flush())
        return "".join(self.out)

    # -- errors and variables --------------------------------------------------------------------------------

    def at(self, node: n.Node) -> None:
        self.node = node

    def errorf(self, message: str) -> TemplateExecError:
        """Raise an execution error located at the current node (never returns)."""
        assert self.tree is not None
        name = self.tree.name
        if self.node is None:
            raise TemplateExecError(f"template: {name}: {message}")
        location, context = self.tree.error_context(self.node)
        raise TemplateExecError(f"template: {location}: executing {go_quote(name)} at <{context}>: {message}")

    def push(self, name: str, value: Any) -> None:
        self.vars.append([name, value])

    def mark(self) -> int:
        return len(self.vars)

    def pop(self, mark: int) -> None:
        del self.vars[mark:]

    def set_var(self, name: str, value: Any) -> None:
        for entry in reversed(self.vars):
            if entry[0] == name:
                entry[1] = value
                return
        self.errorf(f"undefined variable: {name}")

    def var_value(self, name: str) -> Any:
        for entry in reversed(self.vars):
            if entry[0] == name:
                return entry[1]
        self.errorf(f"undefined variable: {name}")

    # -- walking ---------------------------------------------------------------------------------------------

    def walk(self, dot: Any, node: n.Node) -> None:
        self.at(node)
        if isinstance(node, n.ActionNode):
            value = self.eval_pipeline(dot, node.pipe)
            if not node.pipe.decl:
                self.print_value(node, value)
        elif isinstance(node, n.TextNode):
            self.out.append(node.text if self.scanner is None else self.scanner.feed(node.text))
        elif isinstance(node, n.ListNode):
            for child in node.nodes:
                self.walk(dot, child)
        elif isinstance(node, n.IfNode | n.WithNode):
            self.walk_if_or_with(dot, node)
        elif isinstance(node, n.RangeNode):
            self.walk_range(dot, node)
        elif isinstance(node, n.TemplateNode):
            self.walk_template(dot, node)
        elif isinstance(node, n.BreakNode):
            raise _Break
        elif isinstance(node, n.ContinueNode):
            raise _Continue
        elif not isinstance(node, n.CommentNode):
            self.errorf(f"unknown node: {node}")

    def walk_if_or_with(self, dot: Any, node: n.BranchNode) -> None:
        mark = self.mark()
        try:
            value = self.eval_pipeline(dot, node.pipe)
            truth, ok = is_true(value)
            if not ok:
                self.errorf(f"if/with can't use {format_value(value)}")
            if truth:
                self.walk(value if isinstance(node, n.WithNode) else dot, node.list)
            elif node.else_list is not None:
                self.walk(dot, node.else_list)
        finally:
            self.pop(mark)

    def walk_range(self, dot: Any, node: n.RangeNode) -> None:
        self.at(node)
        outer = self.mark()
        try:
            value = self.eval_pipeline(dot, node.pipe)
            mark = self.mark()
            pairs = self._range_pairs(value, node)
            if pairs is None or not pairs:
                if node.else_list is not None:
                    self.walk(dot, node.else_list)
                return
            for index, elem in pairs:
                if not self._one_iteration(node, mark, index, elem):
                    break
        finally:
            self.pop(outer)

    def _range_pairs(self, value: Any, node: n.RangeNode) -> list[tuple[Any, Any]] | None:
        if value is None:
            return None
        if isinstance(value, Mapping):
            keys = sorted(value.keys(), key=_map_sort_key)
            return [(k, value[k]) for k in keys]
        if isinstance(value, Sequence) and not isinstance(value, str):
            return list(enumerate(value))
        if isinstance(value, int) and not isinstance(value, bool):
            if len(node.pipe.decl) > 1:
                self.errorf(f"can't use {value} to iterate over more than one variable")
            return [(i, i) for i in range(value)]
        self.errorf(f"range can't iterate over {format_value(value)}")
        return None

    def _one_iteration(self, node: n.RangeNode, mark: int, index: Any, elem: Any) -> bool:
        decl = node.pipe.decl
        if decl:
            if node.pipe.is_assign:
                self.set_var(decl[0].idents[0], index if len(decl) > 1 else elem)
            else:
                self.vars[-1][1] = elem
        if len(decl) > 1:
            if node.pipe.is_assign:
                self.set_var(decl[1].idents[0], elem)
            else:
                self.vars[-2][1] = index
        try:
            self.walk(elem, node.list)
        except _Continue:
            pass
        except _Break:
            return False
        finally:
            self.pop(mark)
        return True

    def walk_template(self, dot: Any, node: n.TemplateNode) -> None:
        self.at(node)
        tree = self.trees.get(node.name)
        if tree is None:
            self.errorf(f"template {go_quote(node.name)} not defined")
        assert tree is not None
        if self.depth >= MAX_EXEC_DEPTH:
            self.errorf(f"exceeded maximum template depth ({MAX_EXEC_DEPTH})")
        new_dot = self.eval_pipeline(dot, node.pipe)
        saved = (self.tree, self.vars)
        self.tree, self.vars = tree, [["$", new_dot]]
        self.depth += 1
        try:
            self.walk(new_dot, tree.root)
        finally:
            self.depth -= 1
            self.tree, self.vars = saved

    # -- evaluation ------------------------------------------------------------------------------------------

    def eval_pipeline(self, dot: Any, pipe: n.PipeNode | None) -> Any:
        if pipe is None:
            return None
        self.at(pipe)
        value = MISSING
        for cmd in pipe.cmds:
            value = self.eval_command(dot, cmd, value)
        for variable in pipe.decl:
            if pipe.is_assign:
                self.set_var(variable.idents[0], value)
            else:
                self.push(variable.idents[0], value)
        return value

    def not_a_function(self, args: list[n.Node], final: Any) -> None:
        if len(args) > 1 or final is not MISSING:
            self.errorf(f"can't give argument to non-function {args[0]}")

    def eval_command(self, dot: Any, cmd: n.CommandNode, final: Any) -> Any:
        first = cmd.args[0]
        if isinstance(first, n.FieldNode):
            return self.eval_field_node(dot, first, cmd.args, final)
        if isinstance(first, n.ChainNode):
            return self.eval_chain_node(dot, first, cmd.args, final)
        if isinstance(first, n.IdentifierNode):
            return self.eval_function(dot, first, cmd, cmd.args, final)
        if isinstance(first, n.PipeNode):
            self.not_a_function(cmd.args, final)
            return self.eval_pipeline(dot, first)
        if isinstance(first, n.VariableNode):
            return self.eval_variable_node(dot, first, cmd.args, final)
        self.at(first)
        self.not_a_function(cmd.args, final)
        if isinstance(first, n.BoolNode):
            return first.value
        if isinstance(first, n.DotNode):
            return dot
        if isinstance(first, n.NilNode):
            self.errorf("nil is not a command")
        if isinstance(first, n.NumberNode):
            return self.ideal_constant(first)
        if isinstance(first, n.StringNode):
            return first.text
        self.errorf(f"can't evaluate command {go_quote(str(first))}")

    def ideal_constant(self, constant: n.NumberNode) -> Any:
        self.at(constant)
        text = constant.text
        is_hex_int = len(text) > 2 and text[0] == "0" and text[1] in "xX" and not any(c in text for c in "pP")
        if constant.is_complex:
            return constant.complex_value
        if constant.is_float and not is_hex_int and text[0] != "'" and any(c in text for c in ".eEpP"):
            return constant.float_value
        if constant.is_int:
            return constant.int_value
        if constant.is_uint:
            self.errorf(f"{text} overflows int")
        return None

    def eval_field_node(self, dot: Any, field: n.FieldNode, args: list[n.Node], final: Any) -> Any:
        self.at(field)
        return self.eval_field_chain(dot, dot, field, field.idents, args, final)

    def eval_chain_node(self, dot: Any, chain: n.ChainNode, args: list[n.Node], final: Any) -> Any:
        self.at(chain)
        if isinstance(chain.node, n.NilNode):
            self.errorf(f"indirection through explicit nil in {chain}")
        receiver = self.eval_arg(dot, None, chain.node)
        return self.eval_field_chain(dot, receiver, chain, chain.fields, args, final)

    def eval_variable_node(
        self, dot: Any, variable: n.VariableNode, args: list[n.Node] | None, final: Any
    ) -> Any:
        self.at(variable)
        value = self.var_value(variable.idents[0])
        if len(variable.idents) == 1:
            self.not_a_function(args or [variable], final)
            return value
        return self.eval_field_chain(dot, value, variable, variable.idents[1:], args, final)

    def eval_field_chain(
        self, dot: Any, receiver: Any, node: n.Node, idents: list[str], args: list[n.Node] | None, final: Any
    ) -> Any:
        for ident in idents[:-1]:
            receiver = self.eval_field(dot, ident, node, None, MISSING, receiver)
        return self.eval_field(dot, idents[-1], node, args, final, receiver)

    def eval_function(
        self, dot: Any, node: n.IdentifierNode, cmd: n.Node, args: list[n.Node] | None, final: Any
    ) -> Any:
        self.at(node)
        function = self.funcs.get(node.ident)
        if function is None:
            self.errorf(f"{go_quote(node.ident)} is not a defined function")
        assert function is not None
        return self.eval_call(dot, function, cmd, node.ident, args, final)

    def eval_field(
        self, dot: Any, name: str, node: n.Node, args: list[n.Node] | None, final: Any, receiver: Any
    ) -> Any:
        if receiver is None:
            if self.missing_key == "error":
                self.errorf(f"nil data; no entry for key {go_quote(name)}")
            return None
        type_name = go_type_name(receiver)
        method = method_of(receiver, name)
        if method is not None:
            return self.eval_call(dot, method, node, name, args, final)
        has_args = (args is not None and len(args) > 1) or final is not MISSING
        if isinstance(receiver, Mapping):
            if has_args:
                self.errorf(f"{name} is not a method but has arguments")
            if name in receiver:
                return receiver[name]
            if self.missing_key == "zero":
                return map_zero(receiver)
            if self.missing_key == "error":
                self.errorf(f"map has no entry for key {go_quote(name)}")
            return None
        if _has_field(receiver, name):
            if not name[:1].isupper():
                self.errorf(f"{name} is an unexported field of struct type {type_name}")
            if has_args:
                self.errorf(f"{name} has arguments but cannot be invoked as function")
            return getattr(receiver, name)
        self.errorf(f"can't evaluate field {name} in type {type_name}")

    def eval_call(
        self, dot: Any, fn: GoFunc, node: n.Node, name: str, args: list[n.Node] | None, final: Any
    ) -> Any:
        arg_nodes = args[1:] if args is not None else []
        num_in = len(arg_nodes) + (0 if final is MISSING else 1)
        num_fixed = len(fn.params)
        if fn.variadic is not None:
            if num_in < num_fixed:
                self.errorf(
                    f"wrong number of args for {name}: want at least {num_fixed} got {len(arg_nodes)}"
                )
        elif num_in != num_fixed:
            self.errorf(f"wrong number of args for {name}: want {num_fixed} got {num_in}")
        if fn.builtin and name in ("and", "or"):
            return self._and_or(dot, name, arg_nodes, final)
        argv: list[Any] = []
        for i, arg in enumerate(arg_nodes):
            typ = fn.params[i] if i < num_fixed else fn.variadic
            argv.append(self.eval_arg(dot, typ, arg))
        if final is not MISSING:
            typ = fn.params[num_in - 1] if num_in - 1 < num_fixed else fn.variadic
            argv.append(self.validate_type(final, typ))
        try:
            return fn.fn(*argv)
        except (TemplateExecError, _Break, _Continue):
            raise
        except FuncError as exc:
            self.at(node)
            self.errorf(f"error calling {name}: {exc}")
        except (ArithmeticError, LookupError, TypeError, ValueError, AttributeError) as exc:
            self.at(node)
            self.errorf(f"error calling {name}: {_panic_text(exc)}")

    def _and_or(self, dot: Any, name: str, arg_nodes: list[n.Node], final: Any) -> Any:
        value: Any = None
        for arg in arg_nodes:
            value = self.eval_arg(dot, VALUE, arg)
            if is_true(value)[0] == (name == "or"):
                return value
        if final is not MISSING:
            value = final
        return value

    def validate_type(self, value: Any, typ: str | None) -> Any:
        if value is None:
            if typ is None or typ in NILABLE:
                return None
            self.errorf(f"invalid value; expected {typ}")
        if typ is not None and not assignable(value, typ):
            self.errorf(f"wrong type for value; expected {typ}; got {go_type_name(value)}")
        return value

    def eval_arg(self, dot: Any, typ: str | None, node: n.Node) -> Any:
        self.at(node)
        if isinstance(node, n.DotNode):
            return self.validate_type(dot, typ)
        if isinstance(node, n.NilNode):
            if typ is None or typ in NILABLE:
                return None
            self.errorf(f"cannot assign nil to {typ}")
        if isinstance(node, n.FieldNode):
            return self.validate_type(self.eval_field_node(dot, node, [node], MISSING), typ)
        if isinstance(node, n.VariableNode):
            return self.validate_type(self.eval_variable_node(dot, node, None, MISSING), typ)
        if isinstance(node, n.PipeNode):
            return self.validate_type(self.eval_pipeline(dot, node), typ)
        if isinstance(node, n.IdentifierNode):
            return self.validate_type(self.eval_function(dot, node, node, None, MISSING), typ)
        if isinstance(node, n.ChainNode):
            return self.validate_type(self.eval_chain_node(dot, node, None, MISSING), typ)
        return self._eval_literal(dot, typ, node)

    def _eval_literal(self, dot: Any, typ: str | None, node: n.Node) -> Any:
        if typ is None or typ in (ANY, VALUE):
            return self.eval_empty_interface(dot, node)
        if typ == "bool":
            if isinstance(node, n.BoolNode):
                return node.value
            self.errorf(f"expected bool; found {node}")
        if typ == "string":
            if isinstance(node, n.StringNode):
                return node.text
            self.errorf(f"expected string; found {node}")
        if typ == "int":
            if isinstance(node, n.NumberNode) and node.is_int:
                return node.int_value
            self.errorf(f"expected integer; found {node}")
        if typ == "float64":
            if isinstance(node, n.NumberNode) and node.is_float:
                return node.float_value
            self.errorf(f"expected float; found {node}")
        self.errorf(f"can't handle {node} for arg of type {typ}")

    def eval_empty_interface(self, dot: Any, node: n.Node) -> Any:
        self.at(node)
        if isinstance(node, n.BoolNode):
            return node.value
        if isinstance(node, n.NumberNode):
            return self.ideal_constant(node)
        if isinstance(node, n.StringNode):
            return node.text
        self.errorf(f"can't handle assignment of {node} to empty interface argument")

    def print_value(self, node: n.Node, value: Any) -> None:
        self.at(node)
        if self.scanner is not None:
            self.out.append(self.scanner.flush())
            self.out.append(escape_in_context(self.scanner.ctx, value))
            return
        if value is None:
            self.out.append("<no value>")
            return
        if isinstance(value, GoFunc) or (callable(value) and not hasattr(value, "String")):
            self.errorf(f"can't print {node} of type {go_type_name(value)}")
        # Pointers are dereferenced before printing, so a *sample prints as a bare struct.
        struct_text = getattr(value, "go_struct_text", None)
        self.out.append(struct_text() if callable(struct_text) else format_value(value))


def _has_field(receiver: Any, name: str) -> bool:
    if isinstance(receiver, str | int | float | bool | Sequence):
        return False
    return hasattr(receiver, name) and not name.startswith("_")


def _map_sort_key(key: Any) -> tuple[int, Any]:
    if isinstance(key, int | float) and not isinstance(key, bool):
        return (0, key)
    return (1, str(key))


def _panic_text(exc: Exception) -> str:
    if isinstance(exc, ZeroDivisionError):
        return "runtime error: integer divide by zero"
    if isinstance(exc, AttributeError) and "NoneType" in str(exc):
        return "runtime error: invalid memory address or nil pointer dereference"
    return str(exc)
