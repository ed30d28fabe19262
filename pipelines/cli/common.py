"""What every `rul` command shares: the user-error type and the one-line error parser."""

from __future__ import annotations

import argparse
import json


class UserError(Exception):
    """A problem the user can fix; the message is shown as is."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        self.exit(2, f"rul: error: {message}\n")


def print_json_or_nothing(rows: list[dict], as_json: bool, nothing: str) -> bool:
    """The listing commands' shared start: JSON when asked, a line when there is nothing;
    True when that answered it (the caller prints its table otherwise)."""
    if as_json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return True
    if not rows:
        print(nothing)
        return True
    return False
