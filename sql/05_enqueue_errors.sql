-- 05_enqueue_errors: what is wrong at enqueue is an ERROR then, and nothing is queued.
CREATE TABLE t5 (id int PRIMARY KEY, a text, secret text DEFAULT 'hidden');
CREATE SEQUENCE s5;
CREATE VIEW v5 AS SELECT id, a FROM t5;
SELECT count(*) AS jobs_before FROM ingest.upload_jobs \gset

-- options: unknown keys and wrong value types
SELECT ingest.enqueue_data('t5', csv(E'id\n1\n'), '{"bogus": 1}');
SELECT ingest.enqueue_data('t5', csv(E'id\n1\n'), '{"delimeter": ";"}');
SELECT ingest.enqueue_data('t5', csv(E'id\n1\n'), '{"header": "yes"}');
SELECT ingest.enqueue_data('t5', csv(E'id\n1\n'), '{"header": 1}');
SELECT ingest.enqueue_data('t5', csv(E'id\n1\n'), '{"max_errors": "3"}');
SELECT ingest.enqueue_data('t5', csv(E'id\n1\n'), '{"max_errors": -1}');
SELECT ingest.enqueue_data('t5', csv(E'id\n1\n'), '{"max_errors": 1.5}');
SELECT ingest.enqueue_data('t5', csv(E'id\n1\n'), '{"max_errors": null}');
SELECT ingest.enqueue_data('t5', csv(E'id\n1\n'), '{"commit_every": true}');
SELECT ingest.enqueue_data('t5', csv(E'id\n1\n'), '{"commit_every": -10}');
SELECT ingest.enqueue_data('t5', csv(E'id\n1\n'), '{"delimiter": ";;"}');
SELECT ingest.enqueue_data('t5', csv(E'id\n1\n'), '{"delimiter": ""}');
SELECT ingest.enqueue_data('t5', csv(E'id\n1\n'), '{"delimiter": 44}');
SELECT ingest.enqueue_data('t5', csv(E'id\n1\n'), '{"delimiter": "\n"}');
SELECT ingest.enqueue_data('t5', csv(E'id\n1\n'), '{"delimiter": "é"}');
SELECT ingest.enqueue_data('t5', csv(E'id\n1\n'), '{"quote": "\r"}');
SELECT ingest.enqueue_data('t5', csv(E'id\n1\n'), '{"delimiter": "\""}');
SELECT ingest.enqueue_data('t5', csv(E'id\n1\n'), '{"quote": ","}');
SELECT ingest.enqueue_data('t5', csv(E'id\n1\n'), '{"null": 0}');
SELECT ingest.enqueue_data('t5', csv(E'id\n1\n'), '{"null": "a,b"}');
SELECT ingest.enqueue_data('t5', csv(E'id\n1\n'), '{"columns": "id"}');
SELECT ingest.enqueue_data('t5', csv(E'id\n1\n'), '{"columns": []}');
SELECT ingest.enqueue_data('t5', csv(E'id\n1\n'), '{"columns": [1, 2]}');
SELECT ingest.enqueue_data('t5', csv(E'id\n1\n'), '[]');
SELECT ingest.enqueue_data('t5', csv(E'id\n1\n'), '"header"');

-- columns: not in the table, named twice, a system column
SELECT ingest.enqueue_data('t5', csv(E'1,x\n'), '{"header": false, "columns": ["id", "nope"]}');
SELECT ingest.enqueue_data('t5', csv(E'1,1\n'), '{"header": false, "columns": ["id", "id"]}');
SELECT ingest.enqueue_data('t5', csv(E'1,1\n'), '{"header": false, "columns": ["id", "ctid"]}');

-- the target: missing, not a table (a sequence, a view)
SELECT ingest.enqueue_data('no_such_table', csv(E'id\n1\n'));
SELECT ingest.enqueue_data('s5', csv(E'id\n1\n'));
SELECT ingest.enqueue_data('v5', csv(E'id\n1\n'));

-- privileges: a role without INSERT on the target
GRANT SELECT ON t5 TO regress_plain;
SET ROLE regress_plain;
SELECT ingest.enqueue_data('t5', csv(E'id,a\n1,x\n'));
SELECT ingest.enqueue_data('t5', csv(E'1,x\n'), '{"header": false, "columns": ["id", "a"]}');
RESET ROLE;

-- column privileges: INSERT on (id, a) only
GRANT INSERT (id, a) ON t5 TO regress_plain;
SET ROLE regress_plain;
-- "columns" naming a column the role may not insert into: error at enqueue
SELECT ingest.enqueue_data('t5', csv(E'1,x,y\n'), '{"header": false, "columns": ["id", "a", "secret"]}');
-- no header and no columns means every column, secret included
SELECT ingest.enqueue_data('t5', csv(E'1,x,y\n'), '{"header": false}');
RESET ROLE;

-- nothing was queued by any of the above
SELECT count(*) - :jobs_before AS jobs_queued FROM ingest.upload_jobs;

-- while the permitted columns load, as that role, and the other column gets its default
SET ROLE regress_plain;
SELECT ingest.enqueue_data('t5', csv(E'1,x\n'), '{"header": false, "columns": ["id", "a"]}') AS id \gset
SELECT ingest.enqueue_data('t5', csv(E'a,id\ny,2\n')) AS id2 \gset
SELECT ingest.wait(:id), ingest.wait(:id2);
SELECT * FROM job(:id);
SELECT * FROM job(:id2);
RESET ROLE;
SELECT * FROM t5 ORDER BY id;

-- A header naming a column the role may not insert into: the header is read at enqueue
-- (and again by the worker), so nothing is queued and the error says why.
SET ROLE regress_plain;
SELECT ingest.enqueue_data('t5', csv(E'id,a,secret\n3,z,mine\n'));
RESET ROLE;
SELECT * FROM t5 ORDER BY id;
-- A header naming a column the table does not have: refused at enqueue too.
SELECT ingest.enqueue_data('t5', csv(E'id,a,nope\n4,z,q\n'));
SELECT count(*) FROM t5 WHERE id = 4;
-- ... and by the worker when the column went away while the job waited in the queue
ALTER TABLE t5 ADD COLUMN gone text;
BEGIN;
SELECT ingest.enqueue_data('t5', csv(E'id,a,gone\n5,z,q\n')) AS id \gset
ALTER TABLE t5 DROP COLUMN gone;
COMMIT;
SELECT ingest.wait(:id);
SELECT state, rows_inserted, last_error FROM ingest.upload_jobs WHERE id = :id;
