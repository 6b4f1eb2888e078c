import pytest

from bastion.guard.policy.catalogue import sql_operations


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("drop table accounts", {"drop"}),
        ('/* cleanup */ DROP\tTABLE IF EXISTS "audit" CASCADE', {"drop"}),
        ("dRoP DaTaBaSe prod", {"drop", "drop_database"}),
        ("DROP SCHEMA billing CASCADE", {"drop", "drop_database"}),
        ("truncate events", {"truncate"}),
        ("DELETE FROM t", {"delete_without_where"}),
        ("DELETE FROM t WHERE 'a' = 'a'", {"delete_without_where"}),
        ("DELETE FROM t WHERE id = 3 OR 2 > 1", {"delete_without_where"}),
        ("DELETE FROM t WHERE id = id", {"delete_without_where"}),
        ("DELETE FROM t WHERE id = 3", {"delete"}),
        ("UPDATE t SET a = 1", {"update_without_where"}),
        ("update t set a = 1 -- where id = 4", {"update_without_where"}),
        ("UPDATE t SET a = 1 WHERE id = 4", {"update"}),
        ("ALTER TABLE t RENAME COLUMN a TO b", {"alter_drop"}),
        ("ALTER TABLE t ADD COLUMN c INT", {"alter"}),
        ("REVOKE SELECT ON t FROM bob", {"revoke"}),
        ("CREATE USER eve IDENTIFIED BY 'pw'", {"user_management"}),
        ("SELECT * FROM users", {"select", "unbounded_select"}),
        ("SELECT u.* FROM users u JOIN orders o ON o.uid = u.id", {"select", "unbounded_select"}),
        ("SELECT email FROM users WHERE id = 1", {"select"}),
        ("SELECT email FROM users WHERE name = 'x' OR 1=1", {"select", "unbounded_select"}),
        ("SELECT email FROM users LIMIT 5", {"select"}),
        ("SELECT country, count(*) FROM users GROUP BY country", {"select"}),
        ("SELECT max(id) FROM users", {"select"}),
        ("WITH a AS (SELECT * FROM users) SELECT count(*) FROM a", {"select"}),
        ("WITH a AS (SELECT * FROM users) SELECT * FROM a", {"select", "unbounded_select"}),
        ("SELECT * FROM (SELECT * FROM users) t", {"select", "unbounded_select"}),
        ("SELECT id FROM a WHERE id = 1 UNION SELECT email FROM users", {"select", "unbounded_select"}),
        ("SELECT TOP 10 * FROM users", {"select"}),
        ("SELECT 1", {"select"}),
        ("SELECT pg_read_file('/etc/hostname')", {"select", "file_access"}),
        ("COPY users TO '/tmp/u.csv'", {"copy_to"}),
        ("COPY t FROM PROGRAM 'id'", {"copy_from", "exec_program"}),
        ("SET FOREIGN_KEY_CHECKS = 0", {"set", "disable_safety"}),
        ("INSERT INTO notes (body) VALUES ('DROP TABLE x; DELETE FROM y')", {"insert"}),
        ("CREATE TABLE drop_log (id INT)", {"create"}),
        ("SELECT name FROM sqlite_master", {"select"}),
        ("SELECT table_name FROM information_schema.tables", {"select"}),
    ],
)
def test_sql_operations(text, expected):
    assert sql_operations(text) == frozenset(expected)


def test_several_statements_are_all_seen():
    ops = sql_operations("SELECT 1; TRUNCATE t; select 2")
    assert ops is not None
    assert {"truncate", "multi_statement", "select"} <= ops


@pytest.mark.parametrize(
    "text",
    ["", "hello world", "ran DROP TABLE on staging by mistake", "dropdown menu", "selection sort", "42", "{}",
     "subject:(refund OR chargeback)", "-- just a comment"],
)  # fmt: skip
def test_not_sql(text):
    assert sql_operations(text) is None


@pytest.mark.parametrize(
    ("tool", "arguments", "expected"),
    [
        ("run", {"steps": [{"name": "a", "stmt": "SELECT 1"}, {"stmt": "Drop Table users"}]}, {"sql.drop"}),
        ("execute_sql", {"q": "delete from logs"}, {"sql.delete_without_where"}),
        ("read_query", {"query": "INSERT INTO t VALUES (1)"}, {"sql.write_in_read_only"}),
        ("query", {"sql": "SELECT id FROM t WHERE id = 1; DELETE FROM t WHERE id = 2"},
         {"sql.multi_statement"}),
        ("run_command", {"command": "psql -c 'TRUNCATE sessions' app"}, {"sql.truncate"}),
        ("query", {"sql": "SELECT * INTO OUTFILE '/tmp/x' FROM users"}, {"sql.file_access"}),
        ("drop_collection", {"collection": "orders"}, {"sql.collection_drop"}),
        ("delete_many", {"collection": "orders", "filter": {}}, {"sql.document_delete_all"}),
    ],
)  # fmt: skip
def test_sql_findings_anywhere(scan_ids, tool, arguments, expected):
    assert expected <= scan_ids(tool, arguments, server="db")


@pytest.mark.parametrize(
    ("server", "tool", "arguments"),
    [
        ("github", "create_issue", {"title": "Drop table customers", "body": "DELETE FROM sessions is slow"}),
        ("db", "query", {"sql": "SELECT id, drop_date FROM shipments WHERE drop_date > now() LIMIT 10"}),
        ("db", "write_query", {"query": "DELETE FROM carts WHERE id = 5"}),
        ("db", "query", {"sql": "SELECT count(*) FROM customers"}),
        ("mongo", "delete_many", {"collection": "orders", "filter": {"status": "void"}}),
        ("db", "create_branch", {"branch": "drop-table-migration", "note": "drop the old index later"}),
    ],
)
def test_sql_near_misses(scan_ids, server, tool, arguments):
    assert not {i for i in scan_ids(tool, arguments, server=server) if i.startswith("sql.")}


def test_padding_does_not_hide_a_statement():
    ops = sql_operations("SELECT 1; /* " + "x" * 60_000 + " */ DROP TABLE users")
    assert ops is not None
    assert "drop" in ops
