"""Parser building template trees from tokens, as text/template/parse/parse.go (same error texts)."""

from __future__ import annotations

import ast as _pyast
import functools
import re
from collections.abc import Collection
from dataclasses import dataclass, field

from narthex.rules.template import nodes as n
from narthex.rules.template.gofmt import go_quote
from narthex.rules.template.lexer import Item, T, tokenize


class TemplateParseError(Exception):
    """A syntax error; the message is Go's, e.g. ``template: x:1: unclosed action``."""


@dataclass(eq=False)
class Tree:
    """One named template: its root list and the source text its node positions refer to."""

    name: str
    parse_name: str
    source: bytes
    root: n.ListNode

    def error_context(self, node: n.Node) -> tuple[str, str]:
        """``name:line:col`` (column is a 0-based byte offset on the line) and the node's text."""
        prefix = self.source[: node.pos]
        last_nl = prefix.rfind(b"\n")
        col = node.pos if last_nl < 0 else node.pos - (last_nl + 1)
        line = 1 + prefix.count(b"\n")
        return f"{self.parse_name}:{line}:{col}", str(node)


def is_empty_tree(node: n.Node | None) -> bool:
    """Whether a tree holds nothing but white space (so a later definition may replace it)."""
    if node is None:
        return True
    if isinstance(node, n.ListNode):
        return all(is_empty_tree(child) for child in node.nodes)
    if isinstance(node, n.TextNode):
        return node.text.strip(" \t\r\n\v\f") == ""
    return isinstance(node, n.CommentNode)


_OCTAL = re.compile(r"[+-]?0[0-7_]+")


@dataclass
class _State:
    tokens: list[Item]
    index: int = 0
    furthest: int = 0
    vars: list[str] = field(default_factory=lambda: ["$"])
    range_depth: int = 0
    action_line: int = 0


class Parser:
    """Parses one template text into a set of named trees."""

    def __init__(self, name: str, text: str, functions: Collection[str]) -> None:
        self.name = name
        self.text = text
        self.source = text.encode("utf-8", "surrogatepass")
        self.functions = functions
        self.trees: dict[str, Tree] = {}
        self.st = _State(tokenize(text))

    # -- token stream ----------------------------------------------------------------------------------------

    def next(self) -> Item:
        item = self.peek()
        self.st.index += 1
        return item

    def backup(self, count: int = 1) -> None:
        self.st.index -= count

    def peek(self) -> Item:
        index = min(self.st.index, len(self.st.tokens) - 1)
        self.st.furthest = max(self.st.furthest, index)
        return self.st.tokens[index]

    def next_non_space(self) -> Item:
        while True:
            item = self.next()
            if item.typ != T.SPACE:
                return item

    def peek_non_space(self) -> Item:
        item = self.next_non_space()
        self.st.index -= 1
        return item

    def errorf(self, message: str) -> TemplateParseError:
        line = self.st.tokens[self.st.furthest].line
        return TemplateParseError(f"template: {self.name}:{line}: {message}")

    def unexpected(self, token: Item, context: str) -> TemplateParseError:
        if token.typ == T.ERROR:
            extra = ""
            if self.st.action_line and self.st.action_line != token.line:
                extra = f" in action started at {self.name}:{self.st.action_line}"
                if token.val.endswith(" action"):
                    extra = extra[len(" in action") :]
            return self.errorf(f"{token}{extra}")
        return self.errorf(f"unexpected {token} in {context}")

    def expect(self, typ: T, context: str) -> Item:
        token = self.next_non_space()
        if token.typ != typ:
            raise self.unexpected(token, context)
        return token

    # -- top level -------------------------------------------------------------------------------------------

    def parse(self) -> dict[str, Tree]:
        """Parse the text; raises :class:`TemplateParseError`."""
        root = n.ListNode(self.peek().pos)
        while self.peek().typ != T.EOF:
            if self.peek().typ == T.LEFT_DELIM:
                start = self.st.index
                self.next()
                if self.next_non_space().typ == T.DEFINE:
                    self.parse_definition()
                    continue
                self.st.index = start
            node = self.text_or_action()
            if isinstance(node, n.EndNode | n.ElseNode):
                raise self.errorf(f"unexpected {node}")
            root.nodes.append(node)
        self.add(Tree(self.name, self.name, self.source, root))
        return self.trees

    def add(self, tree: Tree) -> None:
        existing = self.trees.get(tree.name)
        if existing is None or is_empty_tree(existing.root):
            self.trees[tree.name] = tree
            return
        if not is_empty_tree(tree.root):
            raise self.errorf(f"template: multiple definition of template {go_quote(tree.name)}")

    def parse_definition(self) -> None:
        context = "define clause"
        token = self.next_non_space()
        if token.typ not in (T.STRING, T.RAW_STRING):
            raise self.unexpected(token, context)
        name = self.unquote(token.val)
        self.expect(T.RIGHT_DELIM, context)
        saved_vars, saved_depth = self.st.vars, self.st.range_depth
        self.st.vars, self.st.range_depth = ["$"], 0
        root, end = self.item_list()
        self.st.vars, self.st.range_depth = saved_vars, saved_depth
        if not isinstance(end, n.EndNode):
            raise self.errorf(f"unexpected {end} in {context}")
        self.add(Tree(name, self.name, self.source, root))

    def item_list(self) -> tuple[n.ListNode, n.Node]:
        node_list = n.ListNode(self.peek_non_space().pos)
        while self.peek_non_space().typ != T.EOF:
            node = self.text_or_action()
            if isinstance(node, n.EndNode | n.ElseNode):
                return node_list, node
            node_list.nodes.append(node)
        raise self.errorf("unexpected EOF")

    def text_or_action(self) -> n.Node:
        token = self.next_non_space()
        if token.typ == T.TEXT:
            return n.TextNode(token.pos, token.val)
        if token.typ == T.LEFT_DELIM:
            self.st.action_line = token.line
            try:
                return self.action()
            finally:
                self.st.action_line = 0
        raise self.unexpected(token, "input")

    # -- actions ---------------------------------------------------------------------------------------------

    def action(self) -> n.Node:
        token = self.next_non_space()
        handlers = {
            T.BLOCK: self.block_control,
            T.ELSE: self.else_control,
            T.END: self.end_control,
            T.IF: lambda: self.branch(n.IfNode, "if"),
            T.RANGE: lambda: self.branch(n.RangeNode, "range"),
            T.TEMPLATE: self.template_control,
            T.WITH: lambda: self.branch(n.WithNode, "with"),
        }
        if token.typ in handlers:
            return handlers[token.typ]()
        if token.typ in (T.BREAK, T.CONTINUE):
            return self.loop_control(token)
        self.backup()
        token = self.peek()
        return n.ActionNode(token.pos, token.line, self.pipeline("command", T.RIGHT_DELIM))

    def loop_control(self, token: Item) -> n.Node:
        word = "{{" + token.val + "}}"
        after = self.next_non_space()
        if after.typ != T.RIGHT_DELIM:
            raise self.unexpected(after, word)
        if self.st.range_depth == 0:
            raise self.errorf(f"{word} outside {{{{range}}}}")
        if token.typ == T.BREAK:
            return n.BreakNode(token.pos, token.line)
        return n.ContinueNode(token.pos, token.line)

    def pipeline(self, context: str, end: T) -> n.PipeNode:
        token = self.peek_non_space()
        pipe = n.PipeNode(token.pos, token.line)
        self.declarations(pipe, context)
        while True:
            token = self.next_non_space()
            if token.typ == end:
                self.check_pipeline(pipe, context)
                return pipe
            if token.typ in _OPERAND_START:
                self.backup()
                pipe.cmds.append(self.command())
            else:
                raise self.unexpected(token, context)

    def declarations(self, pipe: n.PipeNode, context: str) -> None:
        while True:
            v = self.peek_non_space()
            if v.typ != T.VARIABLE:
                return
            start = self.st.index
            self.next_non_space()
            nxt = self.peek_non_space()
            if nxt.typ in (T.ASSIGN, T.DECLARE):
                pipe.is_assign = nxt.typ == T.ASSIGN
                self.next_non_space()
                pipe.decl.append(n.VariableNode(v.pos, [v.val]))
                self.st.vars.append(v.val)
                return
            if nxt.typ == T.CHAR and nxt.val == ",":
                self.next_non_space()
                pipe.decl.append(n.VariableNode(v.pos, [v.val]))
                self.st.vars.append(v.val)
                if context == "range" and len(pipe.decl) < 2:
                    if self.peek_non_space().typ in (T.VARIABLE, T.RIGHT_DELIM, T.RIGHT_PAREN):
                        continue
                    raise self.errorf("range can only initialize variables")
                raise self.errorf(f"too many declarations in {context}")
            self.st.index = start
            return

    def check_pipeline(self, pipe: n.PipeNode, context: str) -> None:
        if not pipe.cmds:
            raise self.errorf(f"missing value for {context}")
        for i, cmd in enumerate(pipe.cmds[1:]):
            if isinstance(cmd.args[0], n.BoolNode | n.DotNode | n.NilNode | n.NumberNode | n.StringNode):
                raise self.errorf(f"non executable command in pipeline stage {i + 2}")

    def branch(self, cls: type[n.BranchNode], context: str) -> n.Node:
        saved = len(self.st.vars)
        try:
            pipe = self.pipeline(context, T.RIGHT_DELIM)
            if context == "range":
                self.st.range_depth += 1
            body, nxt = self.item_list()
            if context == "range":
                self.st.range_depth -= 1
            else_list: n.ListNode | None = None
            if isinstance(nxt, n.ElseNode):
                chained = {"if": T.IF, "with": T.WITH}.get(context)
                if chained is not None and self.peek().typ == chained:
                    self.next()
                    else_list = n.ListNode(nxt.pos, [self.branch(cls, context)])
                else:
                    else_list, nxt = self.item_list()
                    if not isinstance(nxt, n.EndNode):
                        raise self.errorf(f"expected end; found {nxt}")
            return cls(pipe.pos, pipe.line, pipe, body, else_list)
        finally:
            del self.st.vars[saved:]

    def end_control(self) -> n.Node:
        return n.EndNode(self.expect(T.RIGHT_DELIM, "end").pos)

    def else_control(self) -> n.Node:
        peek = self.peek_non_space()
        if peek.typ in (T.IF, T.WITH):
            return n.ElseNode(peek.pos, peek.line)
        token = self.expect(T.RIGHT_DELIM, "else")
        return n.ElseNode(token.pos, token.line)

    def template_name(self, token: Item, context: str) -> str:
        if token.typ not in (T.STRING, T.RAW_STRING):
            raise self.unexpected(token, context)
        return self.unquote(token.val)

    def template_control(self) -> n.Node:
        context = "template clause"
        token = self.next_non_space()
        name = self.template_name(token, context)
        pipe = None
        if self.next_non_space().typ != T.RIGHT_DELIM:
            self.backup()
            pipe = self.pipeline(context, T.RIGHT_DELIM)
        return n.TemplateNode(token.pos, token.line, name, pipe)

    def block_control(self) -> n.Node:
        context = "block clause"
        token = self.next_non_space()
        name = self.template_name(token, context)
        pipe = self.pipeline(context, T.RIGHT_DELIM)
        saved_vars, saved_depth = self.st.vars, self.st.range_depth
        self.st.vars, self.st.range_depth = ["$"], 0
        root, end = self.item_list()
        self.st.vars, self.st.range_depth = saved_vars, saved_depth
        if not isinstance(end, n.EndNode):
            raise self.errorf(f"unexpected {end} in {context}")
        self.add(Tree(name, self.name, self.source, root))
        return n.TemplateNode(token.pos, token.line, name, pipe)

    # -- commands and operands -------------------------------------------------------------------------------

    def command(self) -> n.CommandNode:
        cmd = n.CommandNode(self.peek_non_space().pos)
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            token = self.next()
            if token.typ == T.SPACE:
                continue
            if token.typ == T.ERROR:
                raise self.errorf(token.val)
            if token.typ in (T.RIGHT_DELIM, T.RIGHT_PAREN):
                self.backup()
            elif token.typ != T.PIPE:
                raise self.errorf(f"unexpected {token} in operand")
            break
        if not cmd.args:
            raise self.errorf("empty command")
        return cmd

    def operand(self) -> n.Node | None:
        node = self.term()
        if node is None:
            return None
        if self.peek().typ == T.FIELD:
            chain = n.ChainNode(self.peek().pos, node)
            while self.peek().typ == T.FIELD:
                chain.fields.append(self.next().val[1:])
            if isinstance(node, n.FieldNode):
                return n.FieldNode(chain.pos, [*node.idents, *chain.fields])
            if isinstance(node, n.VariableNode):
                return n.VariableNode(chain.pos, [*node.idents, *chain.fields])
            if isinstance(node, n.BoolNode | n.StringNode | n.NumberNode | n.NilNode | n.DotNode):
                raise self.errorf(f"unexpected . after term {go_quote(str(node))}")
            return chain
        return node

    def term(self) -> n.Node | None:
        token = self.next_non_space()
        typ = token.typ
        if typ == T.ERROR:
            raise self.errorf(token.val)
        if typ == T.IDENTIFIER:
            if token.val not in self.functions:
                raise self.errorf(f"function {go_quote(token.val)} not defined")
            return n.IdentifierNode(token.pos, token.val)
        if typ == T.DOT:
            return n.DotNode(token.pos)
        if typ == T.NIL:
            return n.NilNode(token.pos)
        if typ == T.VARIABLE:
            return self.use_var(token)
        if typ == T.FIELD:
            return n.FieldNode(token.pos, [token.val[1:]])
        if typ == T.BOOL:
            return n.BoolNode(token.pos, token.val == "true")
        if typ in (T.CHAR_CONSTANT, T.COMPLEX, T.NUMBER):
            return self.number(token)
        if typ == T.LEFT_PAREN:
            return self.pipeline("parenthesized pipeline", T.RIGHT_PAREN)
        if typ in (T.STRING, T.RAW_STRING):
            return n.StringNode(token.pos, token.val, self.unquote(token.val))
        self.backup()
        return None

    def use_var(self, token: Item) -> n.Node:
        idents = token.val.split(".")
        if idents[0] not in self.st.vars:
            raise self.errorf(f"undefined variable {go_quote(idents[0])}")
        return n.VariableNode(token.pos, idents)

    def unquote(self, quoted: str) -> str:
        try:
            return go_unquote(quoted)
        except ValueError as exc:
            raise self.errorf(str(exc)) from None

    def number(self, token: Item) -> n.NumberNode:
        try:
            return parse_number(token.pos, token.val, token.typ)
        except ValueError as exc:
            raise self.errorf(str(exc)) from None


_OPERAND_START = frozenset(
    {
        T.BOOL,
        T.CHAR_CONSTANT,
        T.COMPLEX,
        T.DOT,
        T.FIELD,
        T.IDENTIFIER,
        T.NUMBER,
        T.NIL,
        T.RAW_STRING,
        T.STRING,
        T.VARIABLE,
        T.LEFT_PAREN,
    }
)


_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}


def go_unquote(quoted: str) -> str:
    """strconv.Unquote for "..." , `...` and '...' literals; ValueError("invalid syntax") otherwise."""
    if len(quoted) < 2 or quoted[0] != quoted[-1] or quoted[0] not in "\"`'":
        raise ValueError("invalid syntax")
    quote, body = quoted[0], quoted[1:-1]
    if quote == "`":
        if "`" in body:
            raise ValueError("invalid syntax")
        return body.replace("\r", "")
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == quote or ch == "\n":
            raise ValueError("invalid syntax")
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        value, i = _unquote_escape(body, i + 1, quote)
        out.append(value)
    result = "".join(out)
    if quote == "'" and len(result) != 1:
        raise ValueError("invalid syntax")
    return result


def _unquote_escape(body: str, i: int, quote: str) -> tuple[str, int]:
    if i >= len(body):
        raise ValueError("invalid syntax")
    ch = body[i]
    if ch in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[ch], i + 1
    if ch == quote:
        return ch, i + 1
    widths = {"x": 2, "u": 4, "U": 8}
    if ch in widths:
        digits = body[i + 1 : i + 1 + widths[ch]]
        if len(digits) != widths[ch] or not all(c in "0123456789abcdefABCDEF" for c in digits):
            raise ValueError("invalid syntax")
        code = int(digits, 16)
        if ch == "x":
            # A \x escape is one byte; decode UTF-8 sequences built from several of them.
            return chr(code) if code < 0x80 else bytes([code]).decode("latin-1"), i + 3
        if code > 0x10FFFF or 0xD800 <= code < 0xE000:
            raise ValueError("invalid syntax")
        return chr(code), i + 1 + widths[ch]
    if ch in "01234567":
        digits = body[i : i + 3]
        if len(digits) != 3 or not all(c in "01234567" for c in digits) or int(digits, 8) > 255:
            raise ValueError("invalid syntax")
        return chr(int(digits, 8)), i + 3
    raise ValueError("invalid syntax")


def _parse_go_int(text: str) -> int | None:
    """strconv.ParseInt(text, 0, ...) without the range check; None if not an integer literal."""
    body = text.lstrip("+-")
    try:
        if _OCTAL.fullmatch(text) and "_" not in text:
            return int(text, 8)
        if body[:2] in ("0x", "0X", "0o", "0O", "0b", "0B") or body.isdigit() or "_" in body:
            return int(text, 0)
    except ValueError:
        return None
    return None


def _parse_go_float(text: str) -> float | None:
    body = text.lstrip("+-")
    if body[:2] in ("0x", "0X"):
        try:
            return float.fromhex(text.replace("_", ""))
        except ValueError:
            return None
    if not body or body[0] not in "0123456789.":
        return None
    try:
        return float(text)
    except ValueError:
        return None


def parse_number(pos: int, text: str, typ: T) -> n.NumberNode:
    """Classify a numeric literal as text/template's newNumber does."""
    node = n.NumberNode(pos, text)
    if typ == T.CHAR_CONSTANT:
        try:
            rune = ord(go_unquote(text))
        except (ValueError, TypeError):
            raise ValueError(f"malformed character constant: {text}") from None
        node.is_int = node.is_uint = node.is_float = True
        node.int_value, node.float_value = rune, float(rune)
        return node
    if typ == T.COMPLEX or text.endswith("i"):
        try:
            value = complex(_pyast.literal_eval(text.replace("i", "j")))
        except (ValueError, SyntaxError):
            raise ValueError(f"illegal number syntax: {go_quote(text)}") from None
        node.is_complex, node.complex_value = True, value
        if value.imag == 0:
            node.is_float, node.float_value = True, value.real
            if value.real == int(value.real):
                node.is_int = True
                node.int_value = int(value.real)
                node.is_uint = node.int_value >= 0
        return node
    parsed = _parse_go_int(text)
    if parsed is not None:
        node.is_int = -(2**63) <= parsed < 2**63
        node.is_uint = 0 <= parsed < 2**64
        if node.is_int or node.is_uint:
            node.int_value = parsed
            node.is_float, node.float_value = True, float(parsed)
            return node
    value = _parse_go_float(text)
    if value is not None:
        if not any(c in text for c in ".eEpP"):
            raise ValueError(f"integer overflow: {go_quote(text)}")
        node.is_float, node.float_value = True, value
        if value == value and abs(value) != float("inf") and value == int(value):
            as_int = int(value)
            node.is_int = -(2**63) <= as_int < 2**63
            node.is_uint = 0 <= as_int < 2**64
            node.int_value = as_int
        return node
    raise ValueError(f"illegal number syntax: {go_quote(text)}")


def parse_template(name: str, text: str, functions: Collection[str]) -> dict[str, Tree]:
    """Parse ``text`` as template ``name``; returns every tree it defines (``name`` included).

    Trees are never mutated after parsing, so results are cached (alert templates re-expand every
    evaluation); the returned dict is a fresh copy."""
    return dict(_parse_cached(name, text, frozenset(functions)))


@functools.lru_cache(maxsize=2048)
def _parse_cached(name: str, text: str, functions: frozenset[str]) -> dict[str, Tree]:
    return Parser(name, text, functions).parse()
