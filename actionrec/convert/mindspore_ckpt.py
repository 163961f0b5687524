"""Read MindSpore ``.ckpt`` files with the ``protobuf`` package only (no MindSpore).

The format (MindSpore's public ``checkpoint.proto``, proto2)::

    message Checkpoint { message Value { required string tag = 1;
                                         oneof value { TensorProto tensor = 2; MapTensorProto maptensor = 3; } }
                         repeated Value value = 1; }
    message TensorProto { repeated int64 dims = 1; required string tensor_type = 2; required bytes tensor_content = 3; }

A file is a chain of serialised ``Checkpoint`` messages (parsing the concatenation merges them);
a parameter over the slice size is split, so its tag repeats and its chunks are joined in order.
``crc_check=True`` files end with ``b"crc_num"`` + a 10-byte big-endian CRC-32 of the protobuf bytes.
Files saved with ``enc_key`` are encrypted and refused.
"""

from __future__ import annotations

import binascii
import math
import os
from pathlib import Path

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from actionrec.errors import UsageError

ENCRYPTED_MAGIC = (0x7F3A5ED8).to_bytes(4, "little")  # MindSpore's cipher-block magic number
CRC_MARK = b"crc_num"

_DTYPES = {
    "Float32": np.float32, "Float16": np.float16, "Float64": np.float64,
    "Int8": np.int8, "Int16": np.int16, "Int32": np.int32, "Int64": np.int64,
    "UInt8": np.uint8, "UInt16": np.uint16, "UInt32": np.uint32, "UInt64": np.uint64, "Bool": np.bool_,
}  # fmt: skip


def _checkpoint_class() -> type:
    f = descriptor_pb2.FileDescriptorProto(name="actionrec_mindspore_checkpoint.proto", package="actionrec_ms", syntax="proto2")
    T = descriptor_pb2.FieldDescriptorProto
    tensor = f.message_type.add(name="TensorProto")
    tensor.field.add(name="dims", number=1, label=T.LABEL_REPEATED, type=T.TYPE_INT64)
    tensor.field.add(name="tensor_type", number=2, label=T.LABEL_OPTIONAL, type=T.TYPE_STRING)
    tensor.field.add(name="tensor_content", number=3, label=T.LABEL_OPTIONAL, type=T.TYPE_BYTES)
    maptensor = f.message_type.add(name="MapTensorProto")
    maptensor.field.add(name="tensor", number=1, label=T.LABEL_REPEATED, type=T.TYPE_MESSAGE, type_name=".actionrec_ms.TensorProto")
    ckpt = f.message_type.add(name="Checkpoint")
    value = ckpt.nested_type.add(name="Value")
    value.field.add(name="tag", number=1, label=T.LABEL_OPTIONAL, type=T.TYPE_STRING)
    value.field.add(name="tensor", number=2, label=T.LABEL_OPTIONAL, type=T.TYPE_MESSAGE, type_name=".actionrec_ms.TensorProto")
    value.field.add(name="maptensor", number=3, label=T.LABEL_OPTIONAL, type=T.TYPE_MESSAGE, type_name=".actionrec_ms.MapTensorProto")
    ckpt.field.add(name="value", number=1, label=T.LABEL_REPEATED, type=T.TYPE_MESSAGE, type_name=".actionrec_ms.Checkpoint.Value")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("actionrec_ms.Checkpoint"))


_Checkpoint = _checkpoint_class()


def looks_like_mindspore(head: bytes) -> bool:
    """A protobuf ``Checkpoint``: field 1 (``value``, length-delimited) whose first field is the tag (field 1)."""
    if len(head) < 3 or head[0] != 0x0A:
        return False
    i = 1
    while i < min(len(head), 7) and head[i] & 0x80:  # skip the length varint
        i += 1
    return i + 1 < len(head) and head[i + 1] == 0x0A


def is_encrypted(head: bytes) -> bool:
    return head[:4] == ENCRYPTED_MAGIC


def read_mindspore_ckpt(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """All tensors of a MindSpore ``.ckpt``, in file order, as numpy arrays (name → array).

    Raises :class:`UsageError` naming the file for encrypted, damaged (CRC) or unreadable files.
    """
    path = Path(path)
    data = path.read_bytes()
    if is_encrypted(data):
        raise UsageError(
            f"{path}: an encrypted MindSpore checkpoint (saved with enc_key); decrypt it with MindSpore first "
            "(mindspore.load_checkpoint(..., dec_key=...) then save_checkpoint without enc_key)"
        )
    if data[-17:-10] == CRC_MARK:
        expected, data = int.from_bytes(data[-10:], "big"), data[:-17]
        if binascii.crc32(data) != expected:
            raise UsageError(f"{path}: MindSpore checkpoint fails its CRC check (the file is damaged)")
    msg = _Checkpoint()
    try:
        msg.ParseFromString(data)
    except DecodeError as e:
        raise UsageError(f"{path}: not a readable MindSpore checkpoint ({e})") from e
    chunks: dict[str, list[bytes]] = {}
    spec: dict[str, tuple[str, tuple[int, ...]]] = {}
    for v in msg.value:
        if not v.HasField("tensor"):
            raise UsageError(f"{path}: parameter {v.tag!r} is a MindSpore map tensor, which has no PyTorch equivalent")
        t = v.tensor
        chunks.setdefault(v.tag, []).append(t.tensor_content)
        spec.setdefault(v.tag, (t.tensor_type, tuple(int(d) for d in t.dims)))
    out: dict[str, np.ndarray] = {}
    for tag, parts in chunks.items():
        ttype, dims = spec[tag]
        dtype = _DTYPES.get(ttype)
        if dtype is None:
            raise UsageError(f"{path}: parameter {tag!r} has unsupported tensor type {ttype!r}")
        if any(d < 0 for d in dims):
            raise UsageError(f"{path}: parameter {tag!r} has negative dimensions {list(dims)}")
        raw = b"".join(parts)
        n = math.prod(dims)
        if len(raw) != n * np.dtype(dtype).itemsize:
            raise UsageError(f"{path}: parameter {tag!r}: {len(raw)} bytes for {ttype} of shape {list(dims)}")
        out[tag] = np.frombuffer(raw, dtype=dtype).reshape(dims).copy()
    if not out:
        raise UsageError(f"{path}: MindSpore checkpoint without parameters")
    return out
