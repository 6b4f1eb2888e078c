"""Issue 14 (speed): the pre-screens skip only what could find nothing.

`needles.NEEDLES` finds every family's needles in one Aho-Corasick pass; it must say exactly what
one `in` test per needle says. The SQL pre-screen skips a string holding no statement keyword; no
such string may parse as SQL. And whole scans, screened and not, must agree (the guard tests'
conftest checks that on every test case; here on generated calls and the corpus).
"""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.unit.guard.catalogue.test_corpus import _corpus
from tests.unit.guard.catalogue.test_fuzz import _FRAGMENTS

from bastion.guard.policy.catalogue import ScanContext, secrets
from bastion.guard.policy.catalogue.injection import injection_findings, injection_in
from bastion.guard.policy.catalogue.needles import NEEDLES, Needles
from bastion.guard.policy.catalogue.scanner import scan_call
from bastion.guard.policy.catalogue.sql_parse import parse_sql
from bastion.guard.policy.catalogue.view import SQL_NEEDLES

_WORDS = sorted(NEEDLES.words)
_needle_text = st.lists(
    st.one_of(
        st.sampled_from(_WORDS),
        st.text(max_size=6),
        st.sampled_from(["\x00", " ", "İ", "\u212a", "ẞ", "\ud800", "\U000e0041"]),
    ),
    max_size=12,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(text=st.one_of(_needle_text, st.text(max_size=60)))
def test_the_automaton_finds_exactly_what_in_finds(text):
    lowered = text.lower()
    assert NEEDLES.find(lowered) == NEEDLES.find(lowered, fast=False) == {w for w in _WORDS if w in lowered}


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(st.one_of(_needle_text, st.text(max_size=20)).map(str.lower), max_size=6))
def test_one_pass_over_joined_texts_finds_what_each_pass_finds(texts):
    expected = [NEEDLES.find(text, fast=False) for text in texts]
    assert NEEDLES.find_each(texts) == expected == NEEDLES.find_each(texts, fast=False)


def test_overlapping_and_nested_needles_are_all_found():
    needles = Needles()
    needles.add(["he", "she", "hers", "his"])
    assert needles.find("ushers") == {"he", "she", "hers"}
    assert needles.find("") == frozenset()
    with pytest.raises(ValueError, match="lower-case"):
        needles.add(["Upper"])


def test_words_added_after_the_first_search_are_found():
    needles = Needles()
    needles.add(["abc"])
    assert needles.find("xabcx") == {"abc"}
    needles.add(["bcx"])
    assert needles.find("xabcx") == {"abc", "bcx"}


_SQL_BITS = ["DROP TABLE t", "/*!50000 ", "*/", "\nGO\n", "go", "(", "-- c\n", "# c\n", "SeLeCt 1", "delete from t",
             "exec(", "'", ";", " ", "WITH x AS (SELECT 1) SELECT * FROM x", "begin", "upDATE t SET a=1"]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.lists(st.sampled_from(_SQL_BITS), min_size=1, max_size=6).map("".join), st.text(max_size=40)))
def test_text_without_a_statement_keyword_never_parses_as_sql(text):
    if NEEDLES.find(text.lower()).isdisjoint(SQL_NEEDLES):
        assert parse_sql(text, strict=False) is None
        assert parse_sql(text, strict=True) is None


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(_needle_text, st.lists(st.sampled_from(_FRAGMENTS), max_size=8).map("".join)))
def test_secret_and_injection_gates_match_their_reference(text):
    """`find_secrets` / `injection_findings` with the automaton agree with the per-needle reference path."""
    lowered = text.lower()
    reference = NEEDLES.find(lowered, fast=False)
    if len(text) >= 8:
        assert secrets.find_secrets(text) == secrets.secrets_in(text, lowered, reference)
    if len(text) >= 6:
        assert injection_findings(text) == injection_in(text, reference)


_text = st.one_of(st.text(max_size=40), st.lists(st.sampled_from(_FRAGMENTS + _SQL_BITS), max_size=6).map("".join))
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | _text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_text, children, max_size=4),
    max_leaves=12,
)
_keys = st.sampled_from(["command", "sql", "query", "path", "url", "body", "args", "argv", "filter",
                         "collection", "operation", "cwd", "method", "mode", "force", "amount", "code", "to", "bcc",
                         "x"])  # fmt: skip
_tools = st.sampled_from(["run_command", "query", "execute_sql", "write_file", "fetch", "send_email", "create_refund",
                          "kubectl_delete", "browser_fill_form", "delete_many", "find", "git_push", "git_reset",
                          "aggregate", "export_collection", "x"])  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(tool=_tools, server=st.sampled_from(["mongodb", "postgres", "github", "stripe", "shell", ""]),
       arguments=st.dictionaries(_keys, _json, max_size=5), roots=st.lists(_text, max_size=2))  # fmt: skip
def test_screened_and_full_scans_agree_on_generated_calls(tool, server, arguments, roots):
    context = ScanContext(allowed_roots=tuple(roots), server=server)
    assert scan_call(tool, arguments, context, True) == scan_call(tool, arguments, context, False)


def test_screened_and_full_scans_agree_on_the_corpus():
    path = _corpus()
    if path is None:
        pytest.skip("shared/corpus/tool_calls.jsonl not found")
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        call = json.loads(line)
        ctx = call.get("context") or {}
        context = ScanContext(tuple(ctx.get("allowed_roots", ())), tuple(ctx.get("allowed_domains", ())),
                              server=call["server"])  # fmt: skip
        screened = scan_call(call["tool"], call["arguments"], context, True)
        assert screened == scan_call(call["tool"], call["arguments"], context, False), call["id"]


_PATH_BITS = ["/", "/etc", "/proc", "/proc/1/environ", "/proc/kcore", "/dev/sda", "/usr", "/lib64", "/opt/x/bin",
              ".ssh", "/.ssh/id_ed25519", ".pub", "id_rsa", ".aws/credentials", "Cookies", "Login Data", "key4.db",
              ".env", ".env.local", "secrets.yaml", ".bashrc", ".profile", "Library/LaunchAgents/",
              ".github/workflows/", "Jenkinsfile", ".git/hooks/", "docker.sock", "a.p12", "~", "..", "srv", "app",
              "x", "\n", "PROC", "/var/lib", "/var/spool/cron", ".config/fish/config.fish", "azure-pipelines",
              ".example"]  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(path=st.one_of(st.lists(st.sampled_from(_PATH_BITS), min_size=1, max_size=5).map("".join),
                      st.text(max_size=30)))  # fmt: skip
def test_the_path_needles_cover_every_sensitive_kind(path):
    from bastion.guard.policy.catalogue import fs

    if fs._ANY_SENSITIVE.search(path):
        assert fs.may_be_sensitive(path), path
    for normalised in (path, fs.normalise(path), fs.normalise(path, "/srv/app")):
        reference = None
        if fs._ANY_SENSITIVE.search(normalised) and not fs._TEMPLATE_SUFFIX.search(normalised):
            reference = fs._sensitive(normalised)
        assert fs._sensitive(normalised) == reference


def _reference_walk(value, path="arguments", key="", strings=None, scalars=None, depth=0):
    """The walker as it was before its fast path for JSON types (isinstance checks throughout)."""
    from collections.abc import Mapping

    from bastion.guard.policy.catalogue.base import ScalarValue, StringValue
    from bastion.guard.policy.catalogue.walker import MAX_DEPTH

    strings = [] if strings is None else strings
    scalars = [] if scalars is None else scalars
    if isinstance(value, str):
        strings.append(StringValue(path, key, value))
    elif isinstance(value, bool | int | float):
        scalars.append(ScalarValue(path, key, value))
    elif depth < MAX_DEPTH and isinstance(value, Mapping):
        for k, v in value.items():
            _reference_walk(v, f"{path}.{k}", str(k), strings, scalars, depth + 1)
    elif depth < MAX_DEPTH and isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _reference_walk(v, f"{path}[{i}]", key, strings, scalars, depth + 1)
    return strings, scalars


@settings(max_examples=300, deadline=None)
@given(value=st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | _text,
    lambda children: st.lists(children, max_size=3) | st.tuples(children) | st.dictionaries(
        st.one_of(_text, st.integers()), children, max_size=3),
    max_leaves=15,
))  # fmt: skip
def test_the_walker_fast_path_walks_as_before(value):
    from bastion.guard.policy.catalogue.walker import walk

    assert walk(value) == _reference_walk(value)
    deep = value
    for _ in range(70):
        deep = {"k": [deep]}
    assert walk(deep) == _reference_walk(deep)
