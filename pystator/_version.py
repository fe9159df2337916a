"""The package's version (``pystator.__version__``)."""

__version__ = "0.1.0"
