"""`dkw serve --config FILE`: every `dkw serve` option in one TOML file (examples/dkw.toml).

Keys are the flags' names without the dashes (`port = 7443`, `tls-cert = "/etc/dkw/tls.crt"`; `tls_cert`
is read the same). Flags on the command line override the file: the serve parser (`ServeParser`) parses
its arguments once to find `--config`, makes the file's values its defaults, and parses them again. A key
that is no option, or a value of the wrong type, is refused with the key and the file named. Relative
paths in the file are relative to the file's directory, so a file and its certificates can move together.
"""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path
from typing import Any

#: Options that name a file or directory: relative to the config file's directory.
PATH_OPTIONS = {"data", "tls_cert", "tls_key", "tls_client_ca", "clients", "signing_key", "policy"}
#: Options of the command line only.
NOT_IN_FILE = {"config", "check_config", "help", "handler"}


class ConfigError(ValueError):
    """The configuration file cannot be used: one sentence naming the file (and the key)."""


def options_of(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """The parser's options by dest, those a file may set."""
    return {a.dest: a for a in parser._actions if a.option_strings and a.dest not in NOT_IN_FILE}


def load(path: str, parser: argparse.ArgumentParser) -> dict[str, Any]:
    """The file's values by dest, each checked as its flag would check it on the command line."""
    try:
        with open(path, "rb") as f:
            table = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"--config {path}: cannot read it ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"--config {path}: not TOML: {exc}") from None
    options = options_of(parser)
    values = {}
    for key, value in table.items():
        dest = key.replace("-", "_")
        action = options.get(dest)
        if action is None:
            known = ", ".join(sorted(d.replace("_", "-") for d in options))
            raise ConfigError(f"{path}: unknown key {key!r}; the keys are {known}")
        values[dest] = _value(path, key, value, action)
        if dest in PATH_OPTIONS and values[dest] is not None:
            values[dest] = str(Path(path).parent / Path(values[dest]).expanduser())
    return values


def _value(path: str, key: str, value: Any, action: argparse.Action) -> Any:
    """`value` as the flag's own parsing would give it, or ConfigError naming the key."""
    where = f"{path}: {key} = {value!r}"
    if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: must be true or false")
        return value
    if isinstance(value, dict | list | bool):
        raise ConfigError(f"{where}: must be a {'number' if action.type in (int, float) else 'string'}")
    if action.type is None and not isinstance(value, str):
        raise ConfigError(f"{where}: must be a string (in quotes)")
    if action.type is not None:
        if isinstance(value, float) and action.type is int or isinstance(value, str) and action.type in (int, float):
            raise ConfigError(f"{where}: must be {'a whole number' if action.type is int else 'a number'}")
        try:
            value = action.type(str(value))
        except (ValueError, TypeError, argparse.ArgumentTypeError) as exc:
            raise ConfigError(f"{where}: {exc}") from None
    if action.choices is not None and value not in action.choices:
        raise ConfigError(f"{where}: must be one of {', '.join(map(str, action.choices))}")
    return value


class ServeParser(argparse.ArgumentParser):
    """The `dkw serve` parser: arguments parsed once to find --config, the file's values set as defaults,
    then parsed again, so that a flag given on the command line wins over the file."""

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        first, _ = super().parse_known_args(args, None)
        if getattr(first, "config", None):
            try:
                self.set_defaults(**load(first.config, self))
            except ConfigError as exc:
                self.exit(2, f"{self.prog}: {exc}\n")  # one line, without the usage
        return super().parse_known_args(args, namespace)
