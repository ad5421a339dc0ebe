-- 24_text_chunks: the loader checks that the bytes are text in the database's encoding once
-- per chunk it is fed, not field by field; the outcomes must be those of checking each field.
-- The chunks: the 2 bytes the decoder sniffs first, then reads of 256 kB (files) or of what
-- the upload's storage hands out. Characters cut by a chunk's end, valid or not, a character
-- cut by the end of the input, and bad bytes among many good records.
CREATE TABLE chunk_t (id int, t text);
CREATE TABLE chunk_h (t text);

-- 1. Files of 3-byte characters read in 256 kB chunks: with a shift of 0, 1 or 2 ASCII
-- bytes, chunk ends fall inside characters; every record loads as written.
COPY (SELECT 0 AS id, repeat('a', 0) AS t UNION ALL
      SELECT i, repeat('€', 100 + i % 7) FROM generate_series(1, 4000) i)
    TO '/tmp/ingest_regress_files/chunks_0.csv' WITH (FORMAT csv, HEADER);
COPY (SELECT 0 AS id, repeat('a', 1) AS t UNION ALL
      SELECT i, repeat('€', 100 + i % 7) FROM generate_series(1, 4000) i)
    TO '/tmp/ingest_regress_files/chunks_1.csv' WITH (FORMAT csv, HEADER);
COPY (SELECT 0 AS id, repeat('a', 2) AS t UNION ALL
      SELECT i, repeat('€', 100 + i % 7) FROM generate_series(1, 4000) i)
    TO '/tmp/ingest_regress_files/chunks_2.csv' WITH (FORMAT csv, HEADER);
SELECT ingest.enqueue_file('chunk_t', '/tmp/ingest_regress_files/chunks_0.csv') AS id0 \gset
SELECT ingest.enqueue_file('chunk_t', '/tmp/ingest_regress_files/chunks_1.csv') AS id1 \gset
SELECT ingest.enqueue_file('chunk_t', '/tmp/ingest_regress_files/chunks_2.csv') AS id2 \gset
SELECT ingest.wait(:id0), ingest.wait(:id1), ingest.wait(:id2);
SELECT count(*) AS rows, count(*) FILTER (WHERE t = repeat('€', 100 + id % 7)) AS as_written,
       count(*) FILTER (WHERE id = 0) AS shifts
  FROM chunk_t;
TRUNCATE chunk_t;

-- 2. The first character cut by the 2-byte head: whole, it loads; not whole, its record
-- is rejected with the bytes named, and the next record loads.
SELECT ingest.enqueue_data('chunk_h', csv(E'€x\n€€\n'), '{"header": false}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT t FROM chunk_h ORDER BY t;
TRUNCATE chunk_h;
SELECT ingest.enqueue_data('chunk_h', '\xe282780a6f6b0a'::bytea, '{"header": false, "max_errors": 5}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT * FROM errors(:id);
SELECT t FROM chunk_h;
TRUNCATE chunk_h;

-- 3. A character cut by the end of the input (no line end after it): its record is
-- rejected; with a line end after it too.
SELECT ingest.enqueue_data('chunk_h', '\x6f6b0ae282'::bytea, '{"header": false, "max_errors": 5}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT * FROM errors(:id);
SELECT ingest.enqueue_data('chunk_h', '\x6f6b0ae2820a'::bytea, '{"header": false, "max_errors": 5}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT * FROM errors(:id);
SELECT t, count(*) FROM chunk_h GROUP BY t;
TRUNCATE chunk_h;

-- 4. 20,000 records of multibyte text with three bad ones (a stray continuation byte, a
-- NUL, a lone lead byte before the delimiter), far apart: exactly those are rejected.
SELECT string_agg(CASE i WHEN 3000 THEN convert_to(i || ',é', 'UTF8') || '\x80'::bytea
                         WHEN 11000 THEN convert_to(i || ',a', 'UTF8') || '\x00'::bytea
                         WHEN 19999 THEN convert_to(i || ',', 'UTF8') || '\xc3'::bytea
                         ELSE convert_to(i || ',' || repeat('é€', 1 + i % 5), 'UTF8') END
                  || '\x0a'::bytea, ''::bytea ORDER BY i) AS many
  FROM generate_series(1, 20000) i \gset
SELECT ingest.enqueue_data('chunk_t', :'many', '{"header": false, "max_errors": 10}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT * FROM errors(:id);
SELECT count(*) AS rows, count(*) FILTER (WHERE t = repeat('é€', 1 + id % 5)) AS as_written FROM chunk_t;

DROP TABLE chunk_t, chunk_h;
