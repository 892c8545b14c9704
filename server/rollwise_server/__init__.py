"""The rollwise flag server (``pip install 'rollwise[server]'``); built out in the server issue."""

from rollwise._version import __version__

__all__ = ["__version__"]
