"""The plumbing the stores share: SQLite files, the PostgreSQL database, their errors.

Nothing here imports a store or anything above them; the stores (tokens, approvals, pins)
import this room, and `bastion.stores` picks which implementation a configuration gets.
"""
