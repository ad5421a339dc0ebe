/* ingest--1.3--1.4.sql: re-uploads, drop folders and operations (issue 13) */

\echo Use "ALTER EXTENSION ingest UPDATE TO '1.4'" to load this file. \quit

/*
 * Jobs queued while the extension waited for this update start when it commits.
 */
SELECT ingest._wake_workers();
