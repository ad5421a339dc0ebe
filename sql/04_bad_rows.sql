-- 04_bad_rows: max_errors 0 and N, ingest.job_errors with physical line numbers (header
-- and multi-line fields counted), commit_every, and batches larger than one.
CREATE TABLE readings (
    id   int PRIMARY KEY,
    v    int NOT NULL CHECK (v >= 0),
    note text
);

-- max_errors 0 (the default): the first bad record fails the job, none of its rows stay,
-- and last_error names the line (4: the header is line 1) and the cause.
SELECT ingest.enqueue_data('readings', csv(E'id,v,note\n1,10,a\n2,20,b\n3,oops,c\n4,40,d\n')) AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, finished_at IS NOT NULL AS finished FROM ingest.upload_jobs WHERE id = :id;
SELECT last_error FROM ingest.upload_jobs WHERE id = :id;
SELECT last_error ~ 'line 4\M' AS names_line_4 FROM ingest.upload_jobs WHERE id = :id;
SELECT count(*) FROM readings;

-- The same with the bad record after a multi-line field: lines are physical lines.
SELECT ingest.enqueue_data('readings', csv(E'id,v,note\n1,10,"x\ny\nz"\n2,-1,c\n')) AS id \gset
SELECT ingest.wait(:id);
SELECT state, last_error FROM ingest.upload_jobs WHERE id = :id;
SELECT count(*) FROM readings;

-- max_errors N: bad records go to ingest.job_errors with the physical line on which they
-- start, and the good records around them are loaded.
--  1 id,v,note
--  2 1,10,"first            good (2 lines)
--  3 note"
--  4 2,x,bad int             22P02
--  5 3,30,"a ""quoted"" note  good (2 lines)
--  6 over two lines"
--  7 4,-5,check fails        23514
--  8 5,50                    too few fields
--  9 6,60,ok,extra           too many fields
-- 10 1,70,duplicate id       23505 (id 1 was loaded from line 2)
-- 11 7,,null v               23502
-- 12 8,80,"last             good (2 lines)
-- 13 one"
-- 14 9,90,plain             good
\set bad_file 'id,v,note\n1,10,"first\nnote"\n2,x,bad int\n3,30,"a ""quoted"" note\nover two lines"\n4,-5,check fails\n5,50\n6,60,ok,extra\n1,70,duplicate id\n7,,null v\n8,80,"last\none"\n9,90,plain\n'
SELECT ingest.enqueue_data('readings', csv(:'bad_file'), '{"max_errors": 10}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT id, v, replace(note, E'\n', '\n') AS note FROM readings ORDER BY id;
SELECT * FROM errors(:id);

-- exactly max_errors rejected records: still succeeds
TRUNCATE readings;
SELECT ingest.enqueue_data('readings', csv(:'bad_file'), '{"max_errors": 6}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, rows_rejected FROM ingest.upload_jobs WHERE id = :id;
SELECT count(*) FROM readings;

-- one more than max_errors: the job fails; with commit_every 0 none of its rows stay
TRUNCATE readings;
SELECT ingest.enqueue_data('readings', csv(:'bad_file'), '{"max_errors": 5}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted FROM ingest.upload_jobs WHERE id = :id;
SELECT last_error FROM ingest.upload_jobs WHERE id = :id;
SELECT count(*) FROM readings;

-- commit_every: rows of batches committed before a failure stay; the failing batch's go.
--  5 records, commit_every 2, the 4th is bad: records 1-2 were committed, 3 rolled back.
SELECT ingest.enqueue_data('readings', csv(E'id,v,note\n1,1,a\n2,2,b\n3,3,c\n4,x,d\n5,5,e\n'),
       '{"commit_every": 2}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, last_error ~ 'line 5\M' AS names_line_5 FROM ingest.upload_jobs WHERE id = :id;
SELECT id FROM readings ORDER BY id;

-- commit_every with success, and with rejected records spread over several commits
TRUNCATE readings;
SELECT ingest.enqueue_data('readings',
       csv('id,v,note' || E'\n' || string_agg(i || ',' || CASE WHEN i % 4 = 0 THEN 'bad' ELSE i::text END || ',n' || i, E'\n' ORDER BY i)),
       '{"commit_every": 3, "max_errors": 100}') AS id
  FROM generate_series(1, 20) i \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT count(*), sum(id) FROM readings;
SELECT array_agg(line_number ORDER BY line_number) AS lines, min(sqlstate), max(sqlstate)
  FROM ingest.job_errors WHERE job_id = :id;

-- Many records: several batches; bad records on both sides of batch and buffer edges keep
-- exact line numbers (no header here, so record i is on line i).
CREATE TABLE big (id int PRIMARY KEY, v int, t text);
SELECT ingest.enqueue_data('big',
       csv(string_agg(i || ',' ||
                      CASE WHEN i IN (1, 999, 1000, 1001, 1024, 4096, 65536, 100000, 149999, 150000)
                           THEN 'x' ELSE (i % 97)::text END ||
                      ',"' || md5(i::text) || CASE WHEN i % 1000 = 7 THEN E'\nsecond line' ELSE '' END || '"',
                      E'\n' ORDER BY i)),
       '{"header": false, "max_errors": 10}') AS id
  FROM generate_series(1, 150000) i \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, rows_rejected, bytes_done = bytes_total AS all_bytes_done
  FROM ingest.upload_jobs WHERE id = :id;
-- lines: record i starts on line i + (number of earlier records with a two-line field)
SELECT line_number, sqlstate, split_part(raw_line, ',', 1) AS record_id,
       line_number = split_part(raw_line, ',', 1)::int + (split_part(raw_line, ',', 1)::int + 992) / 1000 AS line_ok
  FROM ingest.job_errors WHERE job_id = :id ORDER BY line_number;
SELECT count(*), sum(id), sum(v), count(*) FILTER (WHERE t LIKE E'%\nsecond line') AS two_line
  FROM big;

-- raw_line is the record cut to about 1 kB, at a character boundary: a prefix of the record
CREATE TABLE longrec (id int, v text);
SELECT 'x,a' || repeat('é', 2000) AS rec \gset
SELECT ingest.enqueue_data('longrec', csv('id,v' || E'\n' || :'rec' || E'\n'), '{"max_errors": 1}') AS id \gset
SELECT ingest.wait(:id);
SELECT line_number, sqlstate, octet_length(raw_line) BETWEEN 1000 AND 1100 AS about_1kb,
       starts_with(:'rec', raw_line) AS prefix_of_record
  FROM ingest.job_errors WHERE job_id = :id;
