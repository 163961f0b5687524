"""The ``actionrec`` command line: one parser, subcommands contributed by each area of the package.

Each area (``models``, ``convert``, ``prep``, ``engine``, ``deploy``) has a ``cli.py`` with
``add_parsers(subparsers)``, which adds its subcommands and sets ``func`` to a function taking
the parsed ``argparse.Namespace`` and returning an exit code (or ``None`` for 0).
Errors are printed to stderr as one line with a non-zero exit; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

AREAS = (
    "actionrec.models.cli",  # info, models
    "actionrec.convert.cli",  # convert
    "actionrec.prep.cli",  # prep frames|flow|lists|synthetic
    "actionrec.engine.cli",  # train, eval, fuse, predict, stream, demo
    "actionrec.deploy.cli",  # export, bench
)


class UsageError(Exception):
    """A user error that the CLI reports without a traceback (exit code 2)."""


def build_parser() -> argparse.ArgumentParser:
    from actionrec import __version__

    parser = argparse.ArgumentParser(prog="actionrec", description="Video action recognition with 3D CNNs.")
    parser.add_argument("--version", action="version", version=f"actionrec {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for area in AREAS:
        importlib.import_module(area).add_parsers(sub)
    return parser


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
    except Exception as e:  # noqa: BLE001 - the CLI's one place to turn errors into messages
        if args.debug:
            raise
        msg = str(e) or type(e).__name__
        print(f"actionrec {args.command}: error: {msg}", file=sys.stderr)
        return 2
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
