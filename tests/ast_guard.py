"""One `ast.parse` at a time in a test process, on CPython before 3.12.

Before 3.12 the AST builder keeps its recursion counter in state shared by every thread of the
interpreter, so two threads parsing at once (pytest drawing a failure's source while a server
thread formats a traceback, which 3.11 parses for its carets) make one of them raise
`SystemError: AST constructor recursion depth mismatch`. Raised inside pytest's report hook it
kills the xdist worker with an INTERNALERROR instead of reporting the test's own failure. A lock
(re-entrant: a finalizer may format a traceback mid-parse) serialises the parses; a mismatch
that still happens is retried once, since the parse itself was sound.
"""

from __future__ import annotations

import ast
import sys
import threading
from typing import Any

_parse = ast.parse
_lock = threading.RLock()


def _serial_parse(*args: Any, **kwargs: Any) -> Any:
    with _lock:
        try:
            return _parse(*args, **kwargs)
        except SystemError as exc:
            if "recursion depth mismatch" not in str(exc):
                raise
            return _parse(*args, **kwargs)


if sys.version_info < (3, 12):
    ast.parse = _serial_parse
