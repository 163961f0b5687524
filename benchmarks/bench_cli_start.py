"""How fast the command line starts: ``actionrec --help`` and each ``actionrec CMD --help`` in fresh processes.

Each round runs the reference (``python -c pass``: the interpreter alone) and every command once, in
turn (interleaved, so machine drift hits all alike); prints the median wall time of each, its ratio
to the reference, and whether the process imported torch. Target on 2 cores: ``actionrec --help``
≤ 0.5 s median.

    python benchmarks/bench_cli_start.py --rounds 7
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from actionrec.runtime import host_info

COMMANDS = ["", "predict", "eval", "bench", "serve", "train", "prep flow", "export", "info", "convert", "demo"]
PROBE = ("import sys, runpy; sys.argv = ['actionrec'] + {args!r} + ['--help']\n"
         "try:\n    runpy.run_module('actionrec.cli', run_name='__main__')\n"
         "except SystemExit:\n    pass\n"
         "sys.stderr.write('TORCH=%d' % ('torch' in sys.modules))")


def _run(argv: list[str]) -> tuple[float, str]:
    t = time.perf_counter()
    p = subprocess.run(argv, capture_output=True, text=True, check=False)
    return time.perf_counter() - t, p.stderr


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args(argv)
    exe = sys.executable
    cmds = {"python -c pass (reference)": [exe, "-c", "pass"]}
    for c in COMMANDS:
        cmds[f"actionrec {c} --help".replace("  ", " ")] = [exe, "-c", PROBE.format(args=c.split())]
    times: dict[str, list[float]] = {k: [] for k in cmds}
    torch_loaded: dict[str, bool] = {}
    for _ in range(args.rounds):
        for name, argv_ in cmds.items():
            dt, err = _run(argv_)
            times[name].append(dt)
            torch_loaded[name] = "TORCH=1" in err
    ref = statistics.median(times["python -c pass (reference)"])
    host = host_info()
    print(f"{host['cpu']}, {host['available_cores']} cores; python {host['python']}, torch {host['torch']}; "
          f"{args.rounds} interleaved rounds, medians\n")
    print("| command | median s | min s | max s | / reference | imports torch |")
    print("|---|---|---|---|---|---|")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"| `{name}` | {med:.3f} | {min(ts):.3f} | {max(ts):.3f} | {med / ref:.1f} | "
              f"{'yes' if torch_loaded.get(name) else 'no'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
