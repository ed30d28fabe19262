"""What every `rul` command shares: the user-error type and the one-line error parser."""

from __future__ import annotations

import argparse


class UserError(Exception):
    """A problem the user can fix; the message is shown as is."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        self.exit(2, f"rul: error: {message}\n")
