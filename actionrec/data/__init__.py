"""Data: video and frame-folder readers, annotations, clip sampling, transforms, datasets, flow.

Import the submodules directly (``actionrec.data.video``, ``.frames``, ``.annotations``,
``.sampling``, ``.transforms``, ``.dataset``, ``.flow``); this package imports nothing heavy.
"""
