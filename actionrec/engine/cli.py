"""CLI subcommands of this area (filled in by its owner)."""


def add_parsers(sub) -> None:  # noqa: ANN001
    pass
