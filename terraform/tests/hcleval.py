"""A small evaluator for the subset of Terraform's expression language that
terraform/*.tf uses in its locals, for_each arguments, preconditions and
variable validations, so the tests can compute what the configuration does
for given variables without a terraform binary, a provider or credentials.

The expressions come from python-hcl2 as text (``"${...}"`` for an
expression, ``'"..."'`` for a quoted template); they are parsed here and
evaluated against:

- ``var``: the variables' defaults, overridden by the test's values, with the
  ``optional(type, default)`` attributes of ``instance_groups`` filled in;
- ``local``: every local, evaluated on first use;
- ``each``: set while evaluating one instance of a ``for_each`` resource;
- resources and data sources: stand-ins whose attributes are placeholder
  strings (``<oci_bastion_bastion.this.private_endpoint_ip_address>``). A
  ``for_each`` resource's instances are the keys of its own ``for_each``,
  evaluated: indexing a key it does not have fails as Terraform's
  "Invalid index" does (a rule naming an NSG that is not created).

Supported: literals, quoted templates with ``${}`` interpolations, lists,
objects, ``for`` expressions (list and object forms, ``if`` filters,
``...`` grouping), attribute and index access, function calls (with ``...``
expansion of the last argument), unary ``!``/``-``, the arithmetic,
comparison and logical operators, and the conditional. Both sides of
``&&``/``||`` are evaluated (HCL did not short-circuit them before 2.22), so
an error in either fails here too; a conditional's errors are its chosen
result's, as in HCL. Anything else (splats, template directives,
heredocs, an unknown function) raises EvalError: a configuration that grows
beyond this subset fails the tests instead of being evaluated wrongly.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml


class EvalError(Exception):
    """What Terraform would report as an error (invalid index, unsupported attribute, ...)."""


# --------------------------------------------------------------------------
# Lexer
# --------------------------------------------------------------------------
PUNCT = ["...", "=>", "==", "!=", "<=", ">=", "&&", "||"] + list("()[]{},.:?=<>!+-*/%")
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
NUMBER = re.compile(r"\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")


def _string_end(src: str, i: int) -> int:
    """Index just past the quoted template starting at src[i] == '"'."""
    j = i + 1
    while j < len(src):
        c = src[j]
        if c == "\\":
            j += 2
        elif c == '"':
            return j + 1
        elif src.startswith("${", j) or src.startswith("%{", j):
            j = _brace_end(src, j + 1)
        else:
            j += 1
    raise EvalError(f"unterminated string in {src!r}")


def _brace_end(src: str, i: int) -> int:
    """Index just past the '}' matching the '{' at src[i], skipping nested strings."""
    depth, j = 0, i
    while j < len(src):
        c = src[j]
        if c == '"':
            j = _string_end(src, j)
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return j + 1
        j += 1
    raise EvalError(f"unbalanced braces in {src!r}")


def _template_parts(body: str) -> list:
    """The literal text and the interpolated expressions of a template's body."""
    parts: list = []
    text, j = "", 0
    escapes = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
    while j < len(body):
        if body.startswith("$${", j) or body.startswith("%%{", j):
            text += body[j + 1 : j + 3]
            j += 3
        elif body.startswith("${", j):
            end = _brace_end(body, j + 1)
            inner = body[j + 2 : end - 1].strip()
            if inner.startswith("~") or inner.endswith("~"):
                raise EvalError(f"strip markers are not supported: {body!r}")
            if text:
                parts.append(text)
            text = ""
            parts.append(_Parser(inner).parse())
            j = end
        elif body.startswith("%{", j):
            raise EvalError(f"template directives are not supported: {body!r}")
        elif body[j] == "\\":
            if body[j + 1] not in escapes:
                raise EvalError(f"unsupported escape in {body!r}")
            text += escapes[body[j + 1]]
            j += 2
        else:
            text += body[j]
            j += 1
    if text:
        parts.append(text)
    return parts


def _tokens(src: str) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    i = 0
    while i < len(src):
        c = src[i]
        if c.isspace():
            i += 1
            continue
        if c == '"':
            end = _string_end(src, i)
            out.append(("str", _template_parts(src[i + 1 : end - 1])))
            i = end
            continue
        if c == "<" and src.startswith("<<", i):
            raise EvalError(f"heredocs are not supported: {src!r}")
        m = NUMBER.match(src, i)
        if m:
            text = m.group(0)
            out.append(("num", float(text) if any(ch in text for ch in ".eE") else int(text)))
            i = m.end()
            continue
        m = IDENT.match(src, i)
        if m:
            out.append(("id", m.group(0)))
            i = m.end()
            continue
        for p in PUNCT:
            if src.startswith(p, i):
                out.append(("op", p))
                i += len(p)
                break
        else:
            raise EvalError(f"unexpected {c!r} in {src!r}")
    out.append(("end", None))
    return out


# --------------------------------------------------------------------------
# Parser: a precedence climber producing tuples
# --------------------------------------------------------------------------
BINARY = [["||"], ["&&"], ["==", "!="], ["<", "<=", ">", ">="], ["+", "-"], ["*", "/", "%"]]


class _Parser:
    def __init__(self, src: str):
        self.src = src
        self.toks = _tokens(src)
        self.pos = 0

    def parse(self):
        node = self.expr()
        if self.peek() != ("end", None):
            raise EvalError(f"unexpected {self.peek()[1]!r} in {self.src!r}")
        return node

    # helpers
    def peek(self, ahead: int = 0):
        return self.toks[self.pos + ahead]

    def next(self):
        tok = self.toks[self.pos]
        self.pos += 1
        return tok

    def accept(self, op: str) -> bool:
        if self.peek() == ("op", op):
            self.pos += 1
            return True
        return False

    def expect(self, op: str):
        if not self.accept(op):
            raise EvalError(f"expected {op!r}, got {self.peek()[1]!r} in {self.src!r}")

    def at_keyword(self, word: str) -> bool:
        return self.peek() == ("id", word)

    # grammar
    def expr(self):
        cond = self.binary(0)
        if self.accept("?"):
            then = self.expr()
            self.expect(":")
            other = self.expr()
            return ("cond", cond, then, other)
        return cond

    def binary(self, level: int):
        if level == len(BINARY):
            return self.unary()
        left = self.binary(level + 1)
        while self.peek()[0] == "op" and self.peek()[1] in BINARY[level]:
            op = self.next()[1]
            left = ("bin", op, left, self.binary(level + 1))
        return left

    def unary(self):
        if self.accept("!"):
            return ("not", self.unary())
        if self.accept("-"):
            return ("neg", self.unary())
        return self.postfix(self.primary())

    def postfix(self, node):
        while True:
            if self.accept("."):
                kind, value = self.next()
                if kind == "id":
                    node = ("attr", node, value)
                elif kind == "num" and isinstance(value, int):
                    node = ("index", node, ("lit", value))
                else:
                    raise EvalError(f"unsupported attribute access in {self.src!r}")
            elif self.peek() == ("op", "["):
                if self.peek(1) == ("op", "*"):
                    raise EvalError(f"splat expressions are not supported: {self.src!r}")
                self.next()
                key = self.expr()
                self.expect("]")
                node = ("index", node, key)
            else:
                return node

    def primary(self):
        kind, value = self.next()
        if kind == "num":
            return ("lit", value)
        if kind == "str":
            return ("tmpl", value)
        if kind == "id":
            if value in ("true", "false"):
                return ("lit", value == "true")
            if value == "null":
                return ("lit", None)
            if self.accept("("):
                return self.call(value)
            return ("name", value)
        if (kind, value) == ("op", "("):
            node = self.expr()
            self.expect(")")
            return node
        if (kind, value) == ("op", "["):
            if self.at_keyword("for"):
                return self.for_expr("]")
            items = []
            while not self.accept("]"):
                items.append(self.expr())
                if not self.accept(","):
                    self.expect("]")
                    break
            return ("list", items)
        if (kind, value) == ("op", "{"):
            if self.at_keyword("for"):
                return self.for_expr("}")
            return self.object()
        raise EvalError(f"unexpected {value!r} in {self.src!r}")

    def call(self, name: str):
        args, expand = [], False
        while not self.accept(")"):
            args.append(self.expr())
            if self.accept("..."):
                expand = True
                self.expect(")")
                break
            if not self.accept(","):
                self.expect(")")
                break
        return ("call", name, args, expand)

    def object(self):
        items = []
        while not self.accept("}"):
            if self.peek()[0] == "id" and self.peek(1) in (("op", "="), ("op", ":")):
                key = ("lit", self.next()[1])
            else:
                key = self.expr()
            if not (self.accept("=") or self.accept(":")):
                raise EvalError(f"expected '=' in an object in {self.src!r}")
            items.append((key, self.expr()))
            self.accept(",")
        return ("obj", items)

    def for_expr(self, close: str):
        self.next()  # for
        names = [self.next()[1]]
        if self.accept(","):
            names.append(self.next()[1])
        if not self.at_keyword("in"):
            raise EvalError(f"expected 'in' in {self.src!r}")
        self.next()
        coll = self.expr()
        self.expect(":")
        first = self.expr()
        value, grouping = None, False
        if close == "}":
            self.expect("=>")
            value = self.expr()
            grouping = self.accept("...")
        cond = None
        if self.at_keyword("if"):
            self.next()
            cond = self.expr()
        self.expect(close)
        return ("for", close, names, coll, first, value, grouping, cond)


def parse(text: str):
    """The AST of an expression as python-hcl2 gives it ("${expr}" or '"template"')."""
    text = text.strip()
    if text.startswith("${") and _brace_end(text, 1) == len(text):
        return _Parser(text[2:-1]).parse()
    return _Parser(text).parse()


# --------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------
def _str(value) -> str:
    """A value converted to a string as a template interpolation does."""
    if value is None:
        raise EvalError("null value in a string template")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (int, float, str)):
        return str(value)
    raise EvalError(f"cannot convert a {type(value).__name__} to a string")


def _num(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise EvalError(f"a number is required, got {value!r}")
    return value


def _items(coll):
    """(key, value) pairs of a collection as a for expression iterates it."""
    if isinstance(coll, Mapping):
        return [(k, coll[k]) for k in sorted(coll)]
    if isinstance(coll, (list, tuple)):
        return list(enumerate(coll))
    raise EvalError(f"cannot iterate over {coll!r}")


def _index(obj, key):
    if isinstance(obj, Placeholder):
        return Placeholder(f"{obj.path}[{_str(key)}]")
    if isinstance(obj, Mapping):
        if not isinstance(key, str) or key not in obj:
            raise EvalError(f"invalid index: {key!r} is not a key of the map (keys: {sorted(obj)})")
        return obj[key]
    if isinstance(obj, (list, tuple)):
        if isinstance(key, float) and key.is_integer():
            key = int(key)
        if isinstance(key, bool) or not isinstance(key, int) or not 0 <= key < len(obj):
            raise EvalError(f"invalid index {key!r} of a list of {len(obj)}")
        return obj[key]
    raise EvalError(f"cannot index {obj!r}")


def _set(values) -> list:
    """A Terraform set of primitives, as a sorted list (iteration order of a set of strings)."""
    out = []
    for v in values:
        if v not in out:
            out.append(v)
    return sorted(out, key=lambda v: (str(type(v)), v))


def _format(fmt: str, *args) -> str:
    args_iter = iter(args)

    def repl(m):
        if m.group(0) == "%%":
            return "%"
        value = next(args_iter)
        return _str(value) if m.group(1) == "s" else str(int(_num(value)))

    return re.sub(r"%([sd])|%%", repl, fmt)


def _flatten(value):
    out: list = []
    for v in value:
        out.extend(_flatten(v) if isinstance(v, (list, tuple)) else [v])
    return out


def _merge(*maps):
    out: dict = {}
    for m in maps:
        if m is None:
            continue
        if not isinstance(m, Mapping):
            raise EvalError(f"merge of a non-map {m!r}")
        out.update(m)
    return out


def _replace(string: str, old: str, new: str) -> str:
    """Terraform's replace: a substring, or a regular expression written /.../
    (whose $1 references become Python's)."""
    if len(old) > 1 and old.startswith("/") and old.endswith("/"):
        return re.sub(old[1:-1], re.sub(r"\$(\d+)", r"\\\1", new), string)
    return string.replace(old, new)


def _one(value):
    if len(value) > 1:
        raise EvalError("one() of a collection of more than one element")
    return value[0] if value else None


def _coalesce(*values):
    for v in values:
        if v is not None and v != "":
            return v
    raise EvalError("coalesce: no non-null argument")


def _regex(pattern: str, string: str):
    """Terraform's regex(): the first match (the matched text without capture
    groups, else the groups: a list, or a map when they are named); no match is
    an error, as there (can(regex(...)) is then false). Python's re stands in
    for RE2: the same for the character classes and anchors the .tf files use."""
    if not isinstance(pattern, str) or not isinstance(string, str):
        raise EvalError(f"regex: needs two strings, got {pattern!r}, {string!r}")
    m = re.search(pattern, string)
    if m is None:
        raise EvalError(f"regex: {pattern!r} does not match {string!r}")
    if m.re.groupindex:
        return m.groupdict()
    return list(m.groups()) if m.re.groups else m.group(0)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "alltrue": lambda xs: all(xs),
    "anytrue": lambda xs: any(xs),
    "coalesce": _coalesce,
    "concat": lambda *ls: [x for lst in ls for x in lst],
    "contains": lambda coll, v: v in coll,
    "distinct": lambda xs: [x for i, x in enumerate(xs) if x not in xs[:i]],
    "endswith": lambda s, suffix: s.endswith(suffix),
    "file": lambda path: Path(path).read_text(encoding="utf-8"),
    "flatten": _flatten,
    "floor": lambda n: math.floor(_num(n)),
    "format": _format,
    "join": lambda sep, xs: sep.join(_str(x) for x in xs),
    "keys": lambda m: sorted(m),
    "length": lambda v: len(v),
    "lookup": lambda m, k, *default: m[k] if k in m else (default[0] if default else _index(m, k)),
    "merge": _merge,
    "one": _one,
    "range": lambda *a: list(range(*(int(_num(x)) for x in a))),
    "regex": _regex,
    "replace": _replace,
    "setproduct": lambda *sets: [list(t) for t in itertools.product(*sets)],
    "setsubtract": lambda a, b: _set(x for x in a if x not in b),
    "sort": lambda xs: sorted(_str(x) for x in xs),
    "sum": lambda xs: sum(_num(x) for x in xs),
    "toset": _set,
    "tostring": _str,
    "values": lambda m: [m[k] for k in sorted(m)],
    "yamldecode": yaml.safe_load,
}


class Scope(Mapping):
    """A read-only mapping whose missing keys are an EvalError, as in Terraform."""

    def __init__(self, data: Mapping, what: str):
        self._data, self._what = data, what

    def __getitem__(self, key):
        if key not in self._data:
            raise EvalError(f"{self._what}: no {key!r}")
        return self._data[key]

    def __contains__(self, key):
        return key in self._data

    def __iter__(self):
        return iter(self._data)

    def __len__(self):
        return len(self._data)


class Placeholder(str):
    """A value known only after apply (a resource's or data source's
    attribute): the string "<path>", whose attributes and elements are
    placeholders too ("<oci_bastion_bastion.this.private_endpoint_ip_address>")."""

    path: str

    def __new__(cls, path: str):
        obj = super().__new__(cls, f"<{path}>")
        obj.path = path
        return obj


def evaluate(node, scope: Mapping):
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind == "tmpl":
        parts = node[1]
        # A template of one interpolation alone is that value, unconverted.
        if len(parts) == 1 and isinstance(parts[0], tuple):
            return evaluate(parts[0], scope)
        return "".join(p if isinstance(p, str) else _str(evaluate(p, scope)) for p in parts)
    if kind == "name":
        if node[1] not in scope:
            raise EvalError(f"unknown name {node[1]!r}")
        return scope[node[1]]
    if kind == "attr":
        obj = evaluate(node[1], scope)
        if isinstance(obj, Placeholder):
            return Placeholder(f"{obj.path}.{node[2]}")
        if not isinstance(obj, Mapping):
            raise EvalError(f"unsupported attribute {node[2]!r} of {obj!r}")
        if node[2] not in obj:
            raise EvalError(f"unsupported attribute {node[2]!r} (has {sorted(obj)})")
        return obj[node[2]]
    if kind == "index":
        return _index(evaluate(node[1], scope), evaluate(node[2], scope))
    if kind == "list":
        return [evaluate(item, scope) for item in node[1]]
    if kind == "obj":
        return {_str(evaluate(k, scope)): evaluate(v, scope) for k, v in node[1]}
    if kind == "not":
        value = evaluate(node[1], scope)
        if not isinstance(value, bool):
            raise EvalError(f"! of a non-bool {value!r}")
        return not value
    if kind == "neg":
        return -_num(evaluate(node[1], scope))
    if kind == "bin":
        return _binary(node[1], evaluate(node[2], scope), evaluate(node[3], scope))
    if kind == "cond":
        cond = evaluate(node[1], scope)
        if not isinstance(cond, bool):
            raise EvalError(f"condition is not a bool: {cond!r}")
        # HCL reports the errors of the chosen result only.
        return evaluate(node[2] if cond else node[3], scope)
    if kind == "call":
        return _call(node[1], node[2], node[3], scope)
    if kind == "for":
        return _for(node, scope)
    raise EvalError(f"unsupported node {kind}")


def _binary(op, a, b):
    if op == "==":
        # Terraform compares types too: 1 == true is false (Python says True).
        return isinstance(a, bool) == isinstance(b, bool) and a == b
    if op == "!=":
        return not _binary("==", a, b)
    if op in ("&&", "||"):
        if not isinstance(a, bool) or not isinstance(b, bool):
            raise EvalError(f"{op} of non-bools {a!r}, {b!r}")
        return (a and b) if op == "&&" else (a or b)
    a, b = _num(a), _num(b)
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return a / b
    if op == "%":
        return a % b
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


def _call(name, args, expand, scope):
    if name in ("try", "can"):
        for arg in args:
            try:
                value = evaluate(arg, scope)
            except EvalError:
                if name == "can":
                    return False
                continue
            return True if name == "can" else value
        if name == "can":
            return False
        raise EvalError("try: no argument could be evaluated")
    if name not in FUNCTIONS:
        raise EvalError(f"function {name}() is not supported by this evaluator")
    values = [evaluate(a, scope) for a in args]
    if expand:
        values = values[:-1] + list(values[-1])
    try:
        return FUNCTIONS[name](*values)
    except EvalError:
        raise
    except (TypeError, KeyError, IndexError, AttributeError, ValueError) as exc:
        raise EvalError(f"{name}(): {exc}") from exc


def _for(node, scope):
    _, close, names, coll_node, first, value, grouping, cond = node
    coll = evaluate(coll_node, scope)
    out_list: list = []
    out_map: dict = {}
    for key, item in _items(coll):
        if len(names) == 1:
            local = {names[0]: item}
        else:
            local = {names[0]: key, names[1]: item}
        inner = _Chain(local, scope)
        if cond is not None:
            keep = evaluate(cond, inner)
            if not isinstance(keep, bool):
                raise EvalError(f"for filter is not a bool: {keep!r}")
            if not keep:
                continue
        if close == "]":
            out_list.append(evaluate(first, inner))
            continue
        k = _str(evaluate(first, inner))
        v = evaluate(value, inner)
        if grouping:
            out_map.setdefault(k, []).append(v)
        elif k in out_map:
            raise EvalError(f"duplicate object key {k!r} in a for expression")
        else:
            out_map[k] = v
    return out_list if close == "]" else out_map


class _Chain(Mapping):
    def __init__(self, first: Mapping, rest: Mapping):
        self.first, self.rest = first, rest

    def __getitem__(self, key):
        return self.first[key] if key in self.first else self.rest[key]

    def __contains__(self, key):
        return key in self.first or key in self.rest

    def __iter__(self):
        return iter({**dict.fromkeys(self.rest), **dict.fromkeys(self.first)})

    def __len__(self):
        return len(list(iter(self)))


def value_of(raw, scope: Mapping):
    """Evaluate what python-hcl2 gives for an argument: an expression string,
    or a literal list/dict/number/bool (whose strings may be expressions)."""
    if isinstance(raw, str):
        return evaluate(parse(raw), scope)
    if isinstance(raw, list):
        return [value_of(v, scope) for v in raw]
    if isinstance(raw, dict):
        return {_key(k, scope): value_of(v, scope) for k, v in raw.items() if not k.startswith("__")}
    return raw


def _key(key: str, scope: Mapping) -> str:
    """A map key: a name, a quoted string, or an expression (interpolated or in parentheses)."""
    if "${" in key or key.startswith("("):
        return _str(evaluate(parse(key), scope))
    return _unquote(key)


def _unquote(key: str) -> str:
    return key[1:-1] if len(key) >= 2 and key[0] == key[-1] == '"' else key


# --------------------------------------------------------------------------
# A configuration with given variables
# --------------------------------------------------------------------------
class _Locals(Mapping):
    def __init__(self, model: Model):
        self.model = model
        self.cache: dict = {}
        self.busy: set[str] = set()

    def __getitem__(self, name):
        if name in self.cache:
            return self.cache[name]
        exprs = self.model.tf.locals()
        if name not in exprs:
            raise EvalError(f"no local {name!r}")
        if name in self.busy:
            raise EvalError(f"local {name!r} refers to itself")
        self.busy.add(name)
        try:
            self.cache[name] = value_of(exprs[name], self.model.scope())
        finally:
            self.busy.discard(name)
        return self.cache[name]

    def __iter__(self):
        return iter(self.model.tf.locals())

    def __len__(self):
        return len(self.model.tf.locals())


class _Resources(Mapping):
    """<type> -> <name> -> an instance, or {key: instance} for a for_each resource."""

    def __init__(self, model: Model, rtype: str, data: bool = False):
        self.model, self.rtype, self.data = model, rtype, data

    def __getitem__(self, name):
        bodies = self.model.tf.data(self.rtype) if self.data else self.model.tf.resources(self.rtype)
        body = bodies.get(name) if self.data else bodies.get((self.rtype, name))
        prefix = ("data." if self.data else "") + f"{self.rtype}.{name}"
        if body is None:
            raise EvalError(f"no {prefix} in the configuration")
        if "for_each" in body:
            keys = self.model.for_each(body)
            return {k: Placeholder(f"{prefix}[{k}]") for k in keys}
        if "count" in body:
            n = value_of(body["count"], self.model.scope())
            return [Placeholder(f"{prefix}[{i}]") for i in range(n)]
        return Placeholder(prefix)

    def __iter__(self):
        return iter(())

    def __len__(self):
        return 0


# Left out of an evaluated resource instance (Model.instances).
META_ARGUMENTS = ("for_each", "count", "lifecycle", "depends_on", "provider", "dynamic")


class Model:
    """terraform/*.tf (a conftest.Config) evaluated with the given variables."""

    def __init__(self, tf, tf_dir: Path, locals_: Mapping | None = None, **variables):
        """LOCALS_ replaces some locals by values (e.g. another topology)."""
        self.tf, self.tf_dir = tf, tf_dir
        declared = tf.variables()
        unknown = set(variables) - set(declared)
        if unknown:
            raise EvalError(f"undeclared variables {sorted(unknown)}")
        values = {}
        for name, body in declared.items():
            if name in variables:
                values[name] = variables[name]
            elif "default" in body:
                values[name] = value_of(body["default"], {})
        values["instance_groups"] = self._with_optional_attributes(declared, values["instance_groups"])
        self.vars = Scope(values, "var")
        self.locals = _Locals(self)
        self.locals.cache.update(locals_ or {})

    @staticmethod
    def _with_optional_attributes(declared, groups):
        """instance_groups with its type's optional(type, default) attributes filled in."""
        optional = {
            attr: _unquote(value) if value.startswith('"') else int(value)
            for attr, value in re.findall(
                r'(\w+) = optional\(\w+, ("[^"]*"|\d+)\)', declared["instance_groups"]["type"]
            )
        }
        return {group: {**optional, **spec} for group, spec in groups.items()}

    def scope(self, each: Mapping | None = None) -> Mapping:
        class _Root(Mapping):
            def __getitem__(inner, name):
                if name == "var":
                    return self.vars
                if name == "local":
                    return self.locals
                if name == "each":
                    if each is None:
                        raise EvalError("each outside a for_each resource")
                    return each
                if name == "path":
                    return {"module": str(self.tf_dir)}
                if name == "data":
                    return _DataSources(self)
                if "_" in name:
                    return Scope(_ResourceNames(self, name), name)
                raise EvalError(f"unknown name {name!r}")

            def __contains__(inner, name):
                try:
                    inner[name]
                except EvalError:
                    return False
                return True

            def __iter__(inner):
                return iter(())

            def __len__(inner):
                return 0

        return _Root()

    def local(self, name: str):
        return self.locals[name]

    def for_each(self, body) -> dict:
        """A for_each argument as a map of instance keys to each.value."""
        value = value_of(body["for_each"], self.scope())
        if isinstance(value, Mapping):
            return dict(value)
        return {v: v for v in value}

    def resource(self, rtype: str, name: str):
        return self.tf.resources(rtype)[(rtype, name)]

    def instances(self, rtype: str, name: str) -> dict:
        """{key: {argument: value}} of a for_each resource, each argument evaluated
        (nested blocks as python-hcl2 gives them, evaluated too; dynamic blocks
        and the meta-arguments are left out)."""
        body = self.resource(rtype, name)
        out = {}
        for key, value in self.for_each(body).items():
            scope = self.scope({"key": key, "value": value})
            out[key] = {
                arg: value_of(raw, scope)
                for arg, raw in body.items()
                if arg not in META_ARGUMENTS and not arg.startswith("__")
            }
        return out

    def failed_preconditions(self, rtype: str, name: str) -> list[str]:
        """The error messages of the resource's preconditions that fail, for
        any of its instances (each message once)."""
        body = self.resource(rtype, name)
        scopes = (
            [self.scope({"key": k, "value": v}) for k, v in self.for_each(body).items()]
            if "for_each" in body
            else [self.scope()]
        )
        messages: list[str] = []
        for lifecycle in body.get("lifecycle", []):
            for pre in lifecycle.get("precondition", []):
                for scope in scopes:
                    ok = value_of(pre["condition"], scope)
                    if not isinstance(ok, bool):
                        raise EvalError(f"precondition is not a bool: {pre['condition']}")
                    if not ok:
                        message = value_of(pre["error_message"], scope)
                        if message not in messages:
                            messages.append(message)
        return messages

    def failed_validations(self, variable: str) -> list[str]:
        messages = []
        for validation in self.tf.variables()[variable].get("validation", []):
            if value_of(validation["condition"], self.scope()) is not True:
                messages.append(value_of(validation["error_message"], self.scope()))
        return messages


class _ResourceNames(Mapping):
    def __init__(self, model: Model, rtype: str):
        self.model, self.rtype = model, rtype

    def __getitem__(self, name):
        return _Resources(self.model, self.rtype)[name]

    def __contains__(self, name):
        return (self.rtype, name) in self.model.tf.resources(self.rtype)

    def __iter__(self):
        return iter(n for _, n in self.model.tf.resources(self.rtype))

    def __len__(self):
        return len(self.model.tf.resources(self.rtype))


class _DataSources(Mapping):
    def __init__(self, model: Model):
        self.model = model

    def __getitem__(self, dtype):
        return Scope(_DataNames(self.model, dtype), f"data.{dtype}")

    def __iter__(self):
        return iter(())

    def __len__(self):
        return 0


class _DataNames(Mapping):
    def __init__(self, model: Model, dtype: str):
        self.model, self.dtype = model, dtype

    def __getitem__(self, name):
        return _Resources(self.model, self.dtype, data=True)[name]

    def __contains__(self, name):
        return name in self.model.tf.data(self.dtype)

    def __iter__(self):
        return iter(self.model.tf.data(self.dtype))

    def __len__(self):
        return len(self.model.tf.data(self.dtype))
