"""Reading inputs and writing documents the same way in every command (local and remote): `-` is standard
input or output, a result path is checked before any work, JSON never lossy on a legacy console."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

#: The file name that stands for standard input.
STDIN = "-"


def read_bytes(path: str) -> bytes:
    """A file's bytes, or standard input's for `-`."""
    return sys.stdin.buffer.read() if path == STDIN else Path(path).read_bytes()


def output_path_problem(output: str | None) -> str | None:
    """Why the result could not be written to `output`, checked before solving so no result is lost to
    a typo in a path; None when it can (or goes to stdout)."""
    if output is None or output == STDIN:
        return None
    path = Path(output)
    if path.is_dir():
        return f"{output} is a directory; give a file name (e.g. {path / 'result.json'})"
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        return f"the directory {parent} does not exist"
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return f"{output} is not writable"
    return None


def write_json(doc: dict, output: str | None) -> None:
    """Write a document to a file (UTF-8) or stdout. On a console that cannot show every character
    (cp932 has no `·`), non-ASCII characters are escaped (\\uXXXX): still the same JSON, never lossy."""
    if output is None or output == STDIN:
        encoding = (getattr(sys.stdout, "encoding", None) or "utf-8").lower().replace("_", "-")
        text = json.dumps(doc, indent=1, ensure_ascii=encoding not in ("utf-8", "utf8"))
        sys.stdout.write(text + "\n")
    else:
        Path(output).write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
