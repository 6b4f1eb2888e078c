"""Result checks (the `results:` section; docs/injection.md): what tools return is read too.

`ResultsCheck` scans each result for injected instructions and measures it against record and
byte thresholds; `ProvenanceCheck` holds side-effecting calls that carry values an untrusted or
flagged result brought in. `build.result_checks` builds both
from the configuration. (This package's `config` is imported by bastion.config, so nothing heavy
is imported here.)
"""
