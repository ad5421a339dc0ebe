-- 10_null_arguments: NULL arguments to the functions are an error (or, for options, mean
-- the defaults), never a crash. (Last of the suites, so that a crash here cannot take the
-- others down with it.)
CREATE TABLE t10 (id int PRIMARY KEY, a text, secret text DEFAULT 'hidden');
SELECT count(*) AS jobs_before FROM ingest.upload_jobs \gset
SELECT ingest.enqueue_data(NULL, csv(E'id\n1\n'));
SELECT ingest.enqueue_data('t10', NULL);
SELECT ingest.enqueue_file(NULL, '/tmp/ingest_regress_files/two.csv');
SELECT ingest.cancel(NULL);
SELECT count(*) - :jobs_before AS jobs_queued FROM ingest.upload_jobs;
SELECT ingest.enqueue_data('t10', csv(E'id,a\n5,null options\n'), NULL) AS id \gset
SELECT ingest.wait(:id);
SELECT state, options FROM ingest.upload_jobs WHERE id = :id;
SELECT * FROM t10 WHERE id = 5;
