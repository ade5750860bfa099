"""JSON from the outside (the rendezvous's sockets, the app's signalling,
a data channel), parsed with a bound on nesting.

``json.loads`` of ``"[" * 100000`` raises ``RecursionError``, which is not a
``ValueError``: an ``except ValueError`` around it lets it through and ends
the task that read it (the app's signalling task did exactly that). Here
both too-deep input and over-deep structures come back as
:class:`MessageError`, a ``ValueError`` with a code, so every reader answers
or drops them like any other malformed message. No message of the product
nests more than a few levels (``iceServers`` is the deepest: three).
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 16


class MessageError(ValueError):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def loads(text: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` that refuses input nested deeper than ``max_depth``."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise MessageError("too-deep", f"the message is nested deeper than {max_depth} levels") from None
    except ValueError:
        raise MessageError("bad-json", "the message is not valid JSON") from None
    if _deeper_than(value, max_depth):
        raise MessageError("too-deep", f"the message is nested deeper than {max_depth} levels")
    return value


def _deeper_than(value: Any, limit: int) -> bool:
    """Iterative, so a deep value cannot exhaust the stack here either."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False
