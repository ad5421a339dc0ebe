-- 01_setup: the extension's objects, and the roles and helpers the later suites use.
-- (pg_regress runs the suites in name order, each in its own session, in one database
-- of a temporary instance started with test/regress.conf: ingest preloaded.)
CREATE EXTENSION ingest;
SELECT extname, extversion, extnamespace::regnamespace FROM pg_extension WHERE extname = 'ingest';

-- the views of the contract in schema ingest; the tables (RLS on) in ingest_private, which
-- no role but the extension's owner may use
SELECT c.relnamespace::regnamespace AS schema, c.relname, c.relkind, c.relrowsecurity
  FROM pg_class c
 WHERE c.relnamespace IN ('ingest'::regnamespace, 'ingest_private'::regnamespace)
   AND c.relkind IN ('r', 'v')
 ORDER BY 1, 2;
SELECT has_schema_privilege('public', 'ingest_private', 'USAGE') AS public_uses_private,
       has_schema_privilege('public', 'ingest', 'USAGE') AS public_uses_ingest;

SELECT attname, format_type(atttypid, atttypmod) AS type
  FROM pg_attribute
 WHERE attrelid = 'ingest.upload_jobs'::regclass AND attnum > 0 AND NOT attisdropped
 ORDER BY attnum;

SELECT attname, format_type(atttypid, atttypmod) AS type
  FROM pg_attribute
 WHERE attrelid = 'ingest.job_errors'::regclass AND attnum > 0 AND NOT attisdropped
 ORDER BY attnum;

SELECT attname, format_type(atttypid, atttypmod) AS type
  FROM pg_attribute
 WHERE attrelid = 'ingest.workers'::regclass AND attnum > 0 AND NOT attisdropped
 ORDER BY attnum;

-- the user-facing functions; PUBLIC may execute them all
SELECT p.oid::regprocedure AS function, pg_get_function_result(p.oid) AS result,
       EXISTS (SELECT 1 FROM aclexplode(p.proacl) a
                WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE') AS public_execute
  FROM pg_proc p
 WHERE p.pronamespace = 'ingest'::regnamespace AND p.proname NOT LIKE '\_%'
 ORDER BY p.proname;

-- the defaults of enqueue's options argument
SELECT p.oid::regprocedure, pg_get_function_arguments(p.oid)
  FROM pg_proc p
 WHERE p.pronamespace = 'ingest'::regnamespace AND p.proname IN ('enqueue_data', 'enqueue_file', 'wait')
 ORDER BY p.proname;

-- ingest_admin exists and cannot log in
SELECT rolname, rolcanlogin, rolsuper FROM pg_roles WHERE rolname = 'ingest_admin';

-- GUCs (test/regress.conf sets max_workers and allowed_dirs)
SHOW ingest.max_workers;
SHOW ingest.allowed_dirs;

-- the launcher is running (started by shared_preload_libraries)
SELECT count(*) AS launchers
  FROM pg_stat_activity
 WHERE backend_type ILIKE '%ingest%launcher%';

-- The roles of the suites. None can log in: a job's owner needs no LOGIN.
CREATE ROLE regress_tenant_a NOLOGIN;
CREATE ROLE regress_tenant_b NOLOGIN;
CREATE ROLE regress_plain NOLOGIN;
CREATE ROLE regress_auditor NOLOGIN IN ROLE ingest_admin;
CREATE ROLE regress_filer NOLOGIN IN ROLE pg_read_server_files;

-- Helpers used by the later suites.
-- csv(text): the UTF-8 bytes of a text, for enqueue_data.
CREATE FUNCTION public.csv(text) RETURNS bytea
    LANGUAGE sql IMMUTABLE STRICT
    AS $$ SELECT pg_catalog.convert_to($1, 'UTF8') $$;
-- job(id): the outcome of a job, as the caller sees it (RLS applies: SECURITY INVOKER).
CREATE FUNCTION public.job(bigint,
    OUT state text, OUT attempts int, OUT rows_inserted bigint, OUT rows_rejected bigint,
    OUT last_error text)
    LANGUAGE sql STABLE
    AS $$ SELECT state, attempts, rows_inserted, rows_rejected, last_error
            FROM ingest.upload_jobs WHERE id = $1 $$;
-- errors(id): the rejected records of a job, in line order, newlines shown as \n.
CREATE FUNCTION public.errors(bigint,
    OUT line_number bigint, OUT sqlstate text, OUT message text, OUT raw_line text)
    RETURNS SETOF record
    LANGUAGE sql STABLE
    AS $$ SELECT line_number, sqlstate, message, replace(raw_line, E'\n', '\n')
            FROM ingest.job_errors WHERE job_id = $1
           ORDER BY line_number, message $$;
-- try(sql): run a statement as the current role; 'ok', or its SQLSTATE and message with
-- numbers masked (job ids in messages depend on how many jobs ran before).
CREATE FUNCTION public.try(sql text) RETURNS text
    LANGUAGE plpgsql
    AS $$
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || regexp_replace(SQLERRM, '[0-9]+', 'N', 'g');
END $$;
-- wait_for_state(id, state): true once the job is in that state (false after timeout).
CREATE FUNCTION public.wait_for_state(job bigint, wanted text, timeout interval DEFAULT '30 s')
    RETURNS boolean
    LANGUAGE plpgsql
    AS $$
DECLARE
    deadline timestamptz := clock_timestamp() + timeout;
BEGIN
    LOOP
        IF (SELECT state FROM ingest.upload_jobs WHERE id = job) = wanted THEN
            RETURN true;
        END IF;
        IF clock_timestamp() >= deadline THEN
            RETURN false;
        END IF;
        PERFORM pg_sleep(0.02);
    END LOOP;
END $$;
GRANT EXECUTE ON FUNCTION public.csv(text), public.job(bigint), public.errors(bigint),
    public.try(text), public.wait_for_state(bigint, text, interval) TO PUBLIC;
