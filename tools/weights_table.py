"""Print the weights catalogue as the Markdown table of docs/pretrained.md (run after changing the catalogue).

    python tools/weights_table.py > /tmp/table.md   # then paste it between the markers in docs/pretrained.md
"""

from __future__ import annotations

from actionrec.models.registry import get_pretrained, list_pretrained


def main() -> None:
    print("| name | architecture | from | checked by | size | labels | published top-1 / top-5 | measured on |")
    print("|---|---|---|---|---|---|---|---|")
    for name in list_pretrained():
        w = get_pretrained(name)
        where = f"PyPI `{w.pip_requirement}`" if w.pip_requirement else (f"[{w.source}]({w.urls[0]})" if w.urls else "by hand (no stable URL)")
        check = {"sha256": "SHA-256", "sha256-prefix": "SHA-256 prefix", "sha1": "SHA-1", "git-sha1": "Git blob id"}.get(
            w.digest_algo, "nothing published")
        a = w.accuracy
        acc = "–" if a is None or a.top1 is None else f"{a.top1:g}" + (f" / {a.top5:g}" if a.top5 is not None else "")
        on = "" if a is None else f"{a.dataset}, {a.protocol} ({a.reference})"
        size = f"~{w.size_mb:.0f} MB" if w.size_mb else "?"
        default = " (default)" if w.default else ""
        print(f"| `{name}`{default} | {w.arch} | {where} | {check} | {size} | {w.labels} | {acc} | {on} |")


if __name__ == "__main__":
    main()
