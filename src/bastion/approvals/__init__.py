"""Human approval of held tool calls: the store, the pipeline stage, and decision events."""
