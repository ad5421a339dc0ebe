-- 16_context: a load gives exactly what an INSERT ... SELECT of the same text from the
-- enqueuing session gives, for each class of setting: time zone abbreviations,
-- array_nulls, xmloption, DateStyle, IntervalStyle, search_path, a custom setting, a
-- setting made by a function's SET clause, a role's ALTER ROLE ... SET default. The
-- settings that must not travel (identity, transaction, timeouts, logging, connection)
-- are shown not to.
CREATE SCHEMA ctx_a;
CREATE SCHEMA ctx_b;
CREATE FUNCTION ctx_a.which() RETURNS text LANGUAGE sql AS $$ SELECT 'a' $$;
CREATE FUNCTION ctx_b.which() RETURNS text LANGUAGE sql AS $$ SELECT 'b' $$;
CREATE TABLE ctx (
    how      text NOT NULL,
    t        timetz,
    a        text[],
    x        xml,
    d        date,
    i        interval,
    i_text   text,
    d_text   text,
    path     text DEFAULT current_setting('search_path'),
    via_path text,
    custom   text DEFAULT current_setting('app.ctx', true),
    iso      text DEFAULT current_setting('transaction_isolation'),
    appname  text DEFAULT current_setting('application_name'),
    locktime text DEFAULT current_setting('lock_timeout'),
    ro       text DEFAULT current_setting('transaction_read_only'));
-- ctx.d read from text depends on DateStyle, ctx.t on timezone_abbreviations, ctx.a on
-- array_nulls, ctx.x on xmloption; the trigger writes d and i as text, which depends on
-- DateStyle and IntervalStyle, and which which() the search_path finds
CREATE FUNCTION ctx_texts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.i_text := NEW.i::text;
    NEW.d_text := NEW.d::text;
    EXECUTE 'SELECT which()' INTO NEW.via_path;     -- resolved on the search_path in force
    RETURN NEW;
END $$;
CREATE TRIGGER ctx_texts BEFORE INSERT ON ctx FOR EACH ROW EXECUTE FUNCTION ctx_texts();
\set row 't,a,x,d,i\n10:00 IST,"{""NULL"",a}",<r/>,01/02/2003,1 day 02:00\n'

-- compare(how): the loaded row and the session's own insert of the same text, side by side
-- (the columns of settings that stay behind are looked at apart)
CREATE FUNCTION compare(how_ text) RETURNS TABLE (col text, same boolean, loaded text, inserted text)
LANGUAGE sql AS $$
    SELECT k, l.v IS NOT DISTINCT FROM s.v, l.v, s.v
    FROM (SELECT key AS k, value AS v FROM ctx, jsonb_each_text(to_jsonb(ctx) - '{how,appname,locktime,iso}'::text[])
          WHERE how = how_ || ' load') l
    FULL JOIN (SELECT key AS k, value AS v FROM ctx, jsonb_each_text(to_jsonb(ctx) - '{how,appname,locktime,iso}'::text[])
               WHERE how = how_ || ' insert') s USING (k)
    ORDER BY k
$$;

-- 1. settings of the session itself, of every class
BEGIN;
SET LOCAL timezone_abbreviations = 'India';
SET LOCAL array_nulls = off;
SET LOCAL xmloption = content;
SET LOCAL DateStyle = 'SQL, DMY';
SET LOCAL IntervalStyle = 'sql_standard';
SET LOCAL search_path = ctx_b, public;
SELECT set_config('app.ctx', 'custom value', true);
-- these stay behind
SET LOCAL application_name = 'my app';
SET LOCAL lock_timeout = '3s';
SET LOCAL default_transaction_isolation = 'serializable';
INSERT INTO ctx (how, t, a, x, d, i)
    SELECT 'session insert', '10:00 IST', '{"NULL",a}', '<r/>', '01/02/2003', '1 day 02:00';
SELECT ingest.enqueue_data('ctx', csv(E'how,' || replace(:'row', E'\n1', E'\nsession load,1')))
    AS id \gset
COMMIT;
SELECT ingest.wait(:id);
SELECT * FROM compare('session');
-- what stays behind: the worker's own application_name, no lock_timeout, read committed
SELECT appname = 'my app' AS app_travelled, locktime, iso FROM ctx WHERE how = 'session load';

-- xmloption = document: a value COPY rejects is rejected by the load too
SET xmloption = document;
SELECT ingest.enqueue_data('ctx', csv(E'how,x\nxml doc,<a/><b/>\n'), '{"max_errors": 1}') AS id \gset
SELECT ingest.wait(:id);
SELECT line_number, sqlstate FROM ingest.job_errors WHERE job_id = :id;
RESET xmloption;

-- 2. a setting made by the SET clause of the function that enqueues
CREATE FUNCTION enqueue_dmy(data bytea) RETURNS bigint LANGUAGE sql
    SET DateStyle = 'ISO, DMY' SET search_path = ctx_a, public
    AS $$ SELECT ingest.enqueue_data('ctx', data) $$;
CREATE FUNCTION insert_dmy() RETURNS void LANGUAGE sql
    SET DateStyle = 'ISO, DMY' SET search_path = ctx_a, public
    AS $$ INSERT INTO ctx (how, t, a, x, d, i)
          SELECT 'function insert', '10:00 IST', '{"NULL",a}', '<r/>', '01/02/2003', '1 day 02:00' $$;
SELECT insert_dmy();
-- app.ctx, set LOCAL in 1., reads '' in this session now: a worker that has never met
-- the name must read it so too (workers that ran 1. are ended first)
SELECT bool_and(pg_terminate_backend(pid, 10000)) IS NOT FALSE AS fresh_worker
  FROM pg_stat_activity WHERE backend_type = 'ingest worker' AND datname = current_database();
SELECT enqueue_dmy(csv(E'how,' || replace(:'row', E'\n1', E'\nfunction load,1'))) AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM compare('function') WHERE NOT same;
SELECT d, d_text, via_path FROM ctx WHERE how LIKE 'function%' ORDER BY how;

-- 3. a role's ALTER ROLE ... SET default (applies at login)
CREATE ROLE regress_ctx LOGIN;
GRANT USAGE ON SCHEMA ctx_a, ctx_b TO regress_ctx;
GRANT SELECT, INSERT ON ctx TO regress_ctx;
GRANT EXECUTE ON FUNCTION public.csv(text) TO regress_ctx;
ALTER ROLE regress_ctx SET IntervalStyle = 'postgres_verbose';
ALTER ROLE regress_ctx SET array_nulls = off;
ALTER ROLE regress_ctx SET app.ctx = 'role default';
ALTER ROLE regress_ctx SET search_path = ctx_a, public;
SELECT current_user AS admin_user \gset
\c - regress_ctx
SHOW IntervalStyle;
INSERT INTO ctx (how, t, a, x, d, i)
    SELECT 'role insert', '10:00', '{"NULL",a}', '<r/>', '01/02/2003', '1 day 02:00';
SELECT ingest.enqueue_data('ctx', csv(E'how,t,a,x,d,i\nrole load,10:00,"{""NULL"",a}",<r/>,01/02/2003,1 day 02:00\n')) AS id \gset
SELECT ingest.wait(:id);
\c - :admin_user
SELECT * FROM compare('role') WHERE NOT same;
SELECT i_text, a, custom FROM ctx WHERE how LIKE 'role%' ORDER BY how;

-- the settings captured (readable here: a superuser), of a plain session
SELECT s.key, s.value FROM ingest.upload_jobs j, jsonb_each_text(j.settings) s
 WHERE j.id = :id AND s.key IN ('DateStyle', 'array_nulls', 'app.ctx', 'application_name',
                                'IntervalStyle', 'client_encoding', 'lock_timeout', 'role')
 ORDER BY s.key;

DROP TABLE ctx;
DROP FUNCTION compare(text), enqueue_dmy(bytea), insert_dmy(), ctx_texts();
DROP SCHEMA ctx_a, ctx_b CASCADE;
