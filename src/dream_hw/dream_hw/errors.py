"""User-facing errors: one line on stderr and exit status 2, never a traceback."""
from __future__ import annotations

import functools
import sys
from typing import Callable


class UserError(Exception):
    """A mistake in what the user gave us (file, parameter, bag), not a bug.

    The message names the input and what was expected.
    """


EXIT_BAD_INPUT = 2


def cli_main(func: Callable[..., int | None]) -> Callable[..., int]:
    """Wraps a CLI entry point: UserError -> one line on stderr, exit 2; Ctrl-C -> 130."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs) -> int:
        try:
            return int(func(*args, **kwargs) or 0)
        except UserError as exc:
            prog = getattr(func, "prog", None) or func.__module__.split(".")[0]
            print(f"{prog}: error: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130

    return wrapper
