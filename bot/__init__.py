"""Rewind: roll back a failed deployment and recover the service, from one command."""

__version__ = "0.1.0"
