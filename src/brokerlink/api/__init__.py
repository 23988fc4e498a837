"""The HTTP API and web app (FastAPI)."""

from brokerlink.api.app import create_app
from brokerlink.api.state import AppState, open_state

__all__ = ["AppState", "create_app", "open_state"]
