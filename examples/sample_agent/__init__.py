"""A real A2A agent (a2a-sdk 1.3) that rollwise releases in its demo and tests.

Environment knobs make a version bad on purpose, so that a rollout has something to catch:

- ``AGENT_VERSION``: the version the card and ``/healthz`` report.
- ``AGENT_FAIL_RATE``: share (0..1) of messages that fail, the way ``AGENT_FAIL_MODE`` says:
  ``raise`` (default: the executor raises, and a2a-sdk answers a JSON-RPC error -32603 in an
  HTTP 200, as any a2a-sdk agent whose code throws), ``task`` (the task ends in state
  failed), ``http`` (an HTTP 500 before a2a-sdk sees the call, which no a2a-sdk agent does).
- ``AGENT_LATENCY_MS``: fixed latency added to every A2A call.
- ``AGENT_TAIL_LATENCY_MS`` / ``AGENT_TAIL_FRACTION``: extra latency for that share of calls.
- ``AGENT_CRASH_AT_START=1``: exit with status 3 before listening (a crash loop).
- ``AGENT_START_DELAY_S``: seconds to wait before listening (a slow start).
- ``AGENT_FAIL_AFTER``: every message after the first N fails, as ``AGENT_FAIL_MODE`` says
  (a release that wears out).
- ``AGENT_BREAK``: comma-separated faults for smoke-test and card tests: ``card-missing-name``,
  ``card-invalid``, ``card-legacy``, ``rpc-error``, ``hang`` (see ``app.BREAKS``).

A message whose text starts with ``ask`` is a two-turn conversation: the task waits in state
input-required ("what else?"), and the next message naming that task completes it.
- ``AGENT_EXTENSIONS``: the A2A extensions it declares and serves (default
  ``timestamp,traceability``, rollwise.a2a.extensions); ``name!`` declares one required.
"""
