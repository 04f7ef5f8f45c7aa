"""Traffic routing: the built-in proxy and the controller-side client that drives it."""
