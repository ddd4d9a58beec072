"""`dkw schema`: the JSON Schema of the auction or the result document."""

from __future__ import annotations

import argparse
import json
import sys

from dkw.cli import EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    from dkw.clearing.schema import SCHEMAS, markdown_tables

    schema = SCHEMAS[args.document]()
    if args.markdown:
        sys.stdout.write(markdown_tables(schema))
    else:
        sys.stdout.write(json.dumps(schema, indent=1, ensure_ascii=False) + "\n")
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("schema", help="print the JSON Schema of the auction or the result document")
    p.add_argument("document", choices=("auction", "result"))
    p.add_argument("--markdown", action="store_true", help="the field tables of docs/auction.md and docs/result.md")
    p.set_defaults(handler=cmd_schema)
