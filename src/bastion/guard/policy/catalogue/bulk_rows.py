"""How many rows (or documents) a read may return and still count as bounded."""

BULK_ROWS = 1000
"""A limit above this many rows is no bound (SQL LIMIT/TOP/FETCH, document-database limits)."""
