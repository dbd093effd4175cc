"""A run's configuration from its log: argparse's `Namespace(...)` repr or a `{...}` config line.
The repr is not trustworthy source (`<function ...>`, `cpu(0)`, cut-off lines), so it is split at
top-level commas and each value read with `ast.literal_eval` where it is a literal, else kept."""
import ast
import json

_OPEN = {"(": ")", "[": "]", "{": "}", "<": ">"}
_CLOSE = {v: k for k, v in _OPEN.items()}


def split_top_level(text):
    """`text` split at commas outside quotes and brackets, and whether it ended inside one."""
    parts, current, stack, quote, escaped = [], [], [], None, False
    for char in text:
        if quote:
            current.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = None
            continue
        if char in ("'", '"'):
            quote = char
        elif char in _OPEN:
            stack.append(char)
        elif char in _CLOSE and stack and stack[-1] == _CLOSE[char]:
            stack.pop()
        elif char == "," and not stack:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()], bool(quote or stack)


def literal_or_text(text):
    """`text` as a Python literal when it is one (numbers, strings, None, lists), else as is."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def parse_namespace(text):
    """The dict of a `Namespace(...)` repr in `text` (its complete items if cut off), or None."""
    start = text.find("Namespace(")
    if start < 0:
        return None
    body = text[start + len("Namespace("):].rstrip()
    closed = body.endswith(")")
    if closed:
        body = body[:-1]
    items, unbalanced = split_top_level(body)
    if (unbalanced or not closed) and items:
        items = items[:-1]  # the last item was cut off with the line
    config = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if sep and key.isidentifier():
            config[key] = literal_or_text(value.strip())
    return config


def parse_config_object(text):
    """The dict of a `{...}` config line (JSON or a dict repr) that names a model, or None."""
    start = text.find("{")
    if start < 0 or not text.rstrip().endswith("}"):
        return None
    body = text[start:].strip()
    for reader in (json.loads, ast.literal_eval):
        try:
            value = reader(body)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        if isinstance(value, dict) and "model" in value:
            return {str(k): v for k, v in value.items()}
    return None
