"""The dashboard: server-rendered pages under `/ui`, for people signed in with an admin token.

See docs/dashboard.md. Pages call the same library functions as the CLI and the admin API
(approval decisions, audit search and export, pin acceptance, token issuing, policy dry runs);
this room only renders them and guards who may do what.
"""
