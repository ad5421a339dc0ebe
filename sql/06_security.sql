-- 06_security: rows are inserted as the job's owner with the enqueuing session's settings:
-- RLS, column privileges, triggers, defaults, partition routing; each role sees only its
-- own jobs; members of ingest_admin see and cancel all.
CREATE TABLE tenant_rows (
    tenant      text NOT NULL DEFAULT current_setting('app.tenant'),
    id          int NOT NULL,
    val         text,
    inserted_by name NOT NULL DEFAULT current_user,
    PRIMARY KEY (tenant, id)
);
ALTER TABLE tenant_rows ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_rows
    USING (tenant = current_setting('app.tenant'))
    WITH CHECK (tenant = current_setting('app.tenant'));
GRANT SELECT, INSERT ON tenant_rows TO regress_tenant_a, regress_tenant_b;

-- Tenant a loads a file that also holds a row of tenant b: the policy rejects that row
-- (recorded in job_errors), the others get in. app.tenant is captured at enqueue:
-- changing it afterwards changes nothing.
SET ROLE regress_tenant_a;
SET app.tenant = 'a';
SELECT ingest.enqueue_data('tenant_rows',
       csv(E'tenant,id,val\na,1,mine\nb,2,theirs\na,3,mine too\n'),
       '{"max_errors": 5}') AS id_a \gset
SET app.tenant = 'b';
SELECT ingest.wait(:id_a);
SELECT owner, target, state, rows_inserted, rows_rejected FROM ingest.upload_jobs WHERE id = :id_a;
SELECT * FROM errors(:id_a);
SET app.tenant = 'a';
SELECT * FROM tenant_rows ORDER BY tenant, id;
-- the tenant column filled from the captured app.tenant by its default
SELECT ingest.enqueue_data('tenant_rows', csv(E'id,val\n4,defaulted\n')) AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM tenant_rows ORDER BY tenant, id;
-- max_errors 0: the policy violation fails the job and nothing of it stays
SELECT ingest.enqueue_data('tenant_rows', csv(E'tenant,id,val\na,5,ok\nb,6,nope\n')) AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, last_error FROM ingest.upload_jobs WHERE id = :id;
SELECT count(*) FROM tenant_rows WHERE id IN (5, 6);
RESET ROLE;
RESET app.tenant;
-- what is in the table (a superuser bypasses RLS): nothing of tenant b
SELECT * FROM tenant_rows ORDER BY tenant, id;

-- FORCE ROW LEVEL SECURITY: the policy binds the table owner too
CREATE TABLE forced (tenant text NOT NULL, id int);
ALTER TABLE forced OWNER TO regress_tenant_b;
ALTER TABLE forced ENABLE ROW LEVEL SECURITY;
ALTER TABLE forced FORCE ROW LEVEL SECURITY;
CREATE POLICY forced_tenant ON forced USING (tenant = current_setting('app.tenant'));
SET ROLE regress_tenant_b;
SET app.tenant = 'b';
SELECT ingest.enqueue_data('forced', csv(E'tenant,id\nb,1\na,2\nb,3\n'), '{"max_errors": 1}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT line_number, sqlstate FROM errors(:id);
SELECT * FROM forced ORDER BY id;
RESET ROLE;
RESET app.tenant;

-- With app.tenant reset in the enqueuing session (so empty) the policy matches no tenant:
-- every row is rejected (the worker does not keep or invent a value), and a job that
-- loaded nothing because every record was rejected fails.
SET ROLE regress_tenant_a;
SELECT ingest.enqueue_data('tenant_rows', csv(E'tenant,id,val\na,7,x\n'), '{"max_errors": 5}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, rows_rejected FROM ingest.upload_jobs WHERE id = :id;
-- (the SQLSTATE says the policy rejected the row, or that app.tenant was never defined in
-- the worker that ran the job)
SELECT line_number, sqlstate IN ('42501', '42704') AS rejected FROM errors(:id);
RESET ROLE;

-- Another role sees nothing of tenant a's job and cannot wait on or cancel it.
SET ROLE regress_tenant_b;
SELECT count(*) FROM ingest.upload_jobs WHERE id = :id_a;
SELECT count(*) FROM ingest.job_errors WHERE job_id = :id_a;
SELECT try(format('SELECT ingest.wait(%s)', :id_a));
SELECT try(format('SELECT ingest.cancel(%s)', :id_a));
-- job_data of anyone is closed to it
SELECT count(*) FROM ingest_private.job_data;
RESET ROLE;

-- A member of ingest_admin sees every job and every rejected row.
SET ROLE regress_auditor;
SELECT owner, state FROM ingest.upload_jobs WHERE id = :id_a;
SELECT count(*) FROM ingest.job_errors WHERE job_id = :id_a;
RESET ROLE;

-- A queued job of tenant a (uncommitted, so no worker takes it): tenant b cannot cancel
-- it; an ingest_admin member can.
BEGIN;
SET LOCAL ROLE regress_tenant_a;
SET LOCAL app.tenant = 'a';
SELECT ingest.enqueue_data('tenant_rows', csv(E'id,val\n8,queued\n')) AS id_q \gset
SET LOCAL ROLE regress_tenant_b;
SELECT try(format('SELECT ingest.cancel(%s)', :id_q));
SET LOCAL ROLE regress_tenant_a;
SELECT state FROM ingest.upload_jobs WHERE id = :id_q;
SET LOCAL ROLE regress_auditor;
SELECT state FROM ingest.upload_jobs WHERE id = :id_q;
SELECT ingest.cancel(:id_q);
SELECT state FROM ingest.upload_jobs WHERE id = :id_q;
COMMIT;
SELECT state, rows_inserted FROM ingest.upload_jobs WHERE id = :id_q;
SELECT ingest.wait(:id_q);

-- Users cannot write the extension's tables themselves (the owner column above all).
SET ROLE regress_tenant_a;
UPDATE ingest.upload_jobs SET owner = 'regress_auditor' WHERE id = :id_a;
INSERT INTO ingest.upload_jobs (owner, target, source, source_type)
    VALUES ('regress_tenant_a', 'tenant_rows', 'x', 'data');
DELETE FROM ingest.job_errors;
INSERT INTO ingest_private.job_data VALUES (:id_a, '\x00');
-- nor call the functions the worker's INSERT uses
SELECT * FROM ingest._batch_rows() AS t(i int, a int);
SELECT ingest._batch_mark(1);
RESET ROLE;

-- Column privileges: the role may insert (id, public_note) only.
CREATE TABLE colpriv (id int PRIMARY KEY, public_note text, internal text DEFAULT 'by default');
GRANT SELECT ON colpriv TO regress_tenant_a;
GRANT INSERT (id, public_note) ON colpriv TO regress_tenant_a;
SET ROLE regress_tenant_a;
SELECT ingest.enqueue_data('colpriv', csv(E'1,x,y\n'),
       '{"header": false, "columns": ["id", "public_note", "internal"]}');
SELECT ingest.enqueue_data('colpriv', csv(E'public_note,id\nnote,1\n')) AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM colpriv;
RESET ROLE;

-- A privilege revoked between enqueue and run: the job runs with the owner's privileges
-- of that moment, so it fails and loads nothing.
CREATE TABLE revoked (id int);
GRANT INSERT ON revoked TO regress_tenant_a;
BEGIN;
SET LOCAL ROLE regress_tenant_a;
SELECT ingest.enqueue_data('revoked', csv(E'id\n1\n')) AS id \gset
RESET ROLE;
REVOKE INSERT ON revoked FROM regress_tenant_a;
COMMIT;
SELECT ingest.wait(:id);
SELECT state, rows_inserted, last_error FROM ingest.upload_jobs WHERE id = :id;
SELECT count(*) FROM revoked;

-- Settings re-applied in the worker: DateStyle, TimeZone, IntervalStyle, search_path and
-- custom settings (app.*, request.jwt.claims); triggers and defaults run as the owner.
CREATE SCHEMA regress_app;
CREATE TABLE regress_app.audit (msg text, who name DEFAULT current_user);
CREATE TABLE probe (
    id     int,
    d      date,
    ts     timestamptz,
    iv     interval,
    tenant text DEFAULT current_setting('app.tenant', true),
    sub    text DEFAULT current_setting('request.jwt.claims', true)::json ->> 'sub',
    who    name DEFAULT current_user,
    path   text DEFAULT current_setting('search_path')
);
-- the trigger's unqualified "audit" resolves only with the enqueuing session's search_path
CREATE FUNCTION probe_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit (msg) VALUES ('row ' || NEW.id || ' val ' || upper(coalesce(NEW.tenant, '?')));
    NEW.tenant := upper(NEW.tenant);
    RETURN NEW;
END $$;
CREATE TRIGGER probe_audit BEFORE INSERT ON probe FOR EACH ROW EXECUTE FUNCTION probe_audit();
GRANT USAGE ON SCHEMA regress_app TO regress_tenant_a;
GRANT INSERT, SELECT ON regress_app.audit, probe TO regress_tenant_a;

SET ROLE regress_tenant_a;
SET DateStyle = 'ISO, DMY';
SET TimeZone = 'Asia/Tokyo';
SET IntervalStyle = 'sql_standard';
SET search_path = regress_app, public;
SET app.tenant = 'acme';
SET request.jwt.claims = '{"sub": "user-42", "role": "web"}';
SELECT ingest.enqueue_data('probe', csv(E'id,d,ts,iv\n1,03/04/2024,2024-01-01 09:00,-1 2:03:04\n')) AS id \gset
RESET DateStyle;
RESET TimeZone;
RESET IntervalStyle;
RESET search_path;
RESET app.tenant;
RESET request.jwt.claims;
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
RESET ROLE;
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, MDY';
SET IntervalStyle = 'postgres';
-- 3 April (DMY), 00:00 UTC (09:00 in Tokyo), all fields negative (sql_standard)
SELECT id, d, ts, iv, tenant, sub, who, path FROM probe;
SELECT msg, who FROM regress_app.audit;
RESET TimeZone;
RESET DateStyle;
RESET IntervalStyle;

-- Partition routing, and a row that fits no partition is rejected
CREATE TABLE parted (region text NOT NULL, id int) PARTITION BY LIST (region);
CREATE TABLE parted_eu PARTITION OF parted FOR VALUES IN ('eu');
CREATE TABLE parted_us PARTITION OF parted FOR VALUES IN ('us');
SELECT ingest.enqueue_data('parted', csv(E'region,id\neu,1\nus,2\nmars,3\neu,4\n'), '{"max_errors": 1}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT line_number, sqlstate FROM errors(:id);
SELECT tableoid::regclass, * FROM parted ORDER BY id;

-- A SECURITY DEFINER function enqueues as its owner (the effective role), not the caller
CREATE TABLE definer_target (id int, who name DEFAULT current_user);
GRANT INSERT, SELECT ON definer_target TO regress_tenant_b;
CREATE FUNCTION enqueue_as_b(bytea) RETURNS bigint LANGUAGE sql SECURITY DEFINER
    AS $$ SELECT ingest.enqueue_data('public.definer_target', $1) $$;
ALTER FUNCTION enqueue_as_b(bytea) OWNER TO regress_tenant_b;
SET ROLE regress_plain;
SELECT enqueue_as_b(csv(E'id\n1\n')) AS id \gset
SELECT count(*) FROM ingest.upload_jobs WHERE id = :id;
RESET ROLE;
SELECT ingest.wait(:id);
SELECT owner, state FROM ingest.upload_jobs WHERE id = :id;
SELECT * FROM definer_target;

-- A table in a schema the role has no USAGE on: the role cannot insert into it in its own
-- session, and not through ingest either, even when it passes the table's OID: refused at
-- enqueue, and nothing is queued.
CREATE SCHEMA regress_hidden;
CREATE TABLE regress_hidden.t (id int);
GRANT INSERT, SELECT ON regress_hidden.t TO regress_tenant_a;
SET ROLE regress_tenant_a;
SELECT try('INSERT INTO regress_hidden.t VALUES (0)');
SELECT try($$SELECT ingest.enqueue_data('regress_hidden.t', csv(E'id\n1\n'))$$);
SELECT c.oid AS hidden_oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'regress_hidden' AND c.relname = 't' \gset
SELECT count(*) AS jobs_before FROM ingest.upload_jobs \gset
SELECT try(format('SELECT ingest.enqueue_data(%s, %L::bytea)', :hidden_oid, E'id\n1\n'));
SELECT count(*) - :jobs_before AS jobs_queued FROM ingest.upload_jobs;
RESET ROLE;
SELECT count(*) FROM regress_hidden.t;
