"""The web app's pages (served by the same process as the API)."""

from fastapi import FastAPI

__all__ = ["install_web"]


def install_web(app: FastAPI) -> None:
    """Nothing yet: the pages come with the templates."""
    return None
