"""scan never raises, whatever nested JSON the agent sends."""

from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.guard.policy.catalogue import Finding, ScanContext, scan

_FRAGMENTS = [
    "rm -rf /",
    "DROP TABLE x",
    "$(",
    "`",
    "'",
    '"',
    "http://",
    "169.254.169.254",
    "..",
    "~/.ssh/",
    "eyJ",
    "AKIA",
    "\U000e0041",
    "\u200b",
    "-----BEGIN PRIVATE KEY-----",
    "|",
    ";",
    "${IFS}",
    "@",
    "\x00",
]
_text = st.one_of(st.text(max_size=80), st.lists(st.sampled_from(_FRAGMENTS), max_size=8).map("".join))
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | _text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_text, children, max_size=4),
    max_leaves=20,
)
_keys = st.sampled_from(["command", "sql", "query", "path", "url", "body", "args", "to", "amount", "x"])


@settings(max_examples=300, deadline=None)
@given(
    tool=st.sampled_from(["run_command", "query", "write_file", "fetch", "send_email", "create_refund",
                          "kubectl_delete", "browser_fill_form", "x"]),
    arguments=st.dictionaries(_keys, _json, max_size=5),
    roots=st.lists(_text, max_size=2),
    domains=st.lists(_text, max_size=2),
)  # fmt: skip
def test_scan_never_raises(tool, arguments, roots, domains):
    context = ScanContext(allowed_roots=tuple(roots), allowed_domains=tuple(domains), server="s")
    findings = scan(tool, arguments, context)
    assert all(isinstance(f, Finding) and f.path.startswith("arguments") for f in findings)


def test_deep_nesting_is_bounded():
    deep: object = "rm -rf /"
    for _ in range(500):
        deep = {"command": deep}
    assert isinstance(scan("run_command", {"x": deep}, ScanContext()), list)


def test_arguments_that_are_not_an_object_are_still_scanned():
    ids = {f.entry.id for f in scan("run_command", ["rm -rf /"], ScanContext())}  # type: ignore[arg-type]
    assert isinstance(ids, set)
    assert scan("x", None, ScanContext()) == []  # type: ignore[arg-type]
