"""Print the weights catalogue as the Markdown of docs/pretrained.md (run after changing the catalogue or the benchmarks).

    python tools/weights_table.py > /tmp/table.md      # the catalogue table: paste it between its markers
    python tools/weights_table.py --cards benchmarks/results/cpu_inference_*.json > /tmp/cards.md   # the model cards

A card gives, per weight set: parameters and GFLOPs at the weight set's own input (counted on the meta device, 2 FLOPs
per multiply-add), the published accuracy with its source, and the CPU clips/s measured by
``benchmarks/bench_cpu_inference.py`` (the JSON files given; the architecture at its builder's input).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from actionrec.models.registry import PretrainedCfg, get_pretrained, list_pretrained


def _published(w: PretrainedCfg) -> tuple[str, str]:
    a = w.accuracy
    acc = "–" if a is None or a.top1 is None else f"{a.top1:g}" + (f" / {a.top5:g}" if a.top5 is not None else "")
    on = "" if a is None else f"{a.dataset}, {a.protocol} ({a.reference})"
    return acc, on


def table() -> None:
    print("| name | architecture | from | checked by | size | labels | published top-1 / top-5 | measured on |")
    print("|---|---|---|---|---|---|---|---|")
    for name in list_pretrained():
        w = get_pretrained(name)
        where = f"PyPI `{w.pip_requirement}`" if w.pip_requirement else (f"[{w.source}]({w.urls[0]})" if w.urls else "by hand (no stable URL)")
        check = {"sha256": "SHA-256", "sha256-prefix": "SHA-256 prefix", "sha1": "SHA-1", "git-sha1": "Git blob id"}.get(
            w.digest_algo, "nothing published")
        acc, on = _published(w)
        size = f"~{w.size_mb:.0f} MB" if w.size_mb else "?"
        default = " (default)" if w.default else ""
        print(f"| `{name}`{default} | {w.arch} | {where} | {check} | {size} | {w.labels} | {acc} | {on} |")


def _bench_rows(paths: list[Path]) -> tuple[dict[str, list[dict]], list[str]]:
    """Rows of bench_cpu_inference JSON files by model, and one line per file naming its host and settings."""
    rows: dict[str, list[dict]] = {}
    hosts = []
    for p in paths:
        rec = json.loads(p.read_text())
        a = rec["args"]
        hosts.append(f"`{p.name}`: {rec['cpu']}, {a['threads']} threads, batch {a['batch']}, median of {a['rounds']} interleaved rounds")
        for r in rec["rows"]:
            r = {**r, "file": p.name, "input": rec.get("inputs", {}).get(r["model"])}
            rows.setdefault(r["model"], []).append(r)
    return rows, hosts


def _speed(rows: list[dict], in_channels: int) -> str:
    by = {r["variant"]: r for r in rows}
    eager = by.get("eager")
    ours = [r for r in rows if not r["variant"].startswith("openvino")]
    best = max(ours, key=lambda r: r["clips_per_s"])
    text = f"eager {eager['clips_per_s']:.2f}, best {best['clips_per_s']:.2f} ({best['variant']})" if eager else ""
    ov = [r for r in rows if r["variant"].startswith("openvino")]
    if ov:
        text += "; " + ", ".join(f"{r['variant']} {r['clips_per_s']:.2f}" for r in ov)
    inp = rows[0].get("input")
    if not inp:
        return text + f" clips/s (`{rows[0]['file']}`)"
    other = f", the {inp[0]}-channel network" if inp[0] != in_channels else ""
    return text + f" clips/s at {inp[1]}×{inp[2]}²{other} (`{rows[0]['file']}`)"


def cards(bench: list[Path]) -> None:
    import torch

    from actionrec.factory import create_model
    from actionrec.models.flops import count_flops

    rows, hosts = _bench_rows(bench)
    print("Measured on: " + "; ".join(hosts) + ".\n" if hosts else "No CPU figures given.\n")
    for name in list_pretrained():
        w = get_pretrained(name)
        with torch.device("meta"):  # shapes only: no weights initialised
            model = create_model(w.arch, num_classes=400, **({"in_channels": 2} if "flow" in w.tag else {}))  # as converted
        pre = model.meta.preprocess.override(arch=w.arch, warn=False, **w.preprocess)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        gflop = count_flops(model, (1, model.meta.in_channels, pre.clip_len, pre.crop_size, pre.crop_size)) / 1e9
        acc, on = _published(w)
        print(f"### `{name}`{' (default)' if w.default else ''}\n")
        print(f"- **Model**: {w.description}. `{w.arch}`, {params:.2f} M parameters, {w.labels} labels; license: {w.license or 'not stated'}.")
        print(f"- **Input**: {pre.clip_len} frames every {pre.frame_stride}, short side {pre.resize_short}, centre crop "
              f"{pre.crop_size}²{', optical flow (2 channels)' if model.meta.in_channels == 2 else ''}; **{gflop:.2f} GFLOPs** per view.")
        print(f"- **Published**: top-1 / top-5 {acc}: {on}.")
        measured = rows.get(w.arch)
        print(f"- **CPU**: {_speed(measured, model.meta.in_channels)}." if measured else
              f"- **CPU**: not in the benchmark files; `python benchmarks/bench_cpu_inference.py --models {w.arch}` measures it.")
        print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cards", nargs="*", type=Path, metavar="BENCH_JSON", help="print the model cards instead of the table")
    args = ap.parse_args()
    if args.cards is None:
        table()
    else:
        cards(args.cards)


if __name__ == "__main__":
    main()
