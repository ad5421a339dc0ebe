-- 25_parallel: the "parallel" option. This version loads every file with one worker:
-- false and an absent option load as before; true is refused at enqueue, naming what keeps
-- the source from being split when something does (compression, another encoding, no
-- commit_every without max_prepared_transactions), and nothing is queued.
CREATE TABLE par_t (id int PRIMARY KEY, a text);
GRANT INSERT, SELECT ON par_t TO regress_plain;
SELECT count(*) AS jobs_before FROM ingest.upload_jobs \gset

-- the value must be a boolean
SELECT try($$SELECT ingest.enqueue_data('par_t', csv(E'id,a\n1,x\n'), '{"parallel": "yes"}')$$);
SELECT try($$SELECT ingest.enqueue_data('par_t', csv(E'id,a\n1,x\n'), '{"parallel": 1}')$$);
SELECT try($$SELECT ingest.enqueue_data('par_t', csv(E'id,a\n1,x\n'), '{"parallel": null}')$$);

-- true: refused, with the reason a split is impossible where there is one
SELECT current_setting('max_prepared_transactions') AS max_prepared_transactions;
SELECT try($$SELECT ingest.enqueue_data('par_t', csv(E'id,a\n1,x\n'), '{"parallel": true}')$$);
SELECT try($$SELECT ingest.enqueue_data('par_t', csv(E'id,a\n1,x\n'), '{"parallel": true, "commit_every": 10}')$$);
SELECT try($$SELECT ingest.enqueue_data('par_t', '\x1f8b0800000000000003'::bytea, '{"parallel": true, "commit_every": 10, "compression": "gzip", "header": false}')$$);
SELECT try($$SELECT ingest.enqueue_data('par_t', csv(E'id,a\n1,x\n'), '{"parallel": true, "commit_every": 10, "encoding": "LATIN1"}')$$);
-- gzip and UTF-16 recognised by their first bytes
SELECT try($$SELECT ingest.enqueue_data('par_t', '\x1f8b0800000000000003'::bytea, '{"parallel": true, "commit_every": 10, "header": false}')$$);
SELECT try($$SELECT ingest.enqueue_data('par_t', '\xfeff00690064000a'::bytea, '{"parallel": true, "commit_every": 10, "header": false}')$$);
-- the database's encoding named is no obstacle
SELECT try($$SELECT ingest.enqueue_data('par_t', csv(E'id,a\n1,x\n'), '{"parallel": true, "commit_every": 10, "encoding": "UTF8"}')$$);
-- begin_upload and enqueue_dir refuse it too, before anything is created
SELECT try($$SELECT ingest.begin_upload('par_t', '{"parallel": true, "commit_every": 10}')$$);
SELECT try($$SELECT ingest.enqueue_dir('par_t', '/tmp/ingest_regress_files', 'no-such-*.csv', '{"parallel": true}')$$);
-- the same for another role
SET ROLE regress_plain;
SELECT try($$SELECT ingest.enqueue_data('par_t', csv(E'id,a\n1,x\n'), '{"parallel": true, "commit_every": 1}')$$);
RESET ROLE;
SELECT count(*) - :jobs_before AS jobs_queued_by_refusals FROM ingest.upload_jobs;

-- false, and absent: one worker loads the file, as always
SELECT ingest.enqueue_data('par_t', csv(E'id,a\n1,x\n2,y\n'), '{"parallel": false}') AS j1 \gset
SELECT ingest.enqueue_data('par_t', csv(E'id,a\n3,z\n'), '{"commit_every": 1}') AS j2 \gset
SELECT wait_for_state(:j1, 'succeeded'), wait_for_state(:j2, 'succeeded');
SELECT * FROM job(:j1);
SELECT * FROM job(:j2);
SELECT * FROM par_t ORDER BY id;

-- skip_lines: a preamble whose last line ends in a CRLF cut by the end of a read (the
-- CR the last byte of the first 256 kB read,
-- the LF the first of the next): the LF ends the same line, so the rejected record is
-- on line 4, as it would be with the CRLF in one read (parts are cut by this count too)
CREATE TABLE par_skip (id int PRIMARY KEY, a text);
SELECT ingest.enqueue_data('par_skip',
    csv(repeat('x', 262144 - 1) || E'\r\nid,a\n1,x\nbad,y\n2,z\n'),
    '{"skip_lines": 1, "max_errors": 1}') AS j3 \gset
SELECT wait_for_state(:j3, 'succeeded');
SELECT * FROM job(:j3);
SELECT * FROM errors(:j3);
SELECT * FROM par_skip ORDER BY id;
