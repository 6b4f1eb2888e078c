"""The policy engine: rules from bastion.yaml, the dangerous-action catalogue, and profiles.

`config` holds the `policy:` models, `lint.compile_policy` checks and compiles them,
`engine.PolicyEngine` decides calls, `check.PolicyCheck` plugs it into the guard pipeline.
Nothing is imported here, so bastion.config can use the models without loading the catalogue.
"""
