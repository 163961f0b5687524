"""X3D's weight sets of the catalogue: PyTorchVideo's model zoo (XS, S, M, L) and mmaction2's (S, M).

Data only (no torch): ``actionrec weights list`` reads it without importing a model. URLs and file names are
upstream's own (PyTorchVideo's ``pytorchvideo/models/hub/x3d.py``, mmaction2's ``configs/recognition/x3d``);
accuracies are the published ones, with the page they come from and the protocol they were measured with.
"""

from __future__ import annotations

from actionrec.models.registry import Accuracy, PretrainedCfg, register_pretrained

_PTV = "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/"
_PTV_ACC = "facebookresearch/pytorchvideo@f3142bb docs/source/model_zoo.md, Kinetics-400 table"
_PTV_NOTE = ("PyTorchVideo publishes no checksum and no size for its model zoo (torch.hub loads these files without "
             "check_hash): the download cannot be checked against upstream; the SHA-256 of the file fetched is recorded "
             "beside the conversion. A `{{'model_state': state_dict, ...}}` file in create_x3d's layout. {input}")
_PTV_INPUT = ("Test input as upstream's: short side {s}, centre crop {s} (PyTorchVideo's torch.hub X3D example; for XS also "
              "pytorchvideo_trainer conf/datamodule/transforms/kinetics_classification_x3d_xs.yaml @f3142bb, val), on a "
              "network built for {b}² (its head pool then covers several positions, averaged after the classifier, as upstream).")
_MM = "https://download.openmmlab.com/mmaction/"
_MM_ACC = "open-mmlab/mmaction2@4d6c934 configs/recognition/x3d/README.md and metafile.yml"

for size, top1, top5, test, build in (("xs", 69.12, 88.63, 182, 160), ("s", 73.33, 91.27, 182, 160),
                                       ("m", 75.94, 92.72, 256, 224), ("l", 77.44, 93.31, None, 312)):
    file_name = f"X3D_{size.upper()}.pyth"
    inp = (_PTV_INPUT.format(s=test, b=build) if test else
           "PyTorchVideo's hub example gives no X3D-L transform: the builder's 312² input (resize 312, centre crop) is used.")
    register_pretrained(PretrainedCfg(
        arch=f"x3d_{size}", tag="kinetics400_pytorchvideo", source="pytorchvideo", labels="kinetics400", default=True,
        description=f"PyTorchVideo X3D-{size.upper()} Kinetics-400 (model zoo; torch.hub x3d_{size})",
        urls=(_PTV + file_name,), file_name=file_name,
        preprocess={"resize_short": test, "crop_size": test} if test else {},
        accuracy=Accuracy(top1, top5, "Kinetics-400 val", "10 temporal clips x 3 spatial crops", _PTV_ACC),
        license="Apache-2.0 (facebookresearch/pytorchvideo LICENSE)", notes=_PTV_NOTE.format(input=inp),
    ))

for size, frames, prefix, top1, top1_10, crop in (("s", "13x6x1", "623825a0", 73.3, 73.2, 182),
                                                   ("m", "16x5x1", "3f42382a", 76.4, 75.2, 256)):
    stem = f"x3d_{size}_{frames}_facebook-kinetics400-rgb_20201027-{prefix}.pth"
    old = f"x3d_{size}_facebook_{frames}_kinetics400_rgb_20201027-{prefix}.pth"
    register_pretrained(PretrainedCfg(
        arch=f"x3d_{size}", tag="kinetics400_mmaction2", source="mmaction2", labels="kinetics400",
        description=f"mmaction2 X3D-{size.upper()} {frames}, Kinetics-400 (SlowFast's weights, converted by mmaction2)",
        urls=(f"{_MM}v1.0/recognition/x3d/facebook/{stem}", f"{_MM}recognition/x3d/facebook/{old}"),
        file_name=stem, digest=f"sha256-prefix:{prefix}",
        preprocess={"resize_short": crop, "crop_size": crop},
        accuracy=Accuracy(top1, None, "Kinetics-400 val (SlowFast's validation list)",
                          f"10 clips x 3 crops at {crop}² ({top1_10:g} with 10 clips x 1 crop)", _MM_ACC),
        license="Apache-2.0 (open-mmlab/mmaction2; the weights are SlowFast's, Apache-2.0)",
        notes=("Converted by mmaction2 from SlowFast's x3d_{s}.pyth (dl.fbaipublicfiles.com/pyslowfast/x3d_models), not "
               "trained by mmaction2. mmaction2's publish_model.py puts the first 8 hex digits of the SHA-256 in the file "
               "name; no full hash, no size and no top-5 are published. The second URL is the 0.x location of the same "
               "file (same hash). mmaction2's test input: {c}² centre crop after resizing the short side to {c}, "
               "mean 114.75, std 57.38 on 0-255 pixels.").format(s=size, c=crop),
    ))
