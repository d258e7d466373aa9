"""A small renderer for the subset of Terraform's template language
(templatefile) used by terraform/templates/*.tftpl, so the tests can render
them without a terraform binary:

- interpolations ``${name}``, ``${name.attr}`` and ``${jsonencode(<one of those>)}``;
- ``%{ for x in <name> }`` ... ``%{ endfor }`` and
  ``%{ if <name> }`` ... [``%{ else }`` ...] ``%{ endif }`` on a bool (nestable);
- strip markers ``~``: ``~}`` removes the whitespace after the tag up to and
  including the next newline, ``%{~`` / ``${~`` the whitespace before it back
  to and including the previous newline (HCL's rule).

Anything else raises TemplateError, so a template that grows beyond this
subset fails the tests instead of being rendered wrongly.
"""

from __future__ import annotations

import json
import re

TAG = re.compile(r"(?P<kind>[$%])\{(?P<ltrim>~?)(?P<body>.*?)(?P<rtrim>~?)\}", re.S)
FOR = re.compile(r"^for\s+([A-Za-z_]\w*)\s+in\s+(.+)$")
IF = re.compile(r"^if\s+(.+)$")
END = {"for": "endfor", "if": "endif"}
NAME = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*$")
CALL = re.compile(r"^jsonencode\((.+)\)$")


class TemplateError(Exception):
    pass


def _tokens(text: str) -> list[tuple]:
    out: list[tuple] = []
    pos = 0
    for m in TAG.finditer(text):
        out.append(("text", text[pos : m.start()]))
        out.append((m["kind"], m["body"].strip(), bool(m["ltrim"]), bool(m["rtrim"])))
        pos = m.end()
    out.append(("text", text[pos:]))
    # Apply the strip markers to the neighbouring literals.
    for i, tok in enumerate(out):
        if tok[0] == "text":
            continue
        _, _, ltrim, rtrim = tok
        if ltrim and i > 0:
            prev = out[i - 1][1]
            stripped = prev.rstrip(" \t")
            if stripped.endswith("\n"):
                stripped = stripped[:-1].rstrip(" \t\r")
            out[i - 1] = ("text", stripped)
        if rtrim and i + 1 < len(out):
            nxt = out[i + 1][1]
            stripped = nxt.lstrip(" \t\r")
            if stripped.startswith("\n"):
                stripped = stripped[1:]
            out[i + 1] = ("text", stripped)
    return out


def _lookup(expr: str, scope: dict):
    if not NAME.match(expr):
        raise TemplateError(f"unsupported expression: {expr!r}")
    head, *attrs = expr.split(".")
    if head not in scope:
        raise TemplateError(f"undefined template variable: {head!r}")
    value = scope[head]
    for attr in attrs:
        value = value[attr]
    return value


def _eval(expr: str, scope: dict) -> str:
    m = CALL.match(expr)
    if m:
        # Terraform's jsonencode: compact JSON, non-ASCII kept.
        return json.dumps(_lookup(m[1].strip(), scope), separators=(",", ":"), ensure_ascii=False)
    value = _lookup(expr, scope)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    raise TemplateError(f"cannot interpolate a {type(value).__name__}: {expr!r}")


def _opening(body: str) -> str | None:
    """'for' or 'if' when a directive opens a block, else None."""
    if FOR.match(body):
        return "for"
    if IF.match(body):
        return "if"
    return None


def _block(tokens: list[tuple], i: int, kind: str) -> tuple[int, int | None]:
    """(index of the block's end tag, index of its own `else` or None)."""
    depth, j, other = 1, i + 1, None
    while j < len(tokens):
        if tokens[j][0] == "%":
            body = tokens[j][1]
            if _opening(body):
                depth += 1
            elif body in END.values():
                depth -= 1
                if depth == 0:
                    if body != END[kind]:
                        raise TemplateError(f"{kind} closed by {body}")
                    return j, other
            elif body == "else" and depth == 1 and kind == "if" and other is None:
                other = j
            elif body != "else":
                raise TemplateError(f"unsupported directive: %{{{body}}}")
        j += 1
    raise TemplateError(f"{kind} without {END[kind]}")


def _render(tokens: list[tuple], scope: dict) -> str:
    out: list[str] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok[0] == "text":
            out.append(tok[1])
        elif tok[0] == "$":
            out.append(_eval(tok[1], scope))
        else:
            kind = _opening(tok[1])
            if kind is None:
                raise TemplateError(f"unsupported directive: %{{{tok[1]}}}")
            j, other = _block(tokens, i, kind)
            m = (FOR if kind == "for" else IF).match(tok[1])
            assert m is not None  # _opening matched it
            if kind == "for":
                items = _lookup(m[2].strip(), scope)
                if not isinstance(items, list):
                    raise TemplateError(f"for over a non-list: {m[2]!r}")
                for item in items:
                    out.append(_render(tokens[i + 1 : j], {**scope, m[1]: item}))
            else:
                cond = _lookup(m[1].strip(), scope)
                if not isinstance(cond, bool):
                    raise TemplateError(f"if on a non-bool: {tok[1]!r}")
                then_end = other if other is not None else j
                if cond:
                    out.append(_render(tokens[i + 1 : then_end], scope))
                elif other is not None:
                    out.append(_render(tokens[other + 1 : j], scope))
            i = j
        i += 1
    return "".join(out)


def render(text: str, variables: dict) -> str:
    return _render(_tokens(text), variables)


def referenced_names(text: str) -> set[str]:
    """Top-level names a template reads (minus its loop variables)."""
    names: set[str] = set()
    loops: set[str] = set()
    for tok in _tokens(text):
        if tok[0] == "$":
            m = CALL.match(tok[1])
            names.add((m[1] if m else tok[1]).strip().split(".")[0])
        elif tok[0] == "%":
            m = FOR.match(tok[1])
            if m:
                loops.add(m[1])
                names.add(m[2].strip().split(".")[0])
            m = IF.match(tok[1])
            if m:
                names.add(m[1].strip().split(".")[0])
    return names - loops
