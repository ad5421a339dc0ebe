/* ingest--1.3--1.4.sql: re-uploads, drop folders and operations (issue 13) */

\echo Use "ALTER EXTENSION ingest UPDATE TO '1.4'" to load this file. \quit

/*
 * Drop folders: ingest.enqueue_dir, and the files it enqueued (ingest_private.dir_files,
 * read by ingest_admin through the view ingest.dir_files). As in ingest--1.4.sql.
 */
CREATE TABLE ingest_private.dir_files (
    dir         text NOT NULL,
    name        text NOT NULL,
    size        bigint NOT NULL,
    mtime       timestamptz NOT NULL,
    job_id      bigint NOT NULL,
    owner       regrole NOT NULL,
    tenant      text,
    enqueued_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dir, name, size, mtime)
);
ALTER TABLE ingest_private.dir_files
    ALTER COLUMN dir SET STATISTICS 0, ALTER COLUMN name SET STATISTICS 0,
    ALTER COLUMN tenant SET STATISTICS 0;
ALTER TABLE ingest_private.dir_files ENABLE ROW LEVEL SECURITY;
SELECT pg_catalog.pg_extension_config_dump('ingest_private.dir_files', '');
-- a job's reader looks up the identity of the file enqueue_dir enqueued it for
CREATE INDEX dir_files_job_idx ON ingest_private.dir_files (job_id);

CREATE FUNCTION ingest.enqueue_dir(target regclass, dir text, pattern text DEFAULT '*.csv',
                                   options jsonb DEFAULT '{}')
RETURNS SETOF bigint
AS 'MODULE_PATHNAME', 'ingest_enqueue_dir'
LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 10;

CREATE VIEW ingest.dir_files AS
    SELECT f.dir, f.name, f.size, f.mtime, f.job_id, f.owner, f.tenant, f.enqueued_at
    FROM ingest_private.dir_files f;

REVOKE ALL ON ingest_private.dir_files, ingest.dir_files FROM PUBLIC;
GRANT SELECT ON ingest.dir_files TO ingest_admin;
REVOKE ALL ON FUNCTION ingest.enqueue_dir(regclass, text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ingest.enqueue_dir(regclass, text, text, jsonb) TO PUBLIC;

COMMENT ON TABLE ingest_private.dir_files IS
    'the files ingest.enqueue_dir enqueued, one row per (dir, name, size, mtime), kept while the file lies in the directory (ingest.purge keeps them)';
COMMENT ON VIEW ingest.dir_files IS
    'the files ingest.enqueue_dir enqueued (directory, name, size, modification time) and their jobs; for ingest_admin';
COMMENT ON FUNCTION ingest.enqueue_dir(regclass, text, text, jsonb) IS
    'queue a load of each file of a directory on the server (under ingest.allowed_dirs) whose name matches pattern and that was not enqueued before (same name, size and modification time), one job each, in name order; returns the job ids';

/*
 * Jobs queued while the extension waited for this update start when it commits.
 */
SELECT ingest._wake_workers();
