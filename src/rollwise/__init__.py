"""rollwise: progressive delivery for HTTP services and A2A agents."""

__version__ = "0.1.0"

__all__ = ["__version__"]
