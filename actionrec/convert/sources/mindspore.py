"""MindSpore ``.ckpt`` (placeholder: key maps added below)."""
