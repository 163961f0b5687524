from actionrec.models.registry import register_model
