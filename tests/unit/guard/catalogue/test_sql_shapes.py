"""Issue 14: every statement, every layer, and bulk reads however phrased (public cases).

Each dangerous shape is judged whatever statement comes first, inside dynamic SQL, inside MySQL
executable comments, and when no dialect parses it; reads that return a whole table are
`sql.bulk_export` whatever the phrasing, and bounded reads and plain aggregates stay allowed.
"""

import pytest

from bastion.guard.policy.catalogue import ScanContext, scan, sql_operations

DROP = "DROP TABLE users"


@pytest.mark.parametrize(
    "lead",
    ["USE prod", "BEGIN", "BEGIN TRANSACTION", "START TRANSACTION", "COMMIT", "ROLLBACK", "SAVEPOINT s1",
     "SHOW TABLES", "ANALYZE users", "LOCK TABLE users IN EXCLUSIVE MODE", "EXPLAIN SELECT 1", "END", "DISCARD ALL",
     "SET search_path TO app", "SELECT 1", "VACUUM", "RESET ALL", "DECLARE @x INT", "CHECKPOINT", "SET NAMES utf8mb4",
     "PRAGMA foreign_keys = ON"],
)  # fmt: skip
def test_a_drop_after_any_statement_is_seen(lead, scan_ids):
    for text in (f"{lead}; {DROP}", f"{lead};\n{DROP};\nCOMMIT;"):
        assert "drop" in (sql_operations(text) or set()), text
        assert "sql.drop" in scan_ids("run_sql", {"statement": text}), text


@pytest.mark.parametrize(
    ("text", "entry"),
    [
        ("EXEC('DROP TABLE users')", "sql.drop"),
        ("EXECUTE('TRUNCATE TABLE audit_log')", "sql.truncate"),
        ("EXEC('DR' + 'OP TABLE users')", "sql.drop"),
        ("EXECUTE IMMEDIATE 'DROP TABLE users'", "sql.drop"),
        ("BEGIN EXECUTE IMMEDIATE 'DELETE FROM accounts'; END;", "sql.delete_without_where"),
        ("PREPARE s FROM 'DROP TABLE users'; EXECUTE s", "sql.drop"),
        ("SET @q = CONCAT('DELETE ', 'FROM orders'); PREPARE st FROM @q; EXECUTE st; DEALLOCATE PREPARE st;",
         "sql.delete_without_where"),
        ("PREPARE wipe AS DELETE FROM sessions; EXECUTE wipe;", "sql.delete_without_where"),
        ("DO $$ BEGIN EXECUTE 'DROP TABLE users'; END $$", "sql.drop"),
        ("DO $body$ BEGIN TRUNCATE invoices; END $body$ LANGUAGE plpgsql", "sql.truncate"),
        ("DO $$ BEGIN EXECUTE format('DROP TABLE %I', 'users'); END $$", "sql.drop"),
        ("EXEC sp_executesql N'DROP TABLE users'", "sql.drop"),
        ("EXEC sys.sp_executesql @stmt = N'UPDATE accounts SET balance = 0'", "sql.update_without_where"),
        ("DECLARE @s NVARCHAR(100) = 'DROP TABLE users'; EXEC(@s)", "sql.drop"),
        ("DECLARE @s NVARCHAR(200); SET @s = N'GRANT ALL ON users TO eve'; EXEC sp_executesql @s", "sql.grant"),
        ("EXEC('EXEC(''DROP DATABASE prod'')')", "sql.drop_database"),
        ("/*!50000 DROP TABLE users */", "sql.drop"),
        ("SELECT 1 /*! ; DROP TABLE users */", "sql.drop"),
        ("/*M!100000 TRUNCATE TABLE t */", "sql.truncate"),
        ("EXPLAIN ANALYZE DELETE FROM users", "sql.delete_without_where"),
        ("WITH gone AS (DELETE FROM users RETURNING *) SELECT count(*) FROM gone", "sql.delete_without_where"),
        ("CREATE PROCEDURE cleanup AS BEGIN DELETE FROM users END", "sql.delete_without_where"),
        ("CREATE OR REPLACE FUNCTION f() RETURNS void AS $$ DROP TABLE users $$ LANGUAGE sql", "sql.drop"),
        ("EXEC [dbo].[sp_executesql] N'DROP TABLE users'", "sql.drop"),
        ("EXEC('xp_cmdshell ''whoami''')", "sql.exec_program"),
        ("EXEC sp_executesql N'master..xp_cmdshell ''dir'''", "sql.exec_program"),
        ("EXEC(CHAR(68) + 'ROP TABLE users')", "sql.dynamic_sql"),
        ("EXEC(CHAR(68) + CHAR(82) + 'OP TABLE users')", "sql.dynamic_sql"),
        ("DECLARE @t SYSNAME = (SELECT TOP 1 name FROM sys.tables); EXEC('DROP TABLE ' + @t)", "sql.unparsed_write"),
        ("DROP TABLE IF EXISTS users CASCADE PURGE WITH EXTRA ODDITIES ((", "sql.drop"),
        ("DELETE LOW_PRIORITY QUICK IGNORE FROM users ORDER BY id LIMITED SOMEHOW", "sql.unparsed_write"),
    ],
)  # fmt: skip
def test_every_layer_is_judged(text, entry, scan_ids):
    for tool, key in (("execute_query", "query"), ("db_exec", "sql"), ("mssql_run", "statement")):
        assert entry in scan_ids(tool, {key: text}), (tool, text)


@pytest.mark.parametrize(
    "text",
    [
        "SELECT * FROM customers",
        "SELECT * FROM customers LIMIT 100000",
        "SELECT * FROM customers LIMIT ALL",
        "SELECT * FROM customers LIMIT -1",
        "SELECT TOP 100 PERCENT * FROM customers",
        "SELECT TOP 500000 email FROM customers",
        "SELECT * FROM customers ORDER BY id OFFSET 0 ROWS FETCH NEXT 50000 ROWS ONLY",
        "SELECT * FROM customers WHERE 1=1",
        "SELECT * FROM customers WHERE true",
        "SELECT * FROM customers WHERE id > 0",
        "SELECT email FROM customers WHERE customer_id >= 1",
        "SELECT * FROM customers c WHERE c.customerId > 0",
        "SELECT * FROM customers WHERE id <> -1",
        "SELECT * FROM customers WHERE id IS NOT NULL",
        "SELECT * FROM customers WHERE id BETWEEN 0 AND 999999999",
        "SELECT * FROM customers WHERE name LIKE '%'",
        "SELECT * FROM customers WHERE name ILIKE '%%'",
        "SELECT * FROM customers WHERE created_at > '1900-01-01'",
        "SELECT * FROM customers WHERE signup_date >= DATE '1970-01-01'",
        "SELECT * FROM customers WHERE updated_at < '2999-12-31'",
        "SELECT * FROM customers WHERE id > 0 AND 2 > 1",
        "SELECT * FROM customers WHERE deleted_at IS NULL",
        "SELECT * FROM customers WHERE id > '0'",
        "SELECT * FROM customers WHERE id NOT IN (-1)",
        "SELECT * FROM customers WHERE email <> ''",
        "SELECT * FROM customers WHERE created_at > NOW() - INTERVAL '100 years'",
        "TABLE customers",
        "SELECT * FROM customers WHERE status = 'gold' OR 1 = 1",
        "SELECT group_concat(email) FROM customers",
        "SELECT GROUP_CONCAT(email SEPARATOR ';') FROM customers LIMIT 1",
        "SELECT string_agg(email, ',') FROM customers",
        "SELECT json_agg(c) FROM customers c",
        "SELECT array_agg(row_to_json(c)) FROM customers c",
        "SELECT country, group_concat(email) FROM customers GROUP BY country",
        "SELECT (SELECT json_agg(u) FROM users u) AS dump",
        "WITH everyone AS (SELECT * FROM customers) SELECT * FROM everyone",
        "WITH a AS (SELECT id, email FROM customers) SELECT * FROM a WHERE 1=1",
        "SELECT id FROM admins WHERE id = 1 UNION ALL SELECT id FROM customers",
        "SELECT * FROM (SELECT * FROM customers) AS t",
        "COPY customers TO STDOUT",
        "COPY (SELECT * FROM customers) TO '/tmp/c.csv' WITH CSV",
        "BEGIN; SELECT * FROM customers; COMMIT;",
    ],
)
def test_bulk_reads_however_phrased(text, scan_ids):
    for tool, key in (("query", "sql"), ("run_select", "statement"), ("warehouse_query", "q")):
        assert "sql.bulk_export" in scan_ids(tool, {key: text}), (tool, text)


@pytest.mark.parametrize(
    "text",
    [
        "SELECT * FROM customers LIMIT 50",
        "SELECT * FROM customers LIMIT 1000",
        "SELECT TOP 10 * FROM customers",
        "SELECT count(*) FROM customers",
        "SELECT avg(total), max(total) FROM orders",
        "SELECT count(*) FROM customers WHERE id > 0",
        "SELECT * FROM customers WHERE id = 5",
        "SELECT * FROM customers WHERE id > 1000",
        "SELECT * FROM customers WHERE created_at > '2025-01-01'",
        "SELECT * FROM customers WHERE created_at > now() - interval '7 days'",
        "SELECT name FROM customers WHERE name LIKE 'A%'",
        "SELECT status, count(*) FROM orders GROUP BY status",
        "SELECT group_concat(name) FROM users WHERE team_id = 4",
        "SELECT string_agg(tag, ',') FROM (SELECT tag FROM tags LIMIT 20) t",
        "WITH recent AS (SELECT * FROM customers LIMIT 5) SELECT * FROM recent",
        "SELECT * FROM (SELECT * FROM customers WHERE id = 3) t",
        "SELECT * FROM orders WHERE amount > 0 AND customer_id = 4",
        "SELECT * FROM customers WHERE deleted_at IS NULL AND id = 7",
        "CREATE TABLE notes (id INT, cid INT REFERENCES customers(id) ON DELETE CASCADE ON UPDATE CASCADE)",
        "SELECT table_name FROM information_schema.tables",
        "BEGIN; UPDATE accounts SET balance = balance - 5 WHERE id = 4; COMMIT;",
        "EXEC dbo.GetOrders @customer_id = 5",
        "EXEC sp_help 'customers'",
        "CALL refresh_stats()",
        "EXEC sp_executesql N'SELECT name FROM customers WHERE id = @id', N'@id INT', @id = 5",
        "/*!40101 SET NAMES utf8 */; SELECT 1",
        "INSERT INTO notes (body) VALUES ('EXEC(''DROP TABLE x'')')",
    ],
)
def test_bounded_reads_and_ordinary_statements_stay_allowed(text, scan_ids):
    assert not scan_ids("query", {"sql": text}), text


@pytest.mark.parametrize(
    ("tool", "arguments", "expected"),
    [
        ("find", {"collection": "customers", "filter": {}}, "sql.bulk_export"),
        ("find_documents", {"database": "crm", "collection": "customers"}, "sql.bulk_export"),
        ("mongo_find", {"collection": "customers", "filter": "{}", "limit": 0}, "sql.bulk_export"),
        ("find", {"collection": "customers", "query": {"_id": {"$exists": True}}, "limit": 500000}, "sql.bulk_export"),
        ("find", {"collection": "customers", "filter": {"$or": [{"vip": True}, {"$where": "true"}]}},
         "sql.bulk_export"),
        ("aggregate", {"collection": "customers", "pipeline": [{"$project": {"email": 1}}]}, "sql.bulk_export"),
        ("run_command", {"command": "mongosh crm --quiet --eval 'db.customers.find({}).toArray()'"},
         "sql.bulk_export"),
        ("evaluate", {"script": "db.getCollection('customers').find()"}, "sql.bulk_export"),
        ("run_command", {"command": "mongosh crm --eval 'db.customers.drop()'"}, "sql.collection_drop"),
        ("mongo_eval", {"code": "db.orders.deleteMany({})"}, "sql.document_delete_all"),
        ("delete_many", {"collection": "orders", "filter": {"_id": {"$ne": None}}}, "sql.document_delete_all"),
        ("query_collection", {"collection": "customers", "filter": {}}, "sql.bulk_export"),
        ("firestore_list_documents", {"collection": "customers"}, "sql.bulk_export"),
        ("dynamodb_scan", {"TableName": "customers"}, "sql.bulk_export"),
        ("export_table", {"table": "customers", "format": "csv"}, "sql.bulk_export"),
        ("mongo", {"operation": "find", "collection": "users", "filter": {}}, "sql.bulk_export"),
        ("mongo", {"operation": "deleteMany", "collection": "users", "filter": {}}, "sql.document_delete_all"),
    ],
)  # fmt: skip
def test_document_databases(tool, arguments, expected, scan_ids):
    assert expected in scan_ids(tool, arguments)


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("find", {"collection": "customers", "filter": {"email": "a@example.com"}}),
        ("find", {"collection": "customers", "limit": 20}),
        ("aggregate", {"collection": "orders", "pipeline": [{"$group": {"_id": "$status", "n": {"$sum": 1}}}]}),
        ("aggregate", {"collection": "orders", "pipeline": [{"$match": {"status": "open"}}]}),
        ("run_command", {"command": "mongosh crm --eval 'db.customers.find({}).limit(10)'"}),
        ("list_collections", {"database": "crm"}),
        ("dynamodb_scan", {"TableName": "customers", "Limit": 25}),
        ("export_table", {"table": "customers", "where": {"id": 4}}),
        ("search_documents", {"collection": "kb", "query": "refund policy"}),
        ("find_files", {"path": "/srv/app", "pattern": "*.py"}),
    ],
)
def test_bounded_document_reads_stay_allowed(tool, arguments, scan_ids):
    assert not scan_ids(tool, arguments)


@pytest.mark.parametrize(
    ("text", "op"),
    [("BEGIN; DROP TABLE users; COMMIT;", "drop"), ("USE prod; TRUNCATE users", "truncate"),
     ("EXEC('DELETE FROM users')", "delete_without_where"), ("/*!50000 DROP TABLE users */", "drop")],
)  # fmt: skip
def test_rule_conditions_see_every_statement(text, op):
    """`when: {arguments.sql: {sql: [drop]}}` uses `sql_operations`: the same statements count."""
    assert op in (sql_operations(text) or set())


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [("db", {"note": "drop the old index later"}), ("query", {"sql": "Delete old records when you have time"}),
     ("create_branch", {"branch": "drop-table-migration"}), ("search_docs", {"query": "how to drop a table safely"}),
     ("create_issue", {"body": "Steps: BEGIN; DROP TABLE users; COMMIT; fails"})],
)  # fmt: skip
def test_prose_is_not_sql(tool, arguments, scan_ids):
    assert not {e for e in scan_ids(tool, arguments, server="db") if e.startswith("sql.")}


@pytest.mark.parametrize(
    ("tool", "arguments", "entry"),
    [
        ("run_task", {"input": "DO $$ BEGIN EXECUTE 'DROP TABLE users'; END $$"}, "sql.drop"),
        ("job_submit", {"code": "EXECUTE IMMEDIATE 'TRUNCATE TABLE audit_log'"}, "sql.truncate"),
        ("pipeline_step", {"payload": "BEGIN EXECUTE IMMEDIATE 'DROP TABLE users'; END;"}, "sql.drop"),
        ("run_task", {"input": "BEGIN; DROP TABLE users; COMMIT;"}, "sql.drop"),
    ],
)
def test_dynamic_sql_outside_sql_tools(tool, arguments, entry, scan_ids):
    assert entry in scan_ids(tool, arguments)


@pytest.mark.parametrize("text", ["Do it now; exec the plan", "Begin the review, then execute the steps"])
def test_prose_with_procedural_words_is_not_sql(text, scan_ids):
    assert not {e for e in scan_ids("run_task", {"input": text}) if e.startswith("sql.")}


@pytest.mark.parametrize(
    ("command", "entry"),
    [
        ('echo "DROP TABLE users" | psql prod', "sql.drop"),
        ('psql prod <<< "BEGIN; TRUNCATE users; COMMIT;"', "sql.truncate"),
        ('printf "SELECT * FROM customers;" | mysql -u root app', "sql.bulk_export"),
        ('mysql -e "USE crm; SELECT * FROM customers WHERE id > 0"', "sql.bulk_export"),
        ('sqlite3 app.db "/*!50000 DROP TABLE users */"', "sql.drop"),
    ],
)
def test_sql_handed_to_a_database_client(command, entry, scan_ids):
    assert entry in scan_ids("run_command", {"command": command})


def test_tsql_batches_split_at_go(scan_ids):
    assert "sql.drop" in scan_ids("mssql_query", {"query": "SELECT 1\nGO\nDROP TABLE users\nGO"})
    assert not scan_ids("mssql_query", {"query": "SELECT name FROM users WHERE id = 1\nGO"})


@pytest.mark.parametrize(
    "text",
    [
        "DECLARE @a NVARCHAR(MAX) = 'DROP TABLE t '; " + "SET @a = @a + @a; " * 40 + "EXEC(@a)",
        "EXEC('" + "EXEC(''" * 12 + "DROP TABLE x" + "'')" * 12 + "')",
        "DO $$ BEGIN " + "EXECUTE 'SELECT 1'; " * 200 + " END $$",
    ],
)
def test_dynamic_sql_past_the_budget_is_held(text, scan_ids):
    """A payload that doubles itself, nesting deeper than followed, more sites than followed: held, not ignored."""
    assert "sql.dynamic_sql" in scan_ids("query", {"sql": text})


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [("search", {"query": "delete from cart not working"}), ("web_search", {"query": "update set syntax postgres"}),
     ("brave_web_search", {"query": "truncate table vs delete"}),
     ("search_query", {"q": "delete from cart not working"})],
)  # fmt: skip
def test_a_search_query_is_not_sql_a_tool_runs(tool, arguments, scan_ids):
    assert not {e for e in scan_ids(tool, arguments, server="search") if e.startswith("sql.")}


@pytest.mark.parametrize(
    ("text", "scope"),
    [
        ("SELECT * FROM customers LIMIT 100000", "LIMIT 100000 does not bound it to 1000 rows"),
        ("SELECT * FROM customers WHERE id > 0", "WHERE id > 0 selects every row"),
        ("SELECT group_concat(email) FROM customers", "group_concat folds every row into one value"),
        ("SELECT * FROM customers", "no WHERE or LIMIT"),
    ],
)
def test_the_finding_names_the_unusual_scope(text, scope):
    """The reason the audit log records says why the read is a whole table."""
    [finding] = [f for f in scan("query", {"sql": text}, ScanContext()) if f.entry.id == "sql.bulk_export"]
    assert scope in finding.reason
