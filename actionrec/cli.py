"""The ``actionrec`` command line: one parser, subcommands contributed by each area of the package.

Each area (``models``, ``convert``, ``prep``, ``engine``, ``deploy``) has a ``cli.py`` with
``add_parsers(subparsers)``, which adds its subcommands and sets ``func`` to a function taking
the parsed ``argparse.Namespace`` and returning an exit code (or ``None`` for 0).
Errors are printed to stderr as one line: a user error (:class:`~actionrec.errors.ActionrecError`, or an
``OSError`` such as a missing file or a full disk) exits with 2, anything else is a bug and exits with 1
with a hint to rerun with ``--debug``, which shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import typing

AREAS = (
    "actionrec.models.cli",  # info, models
    "actionrec.convert.cli",  # convert
    "actionrec.hub.cli",  # weights list|fetch|import|verify|path
    "actionrec.prep.cli",  # prep frames|flow|lists|synthetic
    "actionrec.engine.cli",  # train, eval, fuse, predict, stream, demo
    "actionrec.deploy.cli",  # export, bench
    "actionrec.serve.cli",  # serve
)


from actionrec.errors import ActionrecError, UsageError
from actionrec.options import float_arg, int_arg  # noqa: F401 - their home is actionrec.options

__all__ = ["main", "build_parser", "int_arg", "float_arg", "UsageError"]

REPORT_HINT = "this is a bug in actionrec: rerun with --debug and report the traceback to the actionrec issue tracker"


class _Parser(argparse.ArgumentParser):
    """Argument errors as one line (not argparse's usage block), exit 2 like every user error."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from actionrec import __version__

    parser = _Parser(prog="actionrec", description="Video action recognition with 3D CNNs.")
    parser.add_argument("--version", action="version", version=f"actionrec {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for area in AREAS:
        importlib.import_module(area).add_parsers(sub)
    return parser


def one_line(e: BaseException) -> str:
    """An exception as one line: multi-line messages (torch, YAML) are cut to their first line."""
    msg = str(e).strip() or type(e).__name__
    if isinstance(e, OSError) and e.filename is not None and str(e.filename) not in msg:
        msg = f"{e.filename}: {msg}"
    first = msg.splitlines()[0]
    return first if len(first) <= 300 else first[:297] + "..."


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.debug else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(message)s" if not args.debug else "%(levelname)s %(name)s: %(message)s")
    try:
        code = args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ActionrecError, OSError) as e:
        if args.debug:
            raise
        print(f"actionrec {args.command}: error: {one_line(e)}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - the CLI's one place to turn errors into messages
        if args.debug:
            raise
        print(f"actionrec {args.command}: internal error: {type(e).__name__}: {one_line(e)} ({REPORT_HINT})", file=sys.stderr)
        return 1
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
