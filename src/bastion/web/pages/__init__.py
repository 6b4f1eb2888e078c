"""One module per dashboard page: its routes and handlers."""
