"""DeepMind's real I3D weights, converted, reproduce DeepMind's published ranking on their sample clip."""

import pickle

import pytest
import torch

import actionrec
from actionrec.convert.safe_pickle import load_numpy_pickle

pytestmark = pytest.mark.numerics  # rerun by .ci/run with another host's kernels (AVX2)


def test_cricket_clip_gives_deepminds_ranking(i3d_kinetics_ckpt, cricket_clip, cricket_expected):
    model = actionrec.load_model(i3d_kinetics_ckpt)
    assert model.meta.arch == "i3d" and model.meta.num_classes == 400
    assert cricket_clip.shape == (1, 3, 79, 224, 224)
    with torch.no_grad():
        logits = model(cricket_clip)[0]
    probs = logits.softmax(-1)
    top5 = [model.meta.label(i) for i in probs.topk(5).indices.tolist()]
    assert top5[0] == "playing cricket" and probs.max().item() > 0.9
    assert top5 == [label for _, _, label in cricket_expected[:5]]
    # The GIF's palette loses precision against DeepMind's float input: logits come out a
    # little lower (top-1 17.6 vs 19.5), the ranking is the same.
    assert abs(logits.max().item() - cricket_expected[0][1]) < 2.5


def test_restricted_unpickler_refuses_code(tmp_path):
    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("echo pwned",))

    path = tmp_path / "evil.ckpt"
    path.write_bytes(pickle.dumps({"params": Evil()}))
    with pytest.raises(ValueError, match="refusing to load global"):
        load_numpy_pickle(path)


def test_restricted_unpickler_reads_arrays(tmp_path):
    import numpy as np

    path = tmp_path / "ok.ckpt"
    path.write_bytes(pickle.dumps({"a": {"b": np.arange(6, dtype=np.float32).reshape(2, 3)}}))
    out = load_numpy_pickle(path)
    assert out["a"]["b"].shape == (2, 3)
