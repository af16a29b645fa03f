"""User-facing errors: one line on stderr and exit status 2, never a traceback."""
from __future__ import annotations

import argparse
import functools
import sys
from typing import Callable


class UserError(Exception):
    """A mistake in what the user gave us (file, parameter, bag), not a bug.

    The message names the input and what was expected.
    """


EXIT_BAD_INPUT = 2


def cli_main(prog: str) -> Callable[[Callable[..., int | None]], Callable[..., int]]:
    """Decorates a CLI entry point: UserError -> one line on stderr, exit 2; Ctrl-C -> 130."""

    def decorate(func: Callable[..., int | None]) -> Callable[..., int]:
        @functools.wraps(func)
        def wrapper(*args, **kwargs) -> int:
            try:
                return int(func(*args, **kwargs) or 0)
            except UserError as exc:
                print(f"{prog}: error: {exc}", file=sys.stderr)
                return EXIT_BAD_INPUT
            except KeyboardInterrupt:
                print(f"{prog}: interrupted", file=sys.stderr)
                return 130

        return wrapper

    return decorate


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line (exit 2), pointing at --help."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")
