"""A2A-aware parts: agent cards (fetch, validate, diff), extensions and their registry, and
what an exchange says (``labels.py``, ``outcomes.py``: the proxy, the load generator, the
replay and the toolkit's middleware read calls and answers with it)."""
