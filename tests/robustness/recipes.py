"""Bad recipes (YAML files and ``--set`` overrides) and bad command-line arguments of train/eval/fuse/demo.

Every case must end in a clean error: exit 2, one line, naming the file or the field (``token``).
The recipes point ``data.root`` at a folder that does not exist, so a recipe that is wrongly accepted
fails later with a ``data.root`` error, which the checks count as a silent wrong result.
"""

from __future__ import annotations

from pathlib import Path

from tests.robustness.crafted import Case

GOOD = "data:\n  format: list\n  train_list: train.txt\n  val_list: val.txt\n  root: {root}\n"

# (name, YAML text appended to / replacing the recipe, token the error must name)
_YAML: list[tuple[str, str, str]] = [
    ("unclosed_list", "model:\n  widths: [1, 2\n", "{file}:"),
    ("bad_indent", "model:\n  arch: r3d_18\n bad: 1\n", "{file}:"),
    ("tab_indent", "model:\n\tarch: r3d_18\n", "{file}:"),
    ("unclosed_quote", "model:\n  arch: 'r3d_18\n", "{file}:"),
    ("duplicate_anchor_alias", "model: *nothing\n", "{file}:"),
    ("top_level_list", "REPLACE- a\n- b\n", "{file}"),
    ("top_level_scalar", "REPLACE42\n", "{file}"),
    ("binary", "REPLACE\udcff\udcfe\x00\x01", "{file}"),
    ("python_tag", "model: !!python/object/apply:os.system ['touch /tmp/actionrec_yaml_ran']\n", "{file}:"),
    ("billion_laughs", "REPLACEa: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                       "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                       "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                       "model:\n  trainable: *f\n", "'a'"),
    ("unknown_section", "optimiser:\n  lr: 0.1\n", "optimiser"),
    ("section_scalar", "optimizer: 3\n", "optimizer"),
    ("deep_nesting", "model:\n  widths: " + "[" * 5000 + "]" * 5000 + "\n", "{file}"),
]

# (override, token): values the trainer must refuse before it starts
_OVERRIDES: list[tuple[str, str]] = [
    ("train.grad_clip=-1", "train.grad_clip"),
    ("train.grad_clip=.nan", "train.grad_clip"),
    ("optimizer.lr=.inf", "optimizer.lr"),
    ("optimizer.lr=.nan", "optimizer.lr"),
    ("optimizer.lr=0", "optimizer.lr"),
    ("optimizer.lr=-0.1", "optimizer.lr"),
    ("optimizer.lr=1e400", "optimizer.lr"),
    ("optimizer.lr=abc", "optimizer.lr"),
    ("optimizer.momentum=1.5", "optimizer.momentum"),
    ("optimizer.weight_decay=-1", "optimizer.weight_decay"),
    ("optimizer.betas=[0.9]", "optimizer.betas"),
    ("optimizer.betas=[0.9, 1.0]", "optimizer.betas"),
    ("optimizer.name=lion", "optimizer.name"),
    ("train.epochs=0", "train.epochs"),
    ("train.epochs=-3", "train.epochs"),
    ("train.epochs=1e9", "train.epochs"),
    ("train.epochs=10000000000000000000000", "train.epochs"),
    ("train.log_every=0", "train.log_every"),
    ("train.accumulate_steps=0", "train.accumulate_steps"),
    ("train.keep_last=0", "train.keep_last"),
    ("train.checkpoint_every=0", "train.checkpoint_every"),
    ("train.label_smoothing=1", "train.label_smoothing"),
    ("train.threads=0", "train.threads"),
    ("train.device=gpu", "train.device"),
    ("train.max_steps_per_epoch=0", "train.max_steps_per_epoch"),
    ("data.batch_size=0", "data.batch_size"),
    ("data.batch_size=-8", "data.batch_size"),
    ("data.num_workers=-2", "data.num_workers"),
    ("data.clip_len=0", "data.clip_len"),
    ("data.clip_len=100000000", "data.clip_len"),
    ("data.frame_stride=0", "data.frame_stride"),
    ("data.crop_size=100000", "data.crop_size"),
    ("data.resize_short=-1", "data.resize_short"),
    ("data.split=0", "data.split"),
    ("data.val_fraction=1.5", "data.val_fraction"),
    ("data.modality=depth", "data.modality"),
    ("data.format=avi", "data.format"),
    ("model.widths=[16, 32, 0, 8]", "model.widths"),
    ("model.widths=[16, 32, 64, 200000]", "model.widths"),
    ("model.widths=[16, 32]", "model.widths"),
    ("model.widths=16", "model.widths"),
    ("model.num_classes=9000000", "model.num_classes"),
    ("model.num_classes=0", "model.num_classes"),
    ("model.dropout=1.0", "model.dropout"),
    ("model.arch=[1, 2]", "model.arch"),
    ("schedule.milestones=[20, 10]", "schedule.milestones"),
    ("schedule.warmup_factor=0", "schedule.warmup_factor"),
    ("schedule.gamma=-1", "schedule.gamma"),
    ("schedule.step_size=0", "schedule.step_size"),
    ("schedule.name=poly", "schedule.name"),
    ("eval.num_clips=0", "eval.num_clips"),
    ("eval.num_crops=2", "eval.num_crops"),
    ("eval.every=-1", "eval.every"),
    ("eval.batch_size=0", "eval.batch_size"),
    ("seed=-1", "seed"),
    ("output_dir=", "output_dir"),
    ("optimizer.lr", "optimizer.lr"),
    ("a..b=1", "a..b"),
    ("data.root.x=1", "data.root"),
    ("data.root=[", "data.root"),
]

# (argv after the subcommand's fixed part, token): bad arguments of train/eval/fuse/demo
_ARGS: list[tuple[str, list[str], str]] = [
    ("eval", ["--clips", "-1"], "--clips"),
    ("eval", ["--clips", "0"], "--clips"),
    ("eval", ["--clips", "x"], "--clips"),
    ("eval", ["--batch-size", "0"], "--batch-size"),
    ("eval", ["--batch-size", "-4"], "--batch-size"),
    ("eval", ["--workers", "-2"], "--workers"),
    ("eval", ["--crops", "2"], "--crops"),
    ("eval", ["--split", "0"], "--split"),
    ("eval", ["--subset", "dev"], "--subset"),
    ("fuse", ["--weights", "1", "-1"], "--weights"),
    ("fuse", ["--weights", "nan", "1"], "--weights"),
    ("fuse", ["--weights", "0", "0"], "weights"),
    ("fuse", ["--weights", "1"], "weights"),
    ("demo", ["--threads", "0"], "--threads"),
    ("demo", ["--threads", "-1"], "--threads"),
    ("train", ["--stop-after-epoch", "0"], "--stop-after-epoch"),
    ("train", ["--resume", "/nonexistent/epoch_0001.safetensors"], "epoch_0001.safetensors"),
]


def config_cases(workdir: Path) -> list[Case]:
    d = workdir / "configs"
    d.mkdir(parents=True, exist_ok=True)
    missing_root = d / "no_such_videos"
    good = GOOD.format(root=missing_root)
    out_dir = str(d / "run")
    cases = []
    for name, text, token in _YAML:
        path = d / f"yaml-{name}.yaml"
        body = text[len("REPLACE"):] if text.startswith("REPLACE") else good + text
        path.write_bytes(body.encode("utf-8", "surrogateescape"))
        cases.append(Case("config_yaml", name, ["train", str(path), "--output-dir", out_dir], True,
                          token=token.format(file=path.name)))
    recipe = d / "recipe.yaml"
    recipe.write_text(good)
    for override, token in _OVERRIDES:
        # --output-dir would override an output_dir override
        out = [] if override.startswith("output_dir") else ["--output-dir", out_dir]
        cases.append(Case("config_value", override, ["train", str(recipe), *out, "--set", override], True, token=token))
    # both --set must apply: the first names another missing root, so the error must be about that one
    other = d / "other_missing"
    cases.append(Case("config_value", "repeated_set", ["train", str(recipe), "--output-dir", out_dir, "--set", f"data.root={other}",
                                                        "--set", "optimizer.lr=0.1"], True, token=f"data.root: no such directory '{other}'"))
    return cases


def arg_cases(workdir: Path) -> list[Case]:
    d = workdir / "args"
    d.mkdir(parents=True, exist_ok=True)
    recipe = d / "recipe.yaml"
    recipe.write_text(GOOD.format(root=d / "no_such_videos"))
    preds = [str(d / "a.npz"), str(d / "b.npz")]
    fixed = {
        "eval": ["eval", str(d / "x.safetensors"), "--root", str(d), "--out", str(d / "eval")],
        "fuse": ["fuse", *preds, "--out", str(d / "fused")],
        "demo": ["demo", "--out", str(d / "demo")],
        "train": ["train", str(recipe), "--output-dir", str(d / "run")],
    }
    return [Case("cli_args", f"{cmd} {' '.join(args)}", fixed[cmd] + args, True, token=token) for cmd, args, token in _ARGS]


def all_config_cases(workdir: Path) -> list[Case]:
    return config_cases(workdir) + arg_cases(workdir)
