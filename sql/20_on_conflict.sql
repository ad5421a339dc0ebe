-- 20_on_conflict: re-uploads. on_conflict error (the default), nothing (rows_skipped) and
-- update (the file's values win); conflict_target as columns or as a constraint; checks at
-- enqueue and in the worker (arbiter, UPDATE privilege); RLS UPDATE policies; a key twice
-- in one file; bad rows and commit_every with conflicts; a job whose every record was
-- rejected fails; rows_rejected and job_errors of a job that failed past max_errors.
-- (a column the file leaves out must accept its default: PostgreSQL checks the row to
-- insert, NOT NULL included, before it looks for a conflict)
CREATE TABLE oc_items (
    id   int PRIMARY KEY,
    name text NOT NULL DEFAULT 'unnamed',
    qty  int CHECK (qty >= 0)
);
-- counts(id): the counters of a job
CREATE FUNCTION counts(bigint, OUT state text, OUT rows_inserted bigint, OUT rows_rejected bigint,
                       OUT rows_skipped bigint, OUT records_done bigint)
    LANGUAGE sql STABLE
    AS $$ SELECT state, rows_inserted, rows_rejected, rows_skipped, records_done
            FROM ingest.upload_jobs WHERE id = $1 $$;
-- try_detail(sql): try() with the error's detail
CREATE FUNCTION try_detail(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE d text;
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
    RETURN SQLSTATE || ': ' || SQLERRM || ' / ' || d;
END $$;
GRANT EXECUTE ON FUNCTION try_detail(text) TO PUBLIC;
\set first 'id,name,qty\n1,apple,10\n2,pear,20\n3,plum,30\n'
\set second 'id,name,qty\n1,apple,11\n2,pear,21\n3,plum,31\n4,kiwi,41\n'

-- 1. the first load, then the same file again
SELECT ingest.enqueue_data('oc_items', csv(:'first')) AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM counts(:id);
-- error (the default), max_errors 0: the first conflict fails the job
SELECT ingest.enqueue_data('oc_items', csv(:'first')) AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, rows_rejected, rows_skipped, last_error FROM ingest.upload_jobs WHERE id = :id;
-- error with max_errors: every record is rejected, so the job fails, not succeeds
SELECT ingest.enqueue_data('oc_items', csv(:'first'), '{"max_errors": 10}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, rows_rejected, rows_skipped, records_done, last_error
  FROM ingest.upload_jobs WHERE id = :id;
SELECT count(*) AS error_rows FROM ingest.job_errors WHERE job_id = :id;
-- nothing: every record skipped, none rejected, the job succeeds
SELECT ingest.enqueue_data('oc_items', csv(:'first'), '{"on_conflict": "nothing"}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM counts(:id);
SELECT count(*) AS error_rows FROM ingest.job_errors WHERE job_id = :id;
-- nothing with one new record: it alone is inserted, the others keep their values
SELECT ingest.enqueue_data('oc_items', csv(:'second'), '{"on_conflict": "nothing"}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM counts(:id);
SELECT * FROM oc_items ORDER BY id;
-- update: the rows take the file's values; updated rows count as inserted (written)
SELECT ingest.enqueue_data('oc_items', csv(E'id,name,qty\n1,apple,12\n2,pear,22\n5,fig,50\n'),
                           '{"on_conflict": "update"}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM counts(:id);
SELECT * FROM oc_items ORDER BY id;
-- update sets only the file's columns: name stays when the file has id and qty only
SELECT ingest.enqueue_data('oc_items', csv(E'id,qty\n1,13\n'), '{"on_conflict": "update"}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM counts(:id);
SELECT * FROM oc_items WHERE id = 1;
-- a NULL where the file leaves out a NOT NULL column without default is that record's error
CREATE TABLE oc_needs_name (id int PRIMARY KEY, name text NOT NULL, qty int);
INSERT INTO oc_needs_name VALUES (1, 'kept', 1);
SELECT ingest.enqueue_data('oc_needs_name', csv(E'id,qty\n1,2\n'), '{"on_conflict": "update"}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_rejected, last_error FROM ingest.upload_jobs WHERE id = :id;
DROP TABLE oc_needs_name;
-- update with a file of keys only: nothing to set, a conflict is skipped
SELECT ingest.enqueue_data('oc_items', csv(E'id\n1\n'), '{"on_conflict": "update"}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM counts(:id);

-- 2. a key twice in one file, with update: the later record wins, as it would with one
--    INSERT per record, in one batch or across batches, with max_errors 0
\set twice 'id,name,qty\n6,a,1\n6,b,2\n7,c,3\n6,d,4\n7,e,5\n'
SELECT ingest.enqueue_data('oc_items', csv(:'twice'), '{"on_conflict": "update"}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM counts(:id);
SELECT * FROM oc_items WHERE id IN (6, 7) ORDER BY id;
DELETE FROM oc_items WHERE id IN (6, 7);
SET ingest.batch_rows = 2;
SELECT ingest.enqueue_data('oc_items', csv(:'twice'), '{"on_conflict": "update"}') AS id \gset
RESET ingest.batch_rows;
SELECT ingest.wait(:id);
SELECT * FROM counts(:id);
SELECT * FROM oc_items WHERE id IN (6, 7) ORDER BY id;
-- with nothing, the first record of a key wins and the later ones are skipped
DELETE FROM oc_items WHERE id IN (6, 7);
SELECT ingest.enqueue_data('oc_items', csv(:'twice'), '{"on_conflict": "nothing"}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM counts(:id);
SELECT * FROM oc_items WHERE id IN (6, 7) ORDER BY id;

-- 3. bad records among conflicts: rejected (and listed) while the others load or skip
\set mixed 'id,name,qty\n1,apple,14\n8,grape,x\n9,lime,-1\n2,pear,23\n10,,5\n11,melon,6\n'
SELECT ingest.enqueue_data('oc_items', csv(:'mixed'), '{"on_conflict": "nothing", "max_errors": 5}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM counts(:id);
SELECT line_number, sqlstate FROM ingest.job_errors WHERE job_id = :id ORDER BY line_number;
DELETE FROM oc_items WHERE id = 11;
SELECT ingest.enqueue_data('oc_items', csv(:'mixed'), '{"on_conflict": "update", "max_errors": 5}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM counts(:id);
SELECT line_number, sqlstate FROM ingest.job_errors WHERE job_id = :id ORDER BY line_number;
SELECT * FROM oc_items WHERE id IN (1, 2, 11) ORDER BY id;
-- update, max_errors 0: a bad record still fails the job, with its line
SELECT ingest.enqueue_data('oc_items', csv(:'mixed'), '{"on_conflict": "update"}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, rows_rejected, last_error FROM ingest.upload_jobs WHERE id = :id;

-- 4. commit_every with conflicts: counters committed per transaction add up
SELECT ingest.enqueue_data('oc_items',
       csv('id,name,qty' || E'\n' || string_agg(i || ',n' || i || ',' || i, E'\n' ORDER BY i) || E'\n'),
       '{"on_conflict": "nothing", "commit_every": 7}') AS id
  FROM generate_series(1, 40) i \gset
SELECT ingest.wait(:id);
SELECT * FROM counts(:id);
SELECT ingest.enqueue_data('oc_items',
       csv('id,name,qty' || E'\n' || string_agg(i || ',u' || i || ',' || i, E'\n' ORDER BY i) || E'\n'),
       '{"on_conflict": "update", "commit_every": 7}') AS id
  FROM generate_series(1, 40) i \gset
SELECT ingest.wait(:id);
SELECT * FROM counts(:id);
SELECT count(*) FILTER (WHERE name = 'u' || id) AS updated, count(*) AS total FROM oc_items;

-- 5. conflict_target: columns (any order) or a constraint's name
CREATE TABLE oc_codes (
    id    int PRIMARY KEY,
    site  text NOT NULL,
    code  text NOT NULL,
    label text,
    CONSTRAINT oc_codes_site_code UNIQUE (site, code)
);
CREATE UNIQUE INDEX oc_codes_label_partial ON oc_codes (label) WHERE label <> '';
INSERT INTO oc_codes VALUES (1, 's', 'a', 'old a'), (2, 's', 'b', 'old b');
SELECT ingest.enqueue_data('oc_codes', csv(E'id,site,code,label\n10,s,a,new a\n11,s,c,new c\n'),
       '{"on_conflict": "update", "conflict_target": ["code", "site"]}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM counts(:id);
SELECT * FROM oc_codes ORDER BY id;
SELECT ingest.enqueue_data('oc_codes', csv(E'id,site,code,label\n12,s,b,newer b\n'),
       '{"on_conflict": "update", "conflict_target": "oc_codes_site_code"}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM counts(:id);
SELECT * FROM oc_codes ORDER BY id;
-- the default target is the primary key: a conflict on (site, code) is still an error
SELECT ingest.enqueue_data('oc_codes', csv(E'id,site,code,label\n13,s,b,x\n'),
       '{"on_conflict": "nothing", "max_errors": 1}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_rejected, last_error FROM ingest.upload_jobs WHERE id = :id;
SELECT sqlstate FROM ingest.job_errors WHERE job_id = :id;
-- refused at enqueue
SELECT try($$SELECT ingest.enqueue_data('oc_codes', '\x', '{"on_conflict": "merge"}')$$);
SELECT try($$SELECT ingest.enqueue_data('oc_codes', '\x', '{"conflict_target": ["id"]}')$$);
SELECT try($$SELECT ingest.enqueue_data('oc_codes', '\x', '{"on_conflict": "nothing", "conflict_target": 5}')$$);
SELECT try($$SELECT ingest.enqueue_data('oc_codes', '\x', '{"on_conflict": "nothing", "conflict_target": []}')$$);
SELECT try($$SELECT ingest.enqueue_data('oc_codes', '\x', '{"on_conflict": "nothing", "conflict_target": ["site"]}')$$);
SELECT try($$SELECT ingest.enqueue_data('oc_codes', '\x', '{"on_conflict": "nothing", "conflict_target": ["nope"]}')$$);
SELECT try($$SELECT ingest.enqueue_data('oc_codes', '\x', '{"on_conflict": "nothing", "conflict_target": ["id", "id"]}')$$);
SELECT try_detail($$SELECT ingest.enqueue_data('oc_codes', '\x', '{"on_conflict": "nothing", "conflict_target": ["label"]}')$$);
SELECT try($$SELECT ingest.enqueue_data('oc_codes', '\x', '{"on_conflict": "nothing", "conflict_target": "no_such"}')$$);
ALTER TABLE oc_codes ADD CONSTRAINT oc_codes_label_check CHECK (label <> 'bad');
SELECT try($$SELECT ingest.enqueue_data('oc_codes', '\x', '{"on_conflict": "nothing", "conflict_target": "oc_codes_label_check"}')$$);
CREATE TABLE oc_deferred_keys (k int UNIQUE DEFERRABLE, v int);
SELECT try($$SELECT ingest.enqueue_data('oc_deferred_keys', '\x', '{"on_conflict": "nothing", "conflict_target": "oc_deferred_keys_k_key"}')$$);
-- no primary key: on_conflict needs a conflict_target (error needs none)
CREATE TABLE oc_no_pk (k int UNIQUE, v int);
SELECT try($$SELECT ingest.enqueue_data('oc_no_pk', '\x', '{"on_conflict": "nothing"}')$$);
SELECT try($$SELECT ingest.enqueue_data('oc_no_pk', '\x', '{"on_conflict": "update"}')$$);
SELECT ingest.enqueue_data('oc_no_pk', csv(E'k,v\n1,1\n'), '{"on_conflict": "update", "conflict_target": ["k"]}') AS id \gset
SELECT ingest.wait(:id);
SELECT ingest.enqueue_data('oc_no_pk', csv(E'k,v\n1,2\n'), '{"on_conflict": "update", "conflict_target": ["k"]}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM counts(:id);
SELECT * FROM oc_no_pk;
-- the arbiter dropped while the job waited: the worker checks again and fails the job
BEGIN;
SELECT ingest.enqueue_data('oc_no_pk', csv(E'k,v\n1,3\n'), '{"on_conflict": "update", "conflict_target": ["k"]}') AS id \gset
ALTER TABLE oc_no_pk DROP CONSTRAINT oc_no_pk_k_key;
COMMIT;
SELECT ingest.wait(:id);
SELECT state, rows_inserted, last_error FROM ingest.upload_jobs WHERE id = :id;

-- 6. privileges: INSERT ... ON CONFLICT reads the conflict target's columns (SELECT);
--    update also needs SELECT and UPDATE on the columns it sets (not the target's)
GRANT INSERT ON oc_items TO regress_plain;
SET ROLE regress_plain;
SELECT try_detail($$SELECT ingest.enqueue_data('oc_items', '\x', '{"on_conflict": "nothing"}')$$);
RESET ROLE;
GRANT SELECT ON oc_items TO regress_plain;
SET ROLE regress_plain;
SELECT try($$SELECT ingest.enqueue_data('oc_items', '\x', '{"on_conflict": "update", "columns": ["id", "name", "qty"], "header": false}')$$);
-- header decides the columns: the role needs UPDATE on some column
SELECT try($$SELECT ingest.enqueue_data('oc_items', '\x', '{"on_conflict": "update"}')$$);
-- nothing updates nothing: INSERT is enough
SELECT ingest.enqueue_data('oc_items', csv(E'id,name,qty\n1,x,1\n'), '{"on_conflict": "nothing"}') AS id \gset
RESET ROLE;
GRANT UPDATE (qty) ON oc_items TO regress_plain;
SET ROLE regress_plain;
SELECT ingest.wait(:id);
SELECT * FROM counts(:id);
SELECT try($$SELECT ingest.enqueue_data('oc_items', '\x', '{"on_conflict": "update", "columns": ["id", "name", "qty"], "header": false}')$$);
SELECT ingest.enqueue_data('oc_items', csv(E'1,99\n'), '{"on_conflict": "update", "columns": ["id", "qty"], "header": false}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM counts(:id);
-- from the header: the worker checks the columns the header names
SELECT ingest.enqueue_data('oc_items', csv(E'id,name,qty\n1,renamed,98\n'), '{"on_conflict": "update", "max_errors": 5}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, rows_rejected, last_error FROM ingest.upload_jobs WHERE id = :id;
-- revoked while the job waited: the worker refuses it, the row is unchanged
RESET ROLE;
BEGIN;
SET ROLE regress_plain;
SELECT ingest.enqueue_data('oc_items', csv(E'1,97\n'), '{"on_conflict": "update", "columns": ["id", "qty"], "header": false}') AS id \gset
RESET ROLE;
REVOKE UPDATE (qty) ON oc_items FROM regress_plain;
COMMIT;
SELECT ingest.wait(:id);
SELECT state, rows_inserted, last_error FROM ingest.upload_jobs WHERE id = :id;
SELECT * FROM oc_items WHERE id = 1;
REVOKE ALL ON oc_items FROM regress_plain;

-- 7. row-level security: an UPDATE policy keeps one tenant from updating another's row
--    through a conflict; the record is rejected, the row unchanged
CREATE TABLE oc_shared_keys (
    id     int PRIMARY KEY,
    tenant text NOT NULL DEFAULT current_setting('app.tenant'),
    val    text
);
ALTER TABLE oc_shared_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY sk_select ON oc_shared_keys FOR SELECT USING (tenant = current_setting('app.tenant'));
CREATE POLICY sk_insert ON oc_shared_keys FOR INSERT WITH CHECK (tenant = current_setting('app.tenant'));
CREATE POLICY sk_update ON oc_shared_keys FOR UPDATE USING (tenant = current_setting('app.tenant'))
    WITH CHECK (tenant = current_setting('app.tenant'));
GRANT SELECT, INSERT, UPDATE ON oc_shared_keys TO regress_tenant_a, regress_tenant_b;
INSERT INTO oc_shared_keys VALUES (1, 'b', 'b owns 1'), (2, 'a', 'a owns 2');
SET ingest.tenant_key = 'app.tenant';
SET ROLE regress_tenant_a;
SET app.tenant = 'a';
SELECT ingest.enqueue_data('oc_shared_keys', csv(E'id,val\n1,a was here\n2,a updates 2\n3,a new 3\n'),
       '{"on_conflict": "update", "max_errors": 5}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM counts(:id);
SELECT line_number, sqlstate, message FROM ingest.job_errors WHERE job_id = :id;
RESET ROLE;
SELECT * FROM oc_shared_keys ORDER BY id;
-- with nothing, the other tenant's key is skipped (not updated, not listed)
SET ROLE regress_tenant_a;
SELECT ingest.enqueue_data('oc_shared_keys', csv(E'id,val\n1,again\n4,a new 4\n'),
       '{"on_conflict": "nothing"}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM counts(:id);
-- tenant b sees neither job (nor its counters)
SET app.tenant = 'b';
SELECT count(*) FROM ingest.upload_jobs WHERE id = :id;
RESET ROLE;
RESET app.tenant;
RESET ingest.tenant_key;
SELECT * FROM oc_shared_keys ORDER BY id;

-- 8. a BEFORE trigger that returns NULL: the record is skipped too, whatever on_conflict
CREATE TABLE oc_filtered (id int PRIMARY KEY, v int);
CREATE FUNCTION drop_odd() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.v % 2 = 1 THEN RETURN NULL; END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER drop_odd BEFORE INSERT ON oc_filtered FOR EACH ROW EXECUTE FUNCTION drop_odd();
SELECT ingest.enqueue_data('oc_filtered', csv(E'id,v\n1,1\n2,2\n3,3\n4,x\n'), '{"max_errors": 1}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM counts(:id);

-- 9. every record rejected: failed, with a message that says so; ingest.retry, once the
--    cause is fixed, loads the file from its first record. A file of a header only, and
--    one whose records were all skipped, still succeed.
CREATE TABLE oc_strict_v (id int PRIMARY KEY, v int CHECK (v > 100));
SELECT ingest.enqueue_data('oc_strict_v', csv(E'id,v\n1,1\n2,2\n'), '{"max_errors": 5, "commit_every": 1}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, rows_rejected, rows_skipped, records_done, last_error
  FROM ingest.upload_jobs WHERE id = :id;
SELECT count(*) AS error_rows FROM ingest.job_errors WHERE job_id = :id;
ALTER TABLE oc_strict_v DROP CONSTRAINT oc_strict_v_v_check;
SELECT ingest.retry(:id);
SELECT ingest.wait(:id);
SELECT * FROM counts(:id);
SELECT count(*) AS error_rows FROM ingest.job_errors WHERE job_id = :id;
SELECT * FROM oc_strict_v ORDER BY id;
SELECT ingest.enqueue_data('oc_strict_v', csv(E'id,v\n'), '{"max_errors": 5}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM counts(:id);

-- 10. max_errors exceeded: rows_rejected counts every rejected record (1001), job_errors
--     keeps them up to ingest.max_error_rows (10000 here, then 50), last_error agrees
CREATE TABLE oc_many_bad (v int);
SELECT ingest.enqueue_data('oc_many_bad', csv('v' || E'\n' || string_agg('x' || i, E'\n') || E'\n'),
       '{"max_errors": 1000}') AS id
  FROM generate_series(1, 1001) i \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, rows_rejected, last_error FROM ingest.upload_jobs WHERE id = :id;
SELECT count(*) AS error_rows FROM ingest.job_errors WHERE job_id = :id;
ALTER SYSTEM SET ingest.max_error_rows = 50;
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SELECT ingest.enqueue_data('oc_many_bad', csv('v' || E'\n' || string_agg('x' || i, E'\n') || E'\n'),
       '{"max_errors": 1000, "commit_every": 300}') AS id
  FROM generate_series(1, 1001) i \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, rows_rejected, last_error FROM ingest.upload_jobs WHERE id = :id;
SELECT count(*) AS error_rows FROM ingest.job_errors WHERE job_id = :id;
ALTER SYSTEM RESET ingest.max_error_rows;
SELECT pg_reload_conf();

-- every succeeded job of this suite: inserted + rejected + skipped = records
SELECT count(*) AS succeeded, count(*) FILTER (WHERE rows_inserted + rows_rejected + rows_skipped = records_done) AS adding_up
  FROM ingest.upload_jobs
 WHERE state = 'succeeded' AND target::text IN ('oc_items', 'oc_codes', 'oc_no_pk', 'oc_shared_keys', 'oc_filtered', 'oc_strict_v');
-- the column is readable like the other counters; stats count skipped rows
SELECT has_column_privilege('regress_plain', 'ingest.upload_jobs', 'rows_skipped', 'SELECT') AS readable;
SELECT rows_skipped_last_hour > 0 AS stats_count_skipped FROM ingest.stats;

DROP TABLE oc_items, oc_codes, oc_deferred_keys, oc_no_pk, oc_shared_keys, oc_filtered, oc_strict_v, oc_many_bad;
DROP FUNCTION drop_odd(), counts(bigint), try_detail(text);
