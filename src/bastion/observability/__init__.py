"""What operators watch Bastion with: Prometheus metrics, OpenTelemetry traces, structured logs.

Everything here subscribes to what the other rooms already report (the audit events, the
guard's check timings); nothing in the data path calls into it by name.
"""
