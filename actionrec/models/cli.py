"""``actionrec info MODEL``."""
def add_parsers(sub) -> None:  # noqa: ANN001
    pass
