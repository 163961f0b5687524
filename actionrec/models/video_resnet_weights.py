"""The video ResNets' weight sets of the catalogue: torchvision, GluonCV, mmaction2 and MindVideo.

Data only (no torch): ``actionrec weights list`` reads it without importing a model. URLs, file names
and hashes are upstream's own (their code and model-zoo pages); accuracies are the published ones,
with the page they come from and the protocol they were measured with.
"""

from __future__ import annotations

from actionrec.models.registry import Accuracy, PretrainedCfg, register_pretrained

_TV = "https://download.pytorch.org/models/"
_TV_PROTOCOL = "video-level: 5 clips x 16 frames at 15 fps, resize 128x171, centre crop 112"
_TV_LICENSE = "BSD-3-Clause (torchvision; no separate weight licence stated)"
_TV_NOTE = ("torchvision publishes the first 8 hex digits of the SHA-256 in the file name (torch.hub's check) and the "
            "size in MiB (shown in MB); "
            "a third-party README reports the full SHA-256 {full}, not verified against upstream, so not enforced")
_GCV = "https://apache-mxnet.s3-accelerate.dualstack.amazonaws.com/torch/models/"
_GCV_ACC = "dmlc/gluon-cv docs/model_zoo/csv_tables/Action_Recognitions/Kinetics400_torch.csv @3ade5fe"
_GCV_PROTOCOL = "10 clips x 3 crops (the model's test config; the table does not state it)"
_GCV_NOTE = ("GluonCV publishes the full SHA-1 (model_store) but no size (the size shown is the parameters' float32 "
             "bytes); mean/std of its torch pipeline not verified: torchvision's Kinetics mean/std are used")
_GCV_PRE = {"clip_len": 16, "frame_stride": 2, "resize_short": 128, "crop_size": 112}
_MM = "https://download.openmmlab.com/mmaction/"

for arch, prefix, full, top1, top5, page, mb in (
    ("r2plus1d_18", "91a641e6", "91a641e6c2ab531d1aca5f4321b4d802ec5c3babc15df855cdb6e39c6a1107c8", 67.463, 86.175,
     "torchvision R2Plus1D_18_Weights.KINETICS400_V1 meta", 126.2),
    ("r3d_18", "b3b3357e", "b3b3357ead25631ec9c57362ff2128a92d0427e01e2cd184951a44380c3f2e9d", 63.2, 83.479,
     "https://pytorch.org/vision/stable/models/generated/torchvision.models.video.r3d_18.html", 133.6),
    ("mc3_18", "a90a0ba3", "a90a0ba35ca1242d15b77511ff28bfb29cc596988b5ea36081042f8e2f54212b", 63.96, 84.13,
     "https://pytorch.org/vision/stable/models/generated/torchvision.models.video.mc3_18.html", 46.9),
):
    register_pretrained(PretrainedCfg(
        arch=arch, tag="kinetics400_torchvision", source="torchvision", labels="kinetics400", default=True,
        description=f"torchvision {arch} Kinetics-400 (KINETICS400_V1)",
        urls=(f"{_TV}{arch}-{prefix}.pth",), file_name=f"{arch}-{prefix}.pth", size_mb=mb,
        digest=f"sha256-prefix:{prefix}",
        accuracy=Accuracy(top1, top5, "Kinetics-400 val", _TV_PROTOCOL, page),
        license=_TV_LICENSE, notes=_TV_NOTE.format(full=full),
    ))

for arch, depth, sha1, top1, mb in (("r2plus1d_34", 34, "5102fd1736a2a205f5fd7bded5d2e0d2e5ca6307", 72.63, 247.5),
                                     ("r2plus1d_18", 18, "340a59522b4ffe7e3621ad4a269e4cd4a99f74b2", 71.72, 126.1)):
    stem = f"r2plus1d_v1_resnet{depth}_kinetics400-{sha1[:8]}.pth"
    register_pretrained(PretrainedCfg(
        arch=arch, tag="kinetics400_gluoncv", source="gluoncv", labels="kinetics400", default=depth == 34,
        description=f"GluonCV r2plus1d_v1_resnet{depth}_kinetics400 (PyTorch model zoo), 16 frames at stride 2",
        urls=(_GCV + stem,), file_name=stem, digest=f"sha1:{sha1}", preprocess=_GCV_PRE, size_mb=mb,
        accuracy=Accuracy(top1, None, "Kinetics-400 val", _GCV_PROTOCOL, _GCV_ACC),
        license="Apache-2.0 (dmlc/gluon-cv)", notes=_GCV_NOTE,
    ))

_MM_R2P1D = "r2plus1d_r34_8xb8-8x8x1-180e_kinetics400-rgb"
register_pretrained(PretrainedCfg(
    arch="r2plus1d_mm_34", tag="kinetics400_mmaction2", source="mmaction2", labels="kinetics400", default=True,
    description="mmaction2 R(2+1)D-34 8x8x1, Kinetics-400, 180 epochs from scratch (mmaction2 1.x model zoo)",
    urls=(f"{_MM}v1.0/recognition/r2plus1d/{_MM_R2P1D}/{_MM_R2P1D}_20220812-47cfe041.pth",
          f"{_MM}v2.0/recognition/r2plus1d/r2plus1d_r34_8x8x1_180e_8xb8_kinetics400_rgb/"
          "r2plus1d_r34_8x8x1_180e_8xb8_kinetics400_rgb_20220812-47cfe041.pth"),
    file_name=f"{_MM_R2P1D}_20220812-47cfe041.pth", digest="sha256-prefix:47cfe041", size_mb=255.2,
    accuracy=Accuracy(69.76, 88.41, "Kinetics-400 val", "10 clips x 3 crops",
                      "open-mmlab/mmaction2@4d6c934 configs/recognition/r2plus1d/metafile.yml"),
    license="Apache-2.0 (open-mmlab/mmaction2)",
    notes="mmaction2's publish_model.py puts the first 8 hex digits of the SHA-256 in the file name; no full hash "
          "or size is published (the size shown is the parameters' float32 bytes). The second URL is the dev-1.x "
          "location of the same file.",
))

register_pretrained(PretrainedCfg(
    arch="r2plus1d_18", tag="kinetics400_mindspore", source="mindspore", labels="kinetics400",
    description="MindVideo (MindSpore) R(2+1)D-18, Kinetics-400",
    file_name="r2plus1d18_kinetic400.ckpt", size_mb=126.1,
    accuracy=Accuracy(57.3, 79.6, "Kinetics-400 val", "not stated (1 device)",
                      "ZJUT-ERCISS/zjut_mindvideo README, R(2+1)D performance table"),
    license="Apache-2.0 (MindVideo code); weight licence not stated",
    notes="No stable download is published (only a personal SharePoint share in zjut_mindvideo's README) and no "
          "hash: get the file by hand and run `actionrec weights import`, which checks that it converts to a "
          "400-class r2plus1d_18 and records its SHA-256.",
))
