"""Command-line interface."""


def main() -> None:
    pass
