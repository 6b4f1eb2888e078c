"""The standing adversarial suite (issue 13): Bastion attacked from inside its own sandbox.

Run with the rest (`scripts/test`, or `scripts/test tests/security`). `servers/probe_server.py`
is the hostile server; `sandbox_probe.py` holds the invariant its reports must satisfy.
"""
