/* ingest--1.4--1.5.sql: parallel loads without commit_every, by two-phase commit (issue 14) */

\echo Use "ALTER EXTENSION ingest UPDATE TO '1.5'" to load this file. \quit

/*
 * A part of an all-or-nothing job is prepared ('prepared', under a random global
 * identifier), then committed with the others ('done') or rolled back with them; a part
 * that cannot be prepared beside the others ('serial') sends the job to one worker.
 */
ALTER TABLE ingest_private.job_parts DROP CONSTRAINT job_parts_state_check;
ALTER TABLE ingest_private.job_parts ADD CONSTRAINT job_parts_state_check
    CHECK (state IN ('queued', 'running', 'prepared', 'done', 'failed', 'serial'));
ALTER TABLE ingest_private.job_parts ADD COLUMN gid text UNIQUE;

/*
 * Jobs queued while the extension waited for this update start when it commits.
 */
SELECT ingest._wake_workers();
