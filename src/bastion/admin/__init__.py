"""Administration: admin credentials (separate from agent tokens) and the JSON admin API."""
