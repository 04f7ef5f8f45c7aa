"""Traffic routing: the built-in proxy and the controller-side client that drives it
(``builtin.py``, ``dataplane.py``, ``proxy/``), and a cluster's Services and Gateway API
HTTPRoute (``gateway.py``)."""
