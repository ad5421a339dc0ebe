-- 18_decode: the decoder between the reader and the parser: gzip and zstd ("compression")
-- for every source kind, corrupt and truncated streams, a decompression bomb against
-- ingest.max_file_size, and the file's "encoding" (LATIN1, WIN1252, SJIS, UTF-16 LE/BE
-- with a BOM) converted while streaming; a bad byte sequence rejects its record only.
-- The header is checked at enqueue (and at chunk 0) through the same decoding.
CREATE TABLE dec_t (id int, name text);
GRANT SELECT, INSERT ON dec_t TO regress_tenant_a;
-- the text every encoded file holds, in the database's encoding (UTF-8)
CREATE TABLE dec_ref (id int, name text);
INSERT INTO dec_ref VALUES (1, 'café, crème brûlée'), (2, 'naïve "quoted"'), (3, E'two\nlines'),
    (4, 'plain');
CREATE TABLE dec_ref_ja (id int, name text);
INSERT INTO dec_ref_ja VALUES (1, '日本語のテキスト'), (2, 'ソース,表示'), (3, '"引用"');
-- same(ref): the rows of dec_t are those of ref
CREATE FUNCTION same(ref regclass) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM ((SELECT * FROM dec_t EXCEPT ALL SELECT * FROM %s)
                    UNION ALL (SELECT * FROM %s EXCEPT ALL SELECT * FROM dec_t)) d', ref, ref) INTO n;
    RETURN n = 0;
END $$;

-- ---------- options, checked at enqueue ----------
SELECT try($$SELECT ingest.enqueue_data('dec_t', csv('id,name'), '{"compression": "brotli"}')$$);
SELECT try($$SELECT ingest.enqueue_data('dec_t', csv('id,name'), '{"compression": "zstd", "header": false}')$$);
SELECT try($$SELECT ingest.enqueue_data('dec_t', csv('id,name'), '{"compression": true}')$$);
SELECT try($$SELECT ingest.enqueue_data('dec_t', csv('id,name'), '{"encoding": "KLINGON"}')$$);
SELECT try($$SELECT ingest.enqueue_data('dec_t', csv('id,name'), '{"encoding": 1252}')$$);
SELECT try($$SELECT ingest.enqueue_data('dec_t', csv('id,name'), '{"encoding": "latin-1", "compression": "NONE"}')$$);
SELECT try($$SELECT ingest.enqueue_data('dec_t', csv('id,name'), '{"encoding": "utf-16le"}')$$);
-- the jobs the accepted options queued end before they go (a worker may be running one)
SELECT count(*) >= 0 AS settled FROM (SELECT ingest.wait(id) FROM ingest.upload_jobs
                                       WHERE target = 'dec_t'::regclass) w;
DELETE FROM ingest.upload_jobs WHERE target = 'dec_t'::regclass;

-- ---------- gzip, for each source kind ----------
COPY (SELECT i AS id, 'name ' || i AS name FROM generate_series(1, 5000) i)
    TO PROGRAM 'gzip -c > /tmp/ingest_regress_files/g.csv.gz' (FORMAT csv, HEADER);
COPY (SELECT i AS id, 'name ' || i AS name FROM generate_series(1, 5000) i)
    TO '/tmp/ingest_regress_files/g.csv' (FORMAT csv, HEADER);
SELECT pg_read_binary_file('/tmp/ingest_regress_files/g.csv.gz') AS gz \gset
SELECT substr(:'gz'::bytea, 1, 3) AS magic, length(:'gz'::bytea) < 30000 AS compressed;
-- a file (auto: recognised by its magic bytes)
SELECT ingest.enqueue_file('dec_t', '/tmp/ingest_regress_files/g.csv.gz') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, bytes_total = length(:'gz'::bytea) AS total_is_compressed,
       bytes_done = bytes_total AS done_is_total FROM ingest.upload_jobs WHERE id = :id;
SELECT count(*), sum(id), count(*) FILTER (WHERE name <> 'name ' || id) AS wrong FROM dec_t;
TRUNCATE dec_t;
-- uploaded data, with compression named
SELECT ingest.enqueue_data('dec_t', :'gz', '{"compression": "gzip"}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, bytes_done = bytes_total AS done_is_total FROM ingest.upload_jobs WHERE id = :id;
-- chunks, cut anywhere (the magic bytes across chunks 0 and 1)
CREATE FUNCTION dec_cut(b bytea, f int, n int) RETURNS bytea LANGUAGE sql AS $$ SELECT substr(b, f, n) $$;
SELECT ingest.begin_upload('dec_t') AS id \gset
SELECT ingest.upload_chunk(:id, 0, dec_cut(:'gz', 1, 1)) > 0 AS ok;
SELECT ingest.upload_chunk(:id, 1, dec_cut(:'gz', 2, 1000)) > 0 AS ok;
SELECT ingest.upload_chunk(:id, 2, dec_cut(:'gz', 1002, 100000)) > 0 AS ok;
SELECT ingest.finish_upload(:id) = :id AS queued;
SELECT ingest.wait(:id);
SELECT state, rows_inserted, bytes_done = bytes_total AS done_is_total FROM ingest.upload_jobs WHERE id = :id;
-- a large object
SELECT lo_from_bytea(0, :'gz') AS lo \gset
SELECT ingest.enqueue_lo('dec_t', :lo, '{"unlink": true}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted FROM ingest.upload_jobs WHERE id = :id;
SELECT count(*), count(DISTINCT id) FROM dec_t;
TRUNCATE dec_t;
-- ---------- the header is checked at enqueue, decompressed and converted ----------
-- a header naming a column the table does not have ("nom"): the error names it at
-- enqueue for a gzip file, gzip data, and chunk 0 of a gzip upload (its first 100 bytes)
COPY (SELECT i AS id, 'name ' || i AS nom FROM generate_series(1, 5000) i)
    TO PROGRAM 'gzip -c > /tmp/ingest_regress_files/bad.csv.gz' (FORMAT csv, HEADER);
SELECT ingest.enqueue_file('dec_t', '/tmp/ingest_regress_files/bad.csv.gz');
SELECT pg_read_binary_file('/tmp/ingest_regress_files/bad.csv.gz') AS badgz \gset
SELECT ingest.enqueue_data('dec_t', :'badgz');
SELECT ingest.begin_upload('dec_t') AS id \gset
SELECT ingest.upload_chunk(:id, 0, dec_cut(:'badgz', 1, 100));
SELECT ingest.cancel(:id);
-- a large object, and compression named
SELECT lo_from_bytea(0, :'badgz') AS lo \gset
SELECT ingest.enqueue_lo('dec_t', :lo, '{"compression": "gzip"}');
-- a role that may not read the object or the file learns nothing of their header: it is
-- refused before any byte is read
SET ROLE regress_tenant_a;
SET app.tenant = 'a';
SELECT try(format('SELECT ingest.enqueue_lo(%L, %s)', 'dec_t', :lo));
SELECT ingest.enqueue_file('dec_t', '/tmp/ingest_regress_files/bad.csv.gz');
RESET ROLE;
RESET app.tenant;
SELECT lo_unlink(:lo);
-- its own data, it may: the same answer as for the owner
SET ROLE regress_tenant_a;
SET app.tenant = 'a';
SELECT ingest.enqueue_data('dec_t', :'badgz');
RESET ROLE;
RESET app.tenant;
-- a LATIN1 file with "encoding": the name is converted ("prénom" in LATIN1 is 0x70 0x72 0xe9 ...)
COPY (SELECT 1 AS id, 'x' AS "prénom") TO '/tmp/ingest_regress_files/latin1-bad.csv' (FORMAT csv, HEADER, ENCODING 'LATIN1');
SELECT encode(substr(pg_read_binary_file('/tmp/ingest_regress_files/latin1-bad.csv'), 4, 6), 'hex') AS latin1;
SELECT ingest.enqueue_file('dec_t', '/tmp/ingest_regress_files/latin1-bad.csv', '{"encoding": "LATIN1"}');
-- without it, the header is not UTF-8: said at enqueue too, with the hint
SELECT ingest.enqueue_file('dec_t', '/tmp/ingest_regress_files/latin1-bad.csv');
-- UTF-16 LE with a byte order mark, recognised without the option; and gzip of it
COPY (SELECT 1 AS id, 'x' AS "prénom") TO PROGRAM 'iconv -f UTF-8 -t UTF-16LE | (printf "\377\376"; cat) > /tmp/ingest_regress_files/utf16-bad.csv' (FORMAT csv, HEADER);
SELECT ingest.enqueue_file('dec_t', '/tmp/ingest_regress_files/utf16-bad.csv');
COPY (SELECT 1 AS id, 'x' AS "prénom") TO PROGRAM 'iconv -f UTF-8 -t UTF-16LE | (printf "\377\376"; cat) | gzip -c > /tmp/ingest_regress_files/utf16-bad.csv.gz' (FORMAT csv, HEADER);
SELECT ingest.enqueue_data('dec_t', pg_read_binary_file('/tmp/ingest_regress_files/utf16-bad.csv.gz'));
-- the same mapped away is accepted, and loads
SELECT ingest.enqueue_file('dec_t', '/tmp/ingest_regress_files/utf16-bad.csv', '{"columns": {"prénom": "name"}}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted FROM ingest.upload_jobs WHERE id = :id;
SELECT * FROM dec_t;
TRUNCATE dec_t;
-- a file whose first 64 kB of text hold no line end: nothing is said at enqueue (the
-- worker then names the column)
COPY (SELECT repeat('x', 100000)) TO PROGRAM 'gzip -c > /tmp/ingest_regress_files/longhead.csv.gz';
SELECT ingest.enqueue_file('dec_t', '/tmp/ingest_regress_files/longhead.csv.gz') AS id \gset
SELECT ingest.wait(:id);
SELECT state, left(last_error, 12) AS last_error FROM ingest.upload_jobs WHERE id = :id;

-- two members one after the other (cat a.gz b.gz) are one file
SELECT ingest.enqueue_data('dec_t',
    pg_read_binary_file('/tmp/ingest_regress_files/g.csv.gz') ||
    (SELECT pg_read_binary_file('/tmp/ingest_regress_files/g.csv.gz')), '{"header": false, "max_errors": 2}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, rows_rejected FROM ingest.upload_jobs WHERE id = :id;
TRUNCATE dec_t;
-- "none": gzip bytes are read as they are (and are not text): the header check at
-- enqueue says so; without a header the worker does
SELECT ingest.enqueue_data('dec_t', :'gz', '{"compression": "none"}');
SELECT ingest.enqueue_data('dec_t', :'gz', '{"compression": "none", "header": false}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, regexp_replace(last_error, '0x[0-9a-f]{2}', '0x..', 'g') AS last_error FROM ingest.upload_jobs WHERE id = :id;
-- "gzip" on plain text: a clear error at byte 0, at enqueue (the header check decodes),
-- and in the worker without a header
SELECT ingest.enqueue_data('dec_t', csv(E'id,name\n1,a\n'), '{"compression": "gzip"}');
SELECT ingest.enqueue_data('dec_t', csv(E'id,name\n1,a\n'), '{"compression": "gzip", "header": false}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, last_error FROM ingest.upload_jobs WHERE id = :id;

-- ---------- truncated, corrupt, followed by garbage ----------
SELECT ingest.enqueue_data('dec_t', dec_cut(:'gz', 1, 5000)) AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, last_error FROM ingest.upload_jobs WHERE id = :id;
SELECT ingest.enqueue_data('dec_t', dec_cut(:'gz', 1, length(:'gz'::bytea) - 4)) AS id \gset
SELECT ingest.wait(:id);
SELECT state, last_error FROM ingest.upload_jobs WHERE id = :id;
-- a byte changed in the middle
SELECT ingest.enqueue_data('dec_t', overlay(:'gz'::bytea PLACING '\xffffffffffff'::bytea FROM 3000)) AS id \gset
SELECT ingest.wait(:id);
SELECT state, last_error,
       (regexp_match(last_error, 'at byte ([0-9]+)'))[1]::int BETWEEN 3000 AND length(:'gz'::bytea) AS offset_after_damage
  FROM ingest.upload_jobs WHERE id = :id;
SELECT ingest.enqueue_data('dec_t', :'gz'::bytea || '\x0102'::bytea) AS id \gset
SELECT ingest.wait(:id);
SELECT state, last_error FROM ingest.upload_jobs WHERE id = :id;
TRUNCATE dec_t;

-- ---------- a decompression bomb stops at ingest.max_file_size ----------
COPY (SELECT repeat('0', 1000) FROM generate_series(1, 20000))
    TO PROGRAM 'gzip -c > /tmp/ingest_regress_files/bomb.csv.gz';
SELECT (pg_stat_file('/tmp/ingest_regress_files/bomb.csv.gz')).size < 200000 AS small;
ALTER SYSTEM SET ingest.max_file_size = '1MB';
SELECT pg_reload_conf();
SELECT pg_sleep(0.2);
SELECT ingest.enqueue_file('dec_t', '/tmp/ingest_regress_files/bomb.csv.gz', '{"header": false, "columns": ["name"]}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, last_error FROM ingest.upload_jobs WHERE id = :id;
ALTER SYSTEM RESET ingest.max_file_size;
SELECT pg_reload_conf();
SELECT pg_sleep(0.2);
TRUNCATE dec_t;

-- ---------- zstd, as gzip ----------
COPY (SELECT i AS id, 'name ' || i AS name FROM generate_series(1, 5000) i)
    TO PROGRAM 'zstd -q -c > /tmp/ingest_regress_files/z.csv.zst' (FORMAT csv, HEADER);
SELECT pg_read_binary_file('/tmp/ingest_regress_files/z.csv.zst') AS zst \gset
SELECT encode(substr(:'zst'::bytea, 1, 4), 'hex') AS magic, length(:'zst'::bytea) < 30000 AS compressed;
-- a file (auto: recognised by its magic bytes)
SELECT ingest.enqueue_file('dec_t', '/tmp/ingest_regress_files/z.csv.zst') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, bytes_total = length(:'zst'::bytea) AS total_is_compressed,
       bytes_done = bytes_total AS done_is_total FROM ingest.upload_jobs WHERE id = :id;
SELECT count(*), sum(id), count(*) FILTER (WHERE name <> 'name ' || id) AS wrong FROM dec_t;
TRUNCATE dec_t;
-- uploaded data, with compression named
SELECT ingest.enqueue_data('dec_t', :'zst', '{"compression": "zstd"}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, bytes_done = bytes_total AS done_is_total FROM ingest.upload_jobs WHERE id = :id;
-- chunks, cut anywhere (the magic bytes across chunks 0, 1 and 2)
SELECT ingest.begin_upload('dec_t') AS id \gset
SELECT ingest.upload_chunk(:id, 0, dec_cut(:'zst', 1, 1)) > 0 AS ok;
SELECT ingest.upload_chunk(:id, 1, dec_cut(:'zst', 2, 2)) > 0 AS ok;
SELECT ingest.upload_chunk(:id, 2, dec_cut(:'zst', 4, 1000)) > 0 AS ok;
SELECT ingest.upload_chunk(:id, 3, dec_cut(:'zst', 1004, 100000)) > 0 AS ok;
SELECT ingest.finish_upload(:id) = :id AS queued;
SELECT ingest.wait(:id);
SELECT state, rows_inserted, bytes_done = bytes_total AS done_is_total FROM ingest.upload_jobs WHERE id = :id;
-- a large object
SELECT lo_from_bytea(0, :'zst') AS lo \gset
SELECT ingest.enqueue_lo('dec_t', :lo, '{"unlink": true}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted FROM ingest.upload_jobs WHERE id = :id;
SELECT count(*), count(DISTINCT id) FROM dec_t;
TRUNCATE dec_t;
-- a skippable frame (magic 0x184D2A50, 4 bytes of length, its bytes), then two frames
SELECT ingest.enqueue_data('dec_t', '\x502a4d1803000000abcdef'::bytea || :'zst'::bytea || :'zst'::bytea,
    '{"header": false, "max_errors": 2}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, rows_rejected FROM ingest.upload_jobs WHERE id = :id;
TRUNCATE dec_t;
-- the header checked at enqueue: a file, data, chunk 0 (whole: zstd decodes a block of
-- up to 128 kB at once, so the first 100 bytes of a frame give no text yet; accepted)
COPY (SELECT i AS id, 'name ' || i AS nom FROM generate_series(1, 5000) i)
    TO PROGRAM 'zstd -q -c > /tmp/ingest_regress_files/bad.csv.zst' (FORMAT csv, HEADER);
SELECT pg_read_binary_file('/tmp/ingest_regress_files/bad.csv.zst') AS badzst \gset
SELECT ingest.enqueue_file('dec_t', '/tmp/ingest_regress_files/bad.csv.zst');
SELECT ingest.enqueue_data('dec_t', :'badzst');
SELECT ingest.begin_upload('dec_t') AS id \gset
SELECT ingest.upload_chunk(:id, 0, dec_cut(:'badzst', 1, 100000));
SELECT ingest.upload_chunk(:id, 0, dec_cut(:'badzst', 1, 100)) AS received;
SELECT ingest.cancel(:id);
-- "zstd" on plain text: at byte 0, at enqueue, and in the worker without a header
SELECT ingest.enqueue_data('dec_t', csv(E'id,name\n1,a\n'), '{"compression": "zstd"}');
SELECT ingest.enqueue_data('dec_t', csv(E'id,name\n1,a\n'), '{"compression": "zstd", "header": false}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, last_error FROM ingest.upload_jobs WHERE id = :id;
-- truncated, corrupt, followed by garbage: the worker's errors (the header line is
-- skipped rather than checked, since a frame's first block decodes whole, at enqueue)
SELECT ingest.enqueue_data('dec_t', dec_cut(:'zst', 1, length(:'zst'::bytea) / 2), '{"header": false, "skip_lines": 1}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted,
       regexp_replace(last_error, 'byte [0-9]+ .*: [0-9]+ bytes', 'byte N ...: N bytes') AS last_error,
       (regexp_match(last_error, 'at byte ([0-9]+)'))[1]::int = length(:'zst'::bytea) / 2 AS offset_is_end
  FROM ingest.upload_jobs WHERE id = :id;
-- truncated in the first frame's block, with a header: said at enqueue
SELECT try($$SELECT ingest.enqueue_data('dec_t', substr(pg_read_binary_file('/tmp/ingest_regress_files/z.csv.zst'), 1, 5000))$$);
SELECT ingest.enqueue_data('dec_t', overlay(:'zst'::bytea PLACING '\xffffffffffff'::bytea FROM 3000), '{"header": false, "skip_lines": 1}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, last_error ~ '^uploaded data is not valid zstd data: .* at byte [0-9]+ of the compressed data: [0-9]+ bytes were decompressed before it\.$' AS says_zstd,
       (regexp_match(last_error, 'at byte ([0-9]+)'))[1]::int BETWEEN 3000 AND length(:'zst'::bytea) AS offset_after_damage
  FROM ingest.upload_jobs WHERE id = :id;
SELECT ingest.enqueue_data('dec_t', :'zst'::bytea || '\x0102'::bytea) AS id \gset
SELECT ingest.wait(:id);
SELECT state, (regexp_match(last_error, '^(.*) at byte'))[1] AS last_error,
       (regexp_match(last_error, 'at byte ([0-9]+)'))[1]::int = length(:'zst'::bytea) AS offset_is_end
  FROM ingest.upload_jobs WHERE id = :id;
-- a frame asking for a window of 128 MB (zstd --long=27, reading a pipe) is refused
COPY (SELECT 'name' UNION ALL SELECT 'a') TO PROGRAM 'zstd -q --long=27 -c > /tmp/ingest_regress_files/long.csv.zst';
SELECT ingest.enqueue_file('dec_t', '/tmp/ingest_regress_files/long.csv.zst', '{"header": false}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, last_error FROM ingest.upload_jobs WHERE id = :id;
TRUNCATE dec_t;
-- a bomb: 20 MB of text in a few kB, stopped at ingest.max_file_size; the header is
-- checked at enqueue, the bomb found by the worker
COPY (SELECT CASE WHEN i = 0 THEN 'name' ELSE repeat('0', 1000) END FROM generate_series(0, 20000) i)
    TO PROGRAM 'zstd -q -c > /tmp/ingest_regress_files/bomb.csv.zst';
SELECT (pg_stat_file('/tmp/ingest_regress_files/bomb.csv.zst')).size < 100000 AS small;
ALTER SYSTEM SET ingest.max_file_size = '1MB';
SELECT pg_reload_conf();
SELECT pg_sleep(0.2);
SELECT ingest.enqueue_file('dec_t', '/tmp/ingest_regress_files/bomb.csv.zst') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, regexp_replace(last_error, 'after [0-9]+ compressed', 'after N compressed') AS last_error
  FROM ingest.upload_jobs WHERE id = :id;
ALTER SYSTEM RESET ingest.max_file_size;
SELECT pg_reload_conf();
SELECT pg_sleep(0.2);
TRUNCATE dec_t;

-- ---------- encodings: each round-trips to the same text ----------
-- LATIN1 and WIN1252 written by COPY's own conversion; SJIS likewise (Japanese text)
COPY dec_ref TO '/tmp/ingest_regress_files/latin1.csv' (FORMAT csv, HEADER, ENCODING 'LATIN1');
SELECT ingest.enqueue_file('dec_t', '/tmp/ingest_regress_files/latin1.csv', '{"encoding": "LATIN1"}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, rows_rejected, same('dec_ref') FROM ingest.upload_jobs WHERE id = :id;
TRUNCATE dec_t;
-- the same file without the option: UTF-8 is assumed, the records are rejected with a hint
SELECT ingest.enqueue_file('dec_t', '/tmp/ingest_regress_files/latin1.csv', '{"max_errors": 10}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, rows_rejected FROM ingest.upload_jobs WHERE id = :id;
SELECT * FROM errors(:id);
SELECT ingest.enqueue_file('dec_t', '/tmp/ingest_regress_files/latin1.csv') AS id \gset
SELECT ingest.wait(:id);
SELECT state, last_error FROM ingest.upload_jobs WHERE id = :id;
TRUNCATE dec_t;
UPDATE dec_ref SET name = name || ' €' WHERE id = 4;
COPY dec_ref TO '/tmp/ingest_regress_files/win1252.csv' (FORMAT csv, HEADER, ENCODING 'WIN1252');
-- gzip and an encoding together
COPY dec_ref TO PROGRAM 'gzip -c > /tmp/ingest_regress_files/win1252.csv.gz' (FORMAT csv, HEADER, ENCODING 'WIN1252');
SELECT ingest.enqueue_file('dec_t', '/tmp/ingest_regress_files/win1252.csv.gz', '{"encoding": "WIN1252"}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, rows_rejected, same('dec_ref') FROM ingest.upload_jobs WHERE id = :id;
TRUNCATE dec_t;
COPY dec_ref_ja TO '/tmp/ingest_regress_files/sjis.csv' (FORMAT csv, HEADER, ENCODING 'SJIS');
-- SJIS: a byte of a character can be the delimiter or the quote (ソ is 0x83 0x5c, 表 0x95 0x5c)
SELECT ingest.enqueue_file('dec_t', '/tmp/ingest_regress_files/sjis.csv', '{"encoding": "SJIS"}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, rows_rejected, same('dec_ref_ja') FROM ingest.upload_jobs WHERE id = :id;
TRUNCATE dec_t;
-- read in chunks of 1 and 2 bytes, so characters are cut across reads
SELECT pg_read_binary_file('/tmp/ingest_regress_files/sjis.csv') AS sjis \gset
SELECT ingest.begin_upload('dec_t', '{"encoding": "SJIS"}') AS id \gset
SELECT count(ingest.upload_chunk(:id, i - 1, dec_cut(:'sjis', i, 1))) FROM generate_series(1, length(:'sjis'::bytea)) i;
SELECT ingest.finish_upload(:id) = :id AS queued;
SELECT ingest.wait(:id);
SELECT state, rows_inserted, rows_rejected, same('dec_ref_ja') FROM ingest.upload_jobs WHERE id = :id;
TRUNCATE dec_t;
-- UTF-16 with a byte order mark (Excel's "Unicode text"), little- and big-endian, with
-- characters outside the BMP (surrogate pairs); recognised without the option
INSERT INTO dec_ref_ja VALUES (4, 'emoji 😀 and 𝄞');
COPY dec_ref_ja TO PROGRAM 'iconv -f UTF-8 -t UTF-16LE | (printf "\377\376"; cat) > /tmp/ingest_regress_files/utf16le.csv' (FORMAT csv, HEADER);
COPY dec_ref_ja TO PROGRAM 'iconv -f UTF-8 -t UTF-16BE | (printf "\376\377"; cat) > /tmp/ingest_regress_files/utf16be.csv' (FORMAT csv, HEADER);
SELECT encode(substr(pg_read_binary_file('/tmp/ingest_regress_files/utf16le.csv'), 1, 6), 'hex') AS le,
       encode(substr(pg_read_binary_file('/tmp/ingest_regress_files/utf16be.csv'), 1, 6), 'hex') AS be;
SELECT ingest.enqueue_file('dec_t', '/tmp/ingest_regress_files/utf16le.csv') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, rows_rejected, same('dec_ref_ja') FROM ingest.upload_jobs WHERE id = :id;
TRUNCATE dec_t;
SELECT ingest.enqueue_data('dec_t', pg_read_binary_file('/tmp/ingest_regress_files/utf16be.csv'), '{"encoding": "UTF16"}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, rows_rejected, same('dec_ref_ja') FROM ingest.upload_jobs WHERE id = :id;
TRUNCATE dec_t;
-- gzip of UTF-16, as a large object
COPY dec_ref_ja TO PROGRAM 'iconv -f UTF-8 -t UTF-16LE | (printf "\377\376"; cat) | gzip -c > /tmp/ingest_regress_files/utf16le.csv.gz' (FORMAT csv, HEADER);
SELECT lo_from_bytea(0, pg_read_binary_file('/tmp/ingest_regress_files/utf16le.csv.gz')) AS lo \gset
SELECT ingest.enqueue_lo('dec_t', :lo, '{"unlink": true}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, rows_rejected, same('dec_ref_ja') FROM ingest.upload_jobs WHERE id = :id;
TRUNCATE dec_t;

-- ---------- a bad byte sequence rejects its record, not the job ----------
-- WIN1252: 0x81 has no character; LATIN1: a NUL byte
SELECT ingest.enqueue_data('dec_t', convert_to(E'id,name\n1,caf\u00e9\n2,', 'WIN1252') || '\x81'::bytea
    || convert_to(E'x\n3,ok\n', 'WIN1252'), '{"encoding": "WIN1252", "max_errors": 5}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, rows_rejected FROM ingest.upload_jobs WHERE id = :id;
SELECT * FROM errors(:id);
SELECT * FROM dec_t ORDER BY id;
TRUNCATE dec_t;
SELECT ingest.enqueue_data('dec_t', convert_to(E'id,name\n1,a', 'LATIN1') || '\x00'::bytea
    || convert_to(E'b\n2,\u00fcber\n', 'LATIN1'), '{"encoding": "LATIN1", "max_errors": 5}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, rows_rejected FROM ingest.upload_jobs WHERE id = :id;
SELECT * FROM errors(:id);
TRUNCATE dec_t;
-- SJIS: a lead byte with no valid second byte; the next record is read as it should be
SELECT ingest.enqueue_data('dec_t', convert_to(E'id,name\n1,\u65e5', 'SJIS') || '\x81'::bytea
    || convert_to(E'\n2,\u8868\n', 'SJIS'), '{"encoding": "SJIS", "max_errors": 5}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, rows_rejected FROM ingest.upload_jobs WHERE id = :id;
SELECT * FROM errors(:id);
SELECT * FROM dec_t ORDER BY id;
TRUNCATE dec_t;
-- UTF-16: an unpaired surrogate (a high one, then a low one alone) and an odd last byte
-- utf16le(text): UTF-16LE code units of BMP text
CREATE FUNCTION utf16le(t text) RETURNS bytea LANGUAGE sql AS $$
    SELECT coalesce(string_agg(set_byte(set_byte('\x0000'::bytea, 0, c % 256), 1, c / 256), ''::bytea ORDER BY i), '')
      FROM (SELECT i, ascii(substr(t, i, 1)) AS c FROM generate_series(1, length(t)) i) s $$;
SELECT ingest.enqueue_data('dec_t', '\xfffe'::bytea || utf16le(E'id,name\n1,a') || '\x3dd8'::bytea
    || utf16le(E'b\n2,') || '\x00dc'::bytea || utf16le(E'\n3,\u00e9t\u00e9\n4,x') || '\x41'::bytea,
    '{"max_errors": 5}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, rows_rejected FROM ingest.upload_jobs WHERE id = :id;
SELECT * FROM errors(:id);
SELECT * FROM dec_t ORDER BY id;
TRUNCATE dec_t;
-- a UTF-8 file with a bad byte and no "encoding": the hint names the option
SELECT ingest.enqueue_data('dec_t', csv(E'id,name\n1,a') || '\xe9'::bytea || csv(E'\n2,b\n'), '{"max_errors": 5}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, rows_rejected FROM ingest.upload_jobs WHERE id = :id;
SELECT * FROM errors(:id);
DROP TABLE dec_t, dec_ref, dec_ref_ja;
DROP FUNCTION same(regclass), dec_cut(bytea, int, int), utf16le(text);
