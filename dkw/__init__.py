"""dkw: the clearing service for Japan's balancing market. This package holds the `dkw` command.

One import name (issue 26): the repository keeps clearing/, solvers/, server/ and bench/ beside dkw/, and
pyproject.toml's package-dir installs them as dkw.clearing, dkw.solvers, dkw.server and dkw.bench (the
wheel holds only dkw/...; the editable install maps the names to these folders). Run from the repository
root, though, Python finds this folder first (the current directory leads sys.path) and its own __path__
has no clearing/ in it; so in a source checkout, and only there (the folders sit beside this one, not in
it, and pyproject.toml marks the root), the root joins __path__ after this folder and dkw.clearing
resolves to ./clearing, the same files the editable install maps. An installed wheel has dkw/clearing/
and is left alone.
"""

from pathlib import Path as _Path

_here = _Path(__file__).resolve().parent
_root = _here.parent
if not (_here / "clearing").is_dir() and (_root / "pyproject.toml").is_file() and all(
        (_root / name / "__init__.py").is_file() for name in ("clearing", "solvers", "server")):
    __path__.append(str(_root))  # noqa: F821 (a package's __path__, set by the import system)
del _Path, _here, _root
