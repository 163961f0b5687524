"""The one registry helper, and every registry built on it: duplicates refused, typos answered with close matches."""

from __future__ import annotations

import sys

import pytest

from actionrec.errors import UsageError
from actionrec.registry import DuplicateNameError, Registry, lazy


def test_registry_order_duplicates_and_close_matches() -> None:
    r: Registry[int] = Registry("colour", hint="see --help")
    r.register("red", 1)

    @r.register("green")
    def green() -> int:
        return 2

    assert r.names() == ["red", "green"] and r.get("green") is green and "red" in r and len(r) == 2
    with pytest.raises(DuplicateNameError, match="colour 'red' is already registered"):
        r.register("red", 3)
    assert r.get("red") == 1  # the first one stays
    with pytest.raises(UsageError, match=r"unknown colour 'gren' \(did you mean 'green'\?\); choose from: red, green; see --help"):
        r.get("gren")
    with pytest.raises(UsageError, match=r"unknown colour 'blue'; choose from"):
        r.get("blue")
    with pytest.raises(DuplicateNameError):
        r.register("", 4)


def test_autoload_and_lazy(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """Built-ins register themselves when the registry is first used; ``lazy`` imports when first called."""
    (tmp_path / "fake_builtins.py").write_text(
        "from tests.test_registry import PLUGINS\nPLUGINS.register('builtin', 1)\ndef double(x):\n    return 2 * x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "fake_builtins", raising=False)
    double = lazy("fake_builtins:double")
    assert "fake_builtins" not in sys.modules  # neither the registry nor lazy() imported it yet
    with pytest.raises(DuplicateNameError, match="plugin 'builtin' is already registered"):
        PLUGINS.register("builtin", 2)  # the built-ins load first: a new entry cannot take their names
    PLUGINS.register("own", 3)
    assert PLUGINS.names() == ["builtin", "own"] and PLUGINS.get("builtin") == 1
    assert double(21) == 42 and double.__name__ == "double"


PLUGINS: Registry[int] = Registry("plugin", autoload=("fake_builtins",))


def test_every_registry_refuses_duplicates() -> None:
    from actionrec.convert.registry import get_converter, register_converter
    from actionrec.data.flow import FLOW_ALGORITHMS, register_flow
    from actionrec.data.formats import FORMATS
    from actionrec.deploy.backends import BACKENDS, register_backend
    from actionrec.models.registry import get_pretrained, register_model, register_pretrained

    def r2plus1d_18() -> None: ...

    with pytest.raises(DuplicateNameError):
        register_model(r2plus1d_18)
    with pytest.raises(DuplicateNameError):
        register_pretrained(get_pretrained("i3d_kinetics400"))
    with pytest.raises(DuplicateNameError):
        register_converter(get_converter("mmaction2"))
    with pytest.raises(DuplicateNameError):
        register_backend(BACKENDS.get("torch"))
    with pytest.raises(DuplicateNameError):
        register_flow("tvl1", batched=False, summary="again")(lambda o: None)
    with pytest.raises(DuplicateNameError):
        FORMATS.register("ucf101", FORMATS.get("ucf101"))
    assert "tvl1" in FLOW_ALGORITHMS


@pytest.mark.parametrize("lookup, typo, match", [
    ("actionrec.models.registry:get_builder", "r2plus1d_81", "did you mean 'r2plus1d_18'"),
    ("actionrec.models.registry:get_pretrained", "i3d_kinetics40", "did you mean 'i3d_kinetics400'"),
    ("actionrec.convert.registry:get_converter", "gluon-cv", "did you mean 'gluoncv'"),
    ("actionrec.deploy.backends:BACKENDS.get", "onnxruntim", "did you mean 'onnxruntime'"),
    ("actionrec.data.flow:make_flow_fn", "tvl1torch", "did you mean 'tvl1-torch'"),
    ("actionrec.data.formats:FORMATS.get", "ucf-101", "did you mean 'ucf101'"),
])
def test_unknown_names_get_close_matches(lookup: str, typo: str, match: str) -> None:
    import importlib

    module, _, attr = lookup.partition(":")
    fn = importlib.import_module(module)
    for part in attr.split("."):
        fn = getattr(fn, part)
    with pytest.raises(UsageError, match=match):
        fn(typo)


def _choices(parser, *path: str) -> list[str]:  # noqa: ANN001
    """The choices of the positional or option ``path[-1]`` under the subcommands ``path[:-1]``."""
    import argparse

    for name in path[:-1]:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return list(next(a for a in parser._actions if path[-1] in (a.dest, *a.option_strings)).choices)


def test_format_names_have_one_owner() -> None:
    from actionrec.cli import build_parser
    from actionrec.config import _CHOICES
    from actionrec.data.formats import FORMATS, format_names, list_kinds

    assert list(_CHOICES["data.format"]) == format_names() == ["list", "csv", "folder", "ucf101", "hmdb51", "kinetics"]
    assert list_kinds() == ["folder", "ucf101", "hmdb51", "kinetics"]  # a list (or CSV) is an input, not something to write
    parser = build_parser()
    assert _choices(parser, "eval", "--format") == format_names()
    assert _choices(parser, "prep", "lists", "kind") == list_kinds()
    assert [FORMATS.get(k).json_file(2) for k in ("ucf101", "hmdb51", "kinetics")] == ["ucf101_02.json", "hmdb51_2.json", "kinetics.json"]


def test_formats_and_model_names_import_without_torch() -> None:
    import subprocess

    code = ("import sys, actionrec.data.formats as f, actionrec.config, actionrec.models, actionrec.convert, actionrec.resources; "
            "f.FORMATS.get('ucf101'); assert 'torch' not in sys.modules, 'torch imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_unknown_format_label_set_and_lists_kind_are_named(tmp_path) -> None:  # noqa: ANN001
    from actionrec.config import ConfigError, load_config
    from actionrec.data.annotations import AnnotationError, load_samples
    from actionrec.prep.lists import build_lists
    from actionrec.resources import class_names

    with pytest.raises(ConfigError, match=r"field 'data.format' must be one of list, csv, folder, .*got 'ucf-101' \(did you mean 'ucf101'\?\)"):
        load_config(None, ["data.format=ucf-101"])
    with pytest.raises(AnnotationError, match=r"unknown dataset format 'hmdb' \(did you mean 'hmdb51'\?\)"):
        load_samples("hmdb", root=str(tmp_path))
    with pytest.raises(AnnotationError, match=r"dataset format 'ucf101' needs annotations"):
        load_samples("ucf101", root=str(tmp_path))
    with pytest.raises(UsageError, match=r"unknown label set 'kinetics700' \(did you mean 'kinetics[46]00' or 'kinetics[46]00'\?\)"):
        class_names("kinetics700")
    with pytest.raises(UsageError, match=r"prep lists: format 'list' is already a list .*choose from folder, ucf101"):
        build_lists("list", tmp_path, tmp_path / "out")
    with pytest.raises(UsageError, match=r"did you mean 'kinetics'"):
        build_lists("kinetic", tmp_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_model_registry_points_to_the_models_command() -> None:
    from actionrec.models.registry import get_builder, list_models

    with pytest.raises(UsageError, match=r"unknown model 'r3d18' \(did you mean 'r3d_18'.*\); choose from: .*`actionrec models` lists them"):
        get_builder("r3d18")
    assert list_models() == sorted(list_models()) and {"i3d", "r2plus1d_18", "r2plus1d_mm_34"} <= set(list_models())
