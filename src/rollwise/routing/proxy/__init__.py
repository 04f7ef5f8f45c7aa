"""rollwise's data plane: a traffic-splitting HTTP/1.1 proxy that runs as its own process."""

from rollwise.routing.proxy.limits import Limits
from rollwise.routing.proxy.server import ProxyServer

__all__ = ["Limits", "ProxyServer"]
