"""The library's version: part of every snapshot's fingerprint, shown by the CLI."""

__version__ = "0.1.0"
