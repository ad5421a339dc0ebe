-- 12_hostile: hostile and broken input, one checklist. Every case ends in a definite state
-- with a clear message, the server stays up, and a good job succeeds at the end. Some
-- items re-check, briefly, what 03_csv_format, 07_files, 09_robustness and 11_hardening
-- cover in more detail. Server files are written under /tmp/ingest_regress_files (the
-- suites' ingest.allowed_dirs) with names starting hostile_.
CREATE TABLE host_t (id int, t text);
-- last_error with the numbers that vary from run to run (job ids, OIDs) masked
CREATE FUNCTION host_err(bigint) RETURNS text LANGUAGE sql STABLE
    AS $$ SELECT regexp_replace(last_error, '(job|OID) [0-9]+', '\1 N', 'g')
            FROM ingest.upload_jobs WHERE id = $1 $$;

-- 1. Random binary data (a deterministic pseudo-random 128 kB): with the default header the
-- first "record" must name the columns and cannot; the header is read at enqueue, which
-- says why, and nothing is queued.
SELECT string_agg(sha256(int4send(i)), ''::bytea ORDER BY i) AS noise
  FROM generate_series(1, 4096) i \gset
SELECT ingest.enqueue_data('host_t', :'noise');
-- ... and as headerless data with max_errors: every record is loaded or rejected, each
-- rejection recorded; the counters agree with the table and with job_errors
SELECT ingest.enqueue_data('host_t', :'noise', '{"header": false, "columns": ["t"], "max_errors": 1000000}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_rejected > 0 AS some_rejected,
       rows_inserted = (SELECT count(*) FROM host_t) AS inserted_match,
       rows_rejected = (SELECT count(*) FROM ingest.job_errors WHERE job_id = :id) AS rejected_match,
       records_done = rows_inserted + rows_rejected AS all_counted,
       bytes_done = bytes_total AS all_read
  FROM ingest.upload_jobs WHERE id = :id;
SELECT sqlstate, count(*) > 0 AS seen FROM ingest.job_errors WHERE job_id = :id GROUP BY 1 ORDER BY 1;
TRUNCATE host_t;

-- 2. NUL bytes: a record holding one is rejected (the value could not be stored), named
-- with its line and the byte; with max_errors 0 the job fails on it.
SELECT ingest.enqueue_data('host_t', csv(E'id,t\n1,a\n') || '\x322c6100620a'::bytea || csv(E'3,c\n')) AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, host_err(:id) FROM ingest.upload_jobs WHERE id = :id;
SELECT ingest.enqueue_data('host_t', csv(E'id,t\n1,a\n') || '\x322c6100620a'::bytea || csv(E'3,c\n'),
       '{"max_errors": 1}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT * FROM errors(:id);
SELECT * FROM host_t ORDER BY id;
TRUNCATE host_t;

-- 3. An unterminated quote at the end of the file: the job fails at the line where the
-- quoted field began (with max_errors the rest loads: 09_robustness).
SELECT ingest.enqueue_data('host_t', csv(E'id,t\n1,ok\n2,"never closed\n3,still inside\n')) AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, host_err(:id) FROM ingest.upload_jobs WHERE id = :id;
SELECT count(*) FROM host_t;

-- 4. Invalid UTF-8 (the server encoding here): a lone continuation byte, a truncated
-- sequence, an overlong encoding, a UTF-16 surrogate, a code point above U+10FFFF, and a
-- byte that is never valid; each record is rejected with its line and bytes, the good
-- records load.
SELECT ingest.enqueue_data('host_t',
       csv(E'id,t\n1,good\n') ||
       '\x322c80410a'::bytea ||           -- 2,<80>A
       '\x332ce2820a'::bytea ||           -- 3,<e2 82> then the line end
       '\x342cc0af0a'::bytea ||           -- 4,<c0 af> overlong "/"
       '\x352ceda0800a'::bytea ||         -- 5,<ed a0 80> surrogate
       '\x362cf48080800a'::bytea ||       -- 6,<f4 80 80 80> U+100000: valid
       '\x372cf4908080410a'::bytea ||     -- 7,<f4 90 80 80> above U+10FFFF
       '\x382cff0a'::bytea ||             -- 8,<ff>
       csv(E'9,last\n'),
       '{"max_errors": 10}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT * FROM errors(:id);
SELECT id, octet_length(t) FROM host_t ORDER BY id;
TRUNCATE host_t;
-- the same in the header: the enqueue fails and names the header field
SELECT ingest.enqueue_data('host_t', '\x69642c74ff0a'::bytea || csv(E'1,a\n'));

-- 5. A UTF-8 byte order mark before the header is stripped: the header matches and the
-- load succeeds; before headerless data too (the first value is a clean integer).
SELECT ingest.enqueue_data('host_t', '\xefbbbf'::bytea || csv(E'id,t\n1,bom\n')) AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT ingest.enqueue_data('host_t', '\xefbbbf'::bytea || csv(E'2,bom no header\n'), '{"header": false}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
-- a BOM anywhere else is data: here it makes the id invalid, and the job says so (shown as
-- <BOM>: psql 17 gives U+FEFF no width, psql 15 one column, so the table's width would differ)
SELECT ingest.enqueue_data('host_t', csv(E'id,t\n') || '\xefbbbf'::bytea || csv(E'3,x\n')) AS id \gset
SELECT ingest.wait(:id);
SELECT state, replace(host_err(:id), U&'\FEFF', '<BOM>') AS host_err FROM ingest.upload_jobs WHERE id = :id;
SELECT * FROM host_t ORDER BY id;
TRUNCATE host_t;

-- 6. CRLF and lone CR line ends, mixed in one file; line numbers count each as one line
-- end, and a CR or CRLF inside quotes is data.
SELECT ingest.enqueue_data('host_t',
       csv(E'id,t\r1,cr\r\n2,crlf\n3,lf\rx,bad\r4,"in\rside"\r\n5,"in\r\nside"\r6,last')
       , '{"max_errors": 1}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT * FROM errors(:id);
SELECT id, replace(replace(t, E'\r', '\r'), E'\n', '\n') AS t FROM host_t ORDER BY id;
TRUNCATE host_t;

-- 7. An empty file, and one of blank lines only: nothing to load, success.
SELECT ingest.enqueue_data('host_t', ''::bytea) AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT ingest.enqueue_data('host_t', csv(E'\n\r\n\r\n')) AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);

-- 8. A file of only a header, with and without a line end: success, no rows. A header
-- naming a column the table does not have is refused at enqueue even without data.
SELECT ingest.enqueue_data('host_t', csv(E'id,t\n')) AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT ingest.enqueue_data('host_t', csv('id,t')) AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT ingest.enqueue_data('host_t', csv('id,nope'));
SELECT count(*) FROM host_t;

-- 9. A single 64 MB field loads whole into a text column (one such job: it is slow to
-- build, store and check; 09_robustness loads a 2 MB field with doubled quotes).
SELECT ingest.enqueue_data('host_t',
       convert_to('id,t' || E'\n1,' || repeat('0123456789abcdef', 4 * 1024 * 1024) || E'\n', 'UTF8')) AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT id, length(t) = 64 * 1024 * 1024 AS is_64mb,
       md5(t) = md5(repeat('0123456789abcdef', 4 * 1024 * 1024)) AS same_text
  FROM host_t;
TRUNCATE host_t;

-- 10. A record of 20,000 fields: with max_errors 0 the job fails on it, without having
-- held it (with max_errors it is rejected and the rest loads: 11_hardening).
SELECT ingest.enqueue_data('host_t', csv(E'id,t\n1,a\n' || repeat('x,', 20000) || E'x\n2,b\n')) AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, host_err(:id) FROM ingest.upload_jobs WHERE id = :id;
SELECT count(*) FROM host_t;

-- 11. Thousands of bad records: 5,000 of 10,000 (conversion errors and check violations,
-- alternating). With max_errors 10000 each is in job_errors once, at its own line (record
-- i is on line i + 1); the 5,000 good ones load.
CREATE TABLE host_many (id int PRIMARY KEY, v int CHECK (v >= 0));
SELECT csv('id,v' || E'\n' || string_agg(i || ',' || CASE i % 4 WHEN 1 THEN 'x' WHEN 3 THEN '-1' ELSE i::text END,
                                         E'\n' ORDER BY i)) AS many
  FROM generate_series(1, 10000) i \gset
SELECT ingest.enqueue_data('host_many', :'many', '{"max_errors": 10000}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT count(*) AS errors, count(DISTINCT line_number) AS lines,
       count(*) FILTER (WHERE line_number = split_part(raw_line, ',', 1)::int + 1) AS right_line,
       count(*) FILTER (WHERE sqlstate = '22P02' AND split_part(raw_line, ',', 1)::int % 4 = 1) AS bad_int,
       count(*) FILTER (WHERE sqlstate = '23514' AND split_part(raw_line, ',', 1)::int % 4 = 3) AS bad_check
  FROM ingest.job_errors WHERE job_id = :id;
SELECT count(*), count(*) FILTER (WHERE id % 2 = 0) AS even, sum(id) FROM host_many;
TRUNCATE host_many;
-- with max_errors 0 the first bad record (line 2) fails the job; nothing stays
SELECT ingest.enqueue_data('host_many', :'many') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, host_err(:id) FROM ingest.upload_jobs WHERE id = :id;
-- one short of enough: fails at the 5,000th bad record, line 10000; what job_errors lists
-- of the rolled-back transaction's rejections is what rows_rejected counts
SELECT ingest.enqueue_data('host_many', :'many', '{"max_errors": 4999}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, host_err(:id) FROM ingest.upload_jobs WHERE id = :id;
SELECT rows_rejected > 0 AND rows_rejected = (SELECT count(*) FROM ingest.job_errors WHERE job_id = :id) AS listed_as_counted
  FROM ingest.upload_jobs WHERE id = :id;
SELECT count(*) FROM host_many;

-- 12. A stray quote inside an unquoted field, with strict_quotes: with max_errors 0 the
-- job fails at its line (with max_errors the parser resynchronises at the next line:
-- 09_robustness; without strict_quotes it is read as COPY reads it: 17_copy_compat).
SELECT ingest.enqueue_data('host_t', csv(E'id,t\n1,fine\n2,ab"c\n3,fine\n'), '{"strict_quotes": true}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, host_err(:id) FROM ingest.upload_jobs WHERE id = :id;

-- 13. The target changed between enqueue and run (enqueue and change in one transaction,
-- so no worker can start first).
-- dropped: the job fails
CREATE TABLE host_doomed (id int, t text);
BEGIN;
SELECT ingest.enqueue_data('host_doomed', csv(E'id,t\n1,a\n')) AS id \gset
DROP TABLE host_doomed;
COMMIT;
SELECT ingest.wait(:id);
SELECT state, rows_inserted, host_err(:id) FROM ingest.upload_jobs WHERE id = :id;
-- renamed (or moved to another schema): the job follows the table, not its name
CREATE TABLE host_renamed (id int, t text);
CREATE SCHEMA host_other;
BEGIN;
SELECT ingest.enqueue_data('host_renamed', csv(E'id,t\n1,a\n2,b\n')) AS id \gset
ALTER TABLE host_renamed RENAME TO host_renamed2;
ALTER TABLE host_renamed2 SET SCHEMA host_other;
COMMIT;
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT * FROM host_other.host_renamed2 ORDER BY id;
-- a column of the header dropped: the job fails and names it
CREATE TABLE host_altered (id int, t text, n numeric);
BEGIN;
SELECT ingest.enqueue_data('host_altered', csv(E'id,t\n1,a\n')) AS id \gset
ALTER TABLE host_altered DROP COLUMN t;
COMMIT;
SELECT ingest.wait(:id);
SELECT state, host_err(:id) FROM ingest.upload_jobs WHERE id = :id;
-- a column's type changed so that the values no longer fit: fails at the line
BEGIN;
SELECT ingest.enqueue_data('host_altered', csv(E'id,n\n1,1\n2,2.5\n')) AS id \gset
ALTER TABLE host_altered ALTER COLUMN n TYPE int;
COMMIT;
SELECT ingest.wait(:id);
SELECT state, host_err(:id) FROM ingest.upload_jobs WHERE id = :id;
-- a NOT NULL column without default added: every record fails it
BEGIN;
SELECT ingest.enqueue_data('host_altered', csv(E'id\n1\n')) AS id \gset
ALTER TABLE host_altered ADD COLUMN must int NOT NULL;
COMMIT;
SELECT ingest.wait(:id);
SELECT state, host_err(:id) FROM ingest.upload_jobs WHERE id = :id;
-- the owner's INSERT privilege revoked: the job fails, nothing is inserted
CREATE TABLE host_priv (id int);
GRANT INSERT ON host_priv TO regress_tenant_a;
BEGIN;
SET LOCAL ROLE regress_tenant_a;
SELECT ingest.enqueue_data('host_priv', csv(E'id\n1\n')) AS id \gset
RESET ROLE;
REVOKE INSERT ON host_priv FROM regress_tenant_a;
COMMIT;
SELECT ingest.wait(:id);
SELECT state, host_err(:id) FROM ingest.upload_jobs WHERE id = :id;
SELECT count(*) FROM host_priv;
SELECT count(*) FROM host_altered;

-- 14. The file deleted between enqueue and run: the job fails and names it.
COPY (SELECT 'id,t' UNION ALL SELECT '1,gone') TO '/tmp/ingest_regress_files/hostile_gone.csv';
BEGIN;
SELECT ingest.enqueue_file('host_t', '/tmp/ingest_regress_files/hostile_gone.csv') AS id \gset
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null; rm -f /tmp/ingest_regress_files/hostile_gone.csv';
COMMIT;
SELECT ingest.wait(:id);
SELECT state, rows_inserted, host_err(:id) FROM ingest.upload_jobs WHERE id = :id;

-- 15. The owner role dropped while its job is queued: the job fails, it never runs as
-- anyone else, nothing is inserted.
CREATE ROLE regress_host_gone NOLOGIN;
GRANT INSERT ON host_t TO regress_host_gone;
BEGIN;
SET LOCAL ROLE regress_host_gone;
SELECT ingest.enqueue_data('host_t', csv(E'id,t\n1,orphan\n')) AS id \gset
RESET ROLE;
REVOKE INSERT ON host_t FROM regress_host_gone;
DROP ROLE regress_host_gone;
COMMIT;
SELECT ingest.wait(:id);
SELECT state, rows_inserted, host_err(:id) FROM ingest.upload_jobs WHERE id = :id;
SELECT count(*) FROM host_t;

-- 16. Paths escaping ingest.allowed_dirs: through .., through a symlinked file or
-- directory (refused at enqueue); a .. that stays inside is fine.
SELECT ingest.enqueue_file('host_t', '/tmp/ingest_regress_files/../ingest_regress_outside/secret.csv');
SELECT ingest.enqueue_file('host_t', '/tmp/ingest_regress_files/sub/../../ingest_regress_outside/secret.csv');
SELECT ingest.enqueue_file('host_t', '/tmp/ingest_regress_files/escape.csv');
SELECT ingest.enqueue_file('host_t', '/tmp/ingest_regress_files/escape_dir/in_dir.csv');
COPY (SELECT 'id,t' UNION ALL SELECT '1,inside') TO '/tmp/ingest_regress_files/hostile_in.csv';
SELECT ingest.enqueue_file('host_t', '/tmp/ingest_regress_files/sub/../hostile_in.csv') AS id \gset
SELECT ingest.wait(:id);
SELECT source, state, rows_inserted FROM ingest.upload_jobs WHERE id = :id;
-- ... and swapped for a symlink out between enqueue and run: the worker checks again
COPY (SELECT 'id,t' UNION ALL SELECT '2,swapped') TO '/tmp/ingest_regress_files/hostile_swap.csv';
BEGIN;
SELECT ingest.enqueue_file('host_t', '/tmp/ingest_regress_files/hostile_swap.csv') AS id \gset
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null; ln -sfn /tmp/ingest_regress_outside/secret.csv /tmp/ingest_regress_files/hostile_swap.csv';
COMMIT;
SELECT ingest.wait(:id);
SELECT state, host_err(:id) FROM ingest.upload_jobs WHERE id = :id;
-- a directory on the path swapped for a symlink out
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null; rm -rf /tmp/ingest_regress_files/hostile_dir && mkdir -m 0777 /tmp/ingest_regress_files/hostile_dir';
COPY (SELECT 'id,t' UNION ALL SELECT '3,dir') TO '/tmp/ingest_regress_files/hostile_dir/in_dir.csv';
BEGIN;
SELECT ingest.enqueue_file('host_t', '/tmp/ingest_regress_files/hostile_dir/in_dir.csv') AS id \gset
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null; rm -rf /tmp/ingest_regress_files/hostile_dir && ln -sfn /tmp/ingest_regress_outside /tmp/ingest_regress_files/hostile_dir';
COMMIT;
SELECT ingest.wait(:id);
SELECT state, host_err(:id) FROM ingest.upload_jobs WHERE id = :id;
SELECT * FROM host_t ORDER BY id;
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null; rm -f /tmp/ingest_regress_files/hostile_dir /tmp/ingest_regress_files/hostile_swap.csv /tmp/ingest_regress_files/hostile_in.csv';
TRUNCATE host_t;

-- 17. ingest.max_file_size (kB; superusers set it): a source above it is refused at
-- enqueue, naming the limit; one at it is accepted.
SET ingest.max_file_size = '1kB';
SHOW ingest.max_file_size;
SELECT count(*) AS jobs_before FROM ingest.upload_jobs \gset
SELECT ingest.enqueue_data('host_t', csv('id,t' || E'\n' || '1,' || repeat('x', 1025 - 8) || E'\n'));
COPY (SELECT 'id,t' UNION ALL SELECT '1,' || repeat('y', 2000)) TO '/tmp/ingest_regress_files/hostile_big.csv';
SELECT ingest.enqueue_file('host_t', '/tmp/ingest_regress_files/hostile_big.csv');
SELECT count(*) - :jobs_before AS jobs_queued FROM ingest.upload_jobs;
SELECT ingest.enqueue_data('host_t', csv('id,t' || E'\n' || '1,' || repeat('x', 1024 - 8) || E'\n')) AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
RESET ingest.max_file_size;
SET ROLE regress_tenant_a;
SET ingest.max_file_size = '1MB';
RESET ROLE;
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null; rm -f /tmp/ingest_regress_files/hostile_big.csv';
TRUNCATE host_t;

-- 18. ingest.max_record_size (bytes; superusers set it for the server, and the workers
-- use the server's value): a field, or a record, above it fails the job, or with
-- max_errors is rejected while the rest loads; the message names the limit. (The wait
-- lets the reload reach every process; SHOW tells that this session got it.)
ALTER SYSTEM SET ingest.max_record_size = 1024;
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SHOW ingest.max_record_size;
SELECT csv('id,t' || E'\n' || '1,small' || E'\n' || '2,' || repeat('z', 2000) || E'\n' ||
           '3,' || repeat('y', 600) || ',' || repeat('y', 600) || E'\n' || '4,small' || E'\n') AS too_large \gset
SELECT ingest.enqueue_data('host_t', :'too_large') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, host_err(:id) FROM ingest.upload_jobs WHERE id = :id;
SELECT ingest.enqueue_data('host_t', :'too_large', '{"max_errors": 2}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT line_number, sqlstate, message FROM errors(:id);
SELECT * FROM host_t ORDER BY id;
ALTER SYSTEM RESET ingest.max_record_size;
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SHOW ingest.max_record_size;
TRUNCATE host_t;

-- After all of it the server is up and a good job succeeds.
SELECT ingest.enqueue_data('host_t', csv(E'id,t\n1,still fine\n2,"and ""quoted"""\n')) AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT * FROM host_t ORDER BY id;
SELECT count(*) FILTER (WHERE state IN ('queued', 'running')) AS unfinished,
       count(*) FILTER (WHERE state = 'failed' AND last_error IS NULL) AS failed_without_reason
  FROM ingest.upload_jobs;

DROP TABLE host_t, host_many, host_altered, host_priv;
DROP SCHEMA host_other CASCADE;
DROP FUNCTION host_err(bigint);
