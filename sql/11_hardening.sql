-- 11_hardening: what a hostile owner can try through a job, and what it gets.
CREATE ROLE regress_mallory NOLOGIN;
CREATE SCHEMA regress_evil AUTHORIZATION regress_mallory;
CREATE TABLE hard_t (id bigint, v text);
GRANT INSERT, SELECT ON hard_t TO regress_mallory;

-- An operator of the owner's own, first on its search_path, is never run by the
-- extension's bookkeeping (which runs as the extension's owner): it would make the role
-- a superuser if it were.
SET ROLE regress_mallory;
CREATE FUNCTION regress_evil.eq(bigint, bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    EXECUTE 'ALTER ROLE regress_mallory SUPERUSER';
  END IF;
  RETURN $1 OPERATOR(pg_catalog.=) $2;
END $$;
CREATE OPERATOR regress_evil.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = regress_evil.eq);
SET search_path = regress_evil, pg_catalog, public;
SELECT ingest.enqueue_data('public.hard_t', csv(E'id,v\n1,a\n')) AS id \gset
SELECT ingest.cancel(:id) IS NOT NULL AS cancel_called;
SELECT ingest.enqueue_data('public.hard_t', csv(E'id,v\n2,b\n')) AS id \gset
SELECT ingest.wait(:id);
RESET search_path;
RESET ROLE;
SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_mallory';
SELECT count(*) FILTER (WHERE id = 2) AS second_job_loaded FROM hard_t;

-- A trigger that reads the worker's batch with a column list of its own is refused: the
-- job fails with a message, the server stays up, and the next job runs.
SET ROLE regress_mallory;
CREATE TABLE regress_evil.peek (id int, v text);
CREATE FUNCTION regress_evil.peek() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM * FROM ingest._batch_rows() AS b(rn int, c1 text, c2 text);
  RETURN NEW;
END $$;
CREATE TRIGGER peek BEFORE INSERT ON regress_evil.peek
  FOR EACH ROW EXECUTE FUNCTION regress_evil.peek();
SELECT ingest.enqueue_data('regress_evil.peek', csv(E'id,v\n1,a\n')) AS id \gset
SELECT ingest.wait(:id);
SELECT state, last_error FROM ingest.upload_jobs WHERE id = :id;
-- called outside a worker, it refuses too
SELECT try('SELECT * FROM ingest._batch_rows() AS b(rn int, c1 int)');
SELECT try('SELECT ingest._batch_mark(1)');
DROP TRIGGER peek ON regress_evil.peek;
-- Nor does a function the planner runs while it plans the worker's INSERT (an IMMUTABLE
-- default is folded then): its query is not the INSERT, so it calls the function, which
-- the owner may not execute: the rows are not seen, and the planning fails as it would for
-- the owner's own INSERT.
CREATE FUNCTION regress_evil.peek_default() RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE s text;
BEGIN
  SELECT string_agg(format('%s:%s', c1, c2), ' ') INTO s
    FROM ingest._batch_rows() AS b(rn int, c1 int, c2 text);
  RAISE EXCEPTION 'peeked: %', s;
END $$;
CREATE TABLE regress_evil.peek2 (id int, v text, d int DEFAULT regress_evil.peek_default());
SELECT ingest.enqueue_data('regress_evil.peek2', csv(E'id,v\n1,hello\n2,world\n'),
                           '{"max_errors": 5}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, rows_rejected, last_error FROM ingest.upload_jobs WHERE id = :id;
SELECT count(*) AS peeked FROM ingest.job_errors WHERE job_id = :id AND message LIKE '%peeked%';
SELECT DISTINCT message FROM ingest.job_errors WHERE job_id = :id;
DROP TABLE regress_evil.peek2;

-- A setting a trigger sets for the session (set_config(..., false)) does not reach the
-- next job, whoever owns it.
CREATE FUNCTION regress_evil.leak() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('app.regress_leak', 'leaked', false);
  PERFORM set_config('search_path', 'regress_evil', false);
  RETURN NEW;
END $$;
CREATE TRIGGER leak BEFORE INSERT ON regress_evil.peek
  FOR EACH ROW EXECUTE FUNCTION regress_evil.leak();
SELECT ingest.enqueue_data('regress_evil.peek', csv(E'id,v\n2,b\n')) AS id \gset
SELECT ingest.wait(:id);
RESET ROLE;
CREATE TABLE hard_leak (id int,
    seen text DEFAULT coalesce(current_setting('app.regress_leak', true), '<unset>'),
    path text DEFAULT current_setting('search_path'));
-- max_workers may hand this job to another worker; either way nothing may leak
SELECT ingest.enqueue_data('hard_leak', csv(E'id\n1\n')) AS id \gset
SELECT ingest.wait(:id);
SELECT id, seen IN ('', '<unset>') AS not_leaked, path FROM hard_leak;

-- Deferred triggers run at commit: still as the owner, with the job's settings, never as
-- the worker's superuser (a deferred trigger that tried ALTER ROLE would fail).
SET ROLE regress_mallory;
CREATE TABLE regress_evil.deferred (id int);
CREATE TABLE regress_evil.seen (who name, tenant text, super boolean);
CREATE FUNCTION regress_evil.at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO regress_evil.seen
    SELECT current_user, current_setting('app.regress_tenant', true), rolsuper
      FROM pg_roles WHERE rolname = current_user;
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER at_commit AFTER INSERT ON regress_evil.deferred
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION regress_evil.at_commit();
SET app.regress_tenant = 'acme';
SELECT ingest.enqueue_data('regress_evil.deferred', csv(E'id\n1\n2\n')) AS id \gset
SELECT ingest.wait(:id);
SELECT who, tenant, super FROM regress_evil.seen;
RESET app.regress_tenant;
RESET ROLE;

-- A record with far more fields than any table can have is rejected without being held
-- in memory; the records around it load.
CREATE TABLE hard_wide (a int, b int);
SELECT ingest.enqueue_data('hard_wide',
       csv(E'a,b\n1,1\n' || repeat('x,', 20000) || E'x\n2,2\n'), '{"max_errors": 1}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, rows_rejected FROM ingest.upload_jobs WHERE id = :id;
SELECT line_number, sqlstate, message FROM ingest.job_errors WHERE job_id = :id;
SELECT * FROM hard_wide ORDER BY a;

-- cancelling a running load with commit_every: it stops early, ends cancelled, and the
-- table holds exactly the batches the job says it committed
CREATE TABLE hard_slow (id int);
CREATE FUNCTION hard_slow_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(0.02); RETURN NEW; END $$;
CREATE TRIGGER slow BEFORE INSERT ON hard_slow FOR EACH ROW EXECUTE FUNCTION hard_slow_trg();
SELECT ingest.enqueue_data('hard_slow', csv(E'id\n' || (SELECT string_agg(g::text, E'\n') FROM generate_series(1, 2000) g)),
       '{"commit_every": 50}') AS id \gset
SELECT wait_for_state(:id, 'running');
SELECT ingest.cancel(:id);
SELECT ingest.wait(:id);
SELECT state, last_error, rows_inserted < 2000 AS stopped_early,
       rows_inserted % 50 = 0 AS whole_batches_only
  FROM ingest.upload_jobs WHERE id = :id;
SELECT count(*) = (SELECT rows_inserted FROM ingest.upload_jobs WHERE id = :id) AS table_matches_job
  FROM hard_slow;

DROP TABLE hard_t, hard_leak, hard_wide, hard_slow;
DROP FUNCTION hard_slow_trg();
DROP SCHEMA regress_evil CASCADE;
DROP ROLE regress_mallory;
