"""Offline emulators of the providers' APIs, for tests, demos and local development.

Production code never imports this package; the emulators never import `brokerlink.providers`.
"""
