"""brokerlink: brokerage and bank accounts through SnapTrade and Plaid, behind one interface."""

__version__ = "0.1.0"
__all__ = ["__version__"]
