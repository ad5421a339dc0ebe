/* ingest--1.1--1.2.sql: walls between jobs (worker deaths counted apart from attempts) */

\echo Use "ALTER EXTENSION ingest UPDATE TO '1.2'" to load this file. \quit

/*
 * Tables
 */
ALTER TABLE ingest.upload_jobs
    ADD COLUMN worker_deaths int NOT NULL DEFAULT 0;

COMMENT ON COLUMN ingest.upload_jobs.worker_deaths IS
    'times the worker running this job died under it (crash, OOM killer, restart); at ingest.max_worker_deaths the job fails, and only an ingest_admin member''s ingest.retry starts the count again';

/*
 * Jobs queued while the extension waited for this update start when it commits.
 */
SELECT ingest._wake_workers();
