"""The store: declarative base, column types, engines and the transaction boundary."""

from brokerlink.db.base import NAMING_CONVENTION, Base
from brokerlink.db.session import create_engine, create_sessionmaker, transaction

__all__ = ["NAMING_CONVENTION", "Base", "create_engine", "create_sessionmaker", "transaction"]
