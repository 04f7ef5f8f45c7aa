"""Run the sample agent: ``python -m sample_agent --port 8000`` (from ``examples/``)."""

from sample_agent.app import main

main()
