-- 19_mapping: headers that do not match the table: "columns" as a map from header names
-- to columns, "extra_columns", "header_match", a decimal comma, lines before the header.
CREATE TABLE meter (ts timestamptz, kwh numeric(12,3), temp float8, site text, note text DEFAULT 'none');
GRANT INSERT, SELECT, DELETE ON meter TO regress_plain;
CREATE TABLE meter_ro (ts timestamptz, kwh numeric, secret text);
GRANT INSERT (ts, kwh) ON meter_ro TO regress_plain;
SET ROLE regress_plain;

-- header names mapped to columns; a header field named as a column needs no mapping
SELECT ingest.enqueue_data('meter', csv(E'Timestamp,Energy (kWh),site\n'
                                        '2024-01-01 00:00+00,1.5,north\n'
                                        '2024-01-01 01:00+00,2.25,south\n'),
       '{"columns": {"Timestamp": "ts", "Energy (kWh)": "kwh"}}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT ts, kwh, site, note FROM meter ORDER BY ts;
DELETE FROM meter;

-- a header field neither mapped nor in the table: refused, naming it and the options; the
-- header is read at enqueue (for data, files, large objects, and chunk 0 of an upload)
SELECT ingest.enqueue_data('meter', csv(E'ts,kwh,Comment\n2024-01-01 00:00+00,1,hello\n'));
-- ... or skipped with "extra_columns": "ignore"
SELECT ingest.enqueue_data('meter', csv(E'ts,Comment,kwh\n2024-01-01 00:00+00,hello,1\n'),
       '{"extra_columns": "ignore"}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT ts, kwh, site, note FROM meter;
DELETE FROM meter;

-- names match exactly by default; "header_match": "insensitive" ignores case and spaces
SELECT ingest.enqueue_data('meter', csv(E'TS,KWh\n2024-01-01 00:00+00,3\n'));
SELECT ingest.enqueue_data('meter', csv(E' TS , KWh ,Site\n2024-01-01 00:00+00,3,east\n'),
       '{"header_match": "insensitive"}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
-- a header that names no column is a file read wrongly (here ";"-separated), even when
-- unknown header fields are ignored: refused, not loaded as rows of defaults
SELECT ingest.enqueue_data('meter', csv(E'ts;kwh\n2024-01-01 00:00+00;1\n'), '{"extra_columns": "ignore"}');
-- two keys of a map that a header field matches loosely: an error, never a guess; the key
-- written exactly as the field wins
SELECT ingest.enqueue_data('meter', csv(E' kwh ,ts\n1,2024-01-01 00:00+00\n'),
       '{"header_match": "insensitive", "columns": {"kwh": "kwh", "KWH": "temp"}}');
SELECT ingest.enqueue_data('meter', csv(E'KWH,ts\n5,2024-01-01 00:00+00\n'),
       '{"header_match": "insensitive", "columns": {"kwh": "kwh", "KWH": "temp"}}') AS id \gset
SELECT ingest.wait(:id);
SELECT kwh, temp FROM meter WHERE temp = 5;
DELETE FROM meter WHERE temp = 5;
-- a mapping's keys match the same way
SELECT ingest.enqueue_data('meter', csv(E'ENERGY,ts\n4,2024-01-01 00:00+00\n'),
       '{"header_match": "insensitive", "columns": {"energy": "kwh"}}') AS id \gset
SELECT ingest.wait(:id);
SELECT ts, kwh, site FROM meter ORDER BY kwh;
DELETE FROM meter;

-- a mapped header field the file does not have; two header fields loading one column
SELECT ingest.enqueue_data('meter', csv(E'ts\n2024-01-01 00:00+00\n'),
       '{"columns": {"Energy": "kwh"}}');
SELECT ingest.enqueue_data('meter', csv(E'kwh,Energy\n1,2\n'),
       '{"columns": {"Energy": "kwh"}}');

-- what a map names is checked at enqueue: the column exists, the role may insert into it
SELECT ingest.enqueue_data('meter', csv(E'a\n1\n'), '{"columns": {"a": "nope"}}');
SELECT ingest.enqueue_data('meter_ro', csv(E'a\n1\n'), '{"columns": {"a": "secret"}}');
SELECT ingest.enqueue_data('meter', csv(E'a\n1\n'), '{"columns": {"a": "kwh"}, "header": false}');
SELECT ingest.enqueue_data('meter', csv(E'a\n1\n'), '{"columns": {"a": ""}}');
SELECT ingest.enqueue_data('meter', csv(E'a\n1\n'), '{"extra_columns": "skip"}');
SELECT ingest.enqueue_data('meter', csv(E'a\n1\n'), '{"header_match": true}');
SELECT ingest.enqueue_data('meter', csv(E'a\n1\n'), '{"decimal": ";"}');
-- an unmapped header field the role may not insert is refused when the header is read
SELECT ingest.enqueue_data('meter_ro', csv(E'T,secret\n2024-01-01 00:00+00,x\n'),
       '{"columns": {"T": "ts"}}');
-- the early check reads the header as the worker will: strictly with strict_quotes
SELECT ingest.enqueue_data('meter', csv(E't"s",kwh\n2024-01-01 00:00+00,1\n'), '{"strict_quotes": true}');
-- chunk 0 of an upload brings the header: its error comes from upload_chunk
SELECT ingest.begin_upload('meter') AS up \gset
SELECT ingest.upload_chunk(:up, 0, csv(E'ts,kwh,Comment\n2024-01-01 00:00+00,1,hello\n'));
SELECT ingest.upload_chunk(:up, 0, csv(E'ts,kwh\n2024-01-01 00:00+00,1\n'));
SELECT ingest.upload_chunk(:up, 1, csv(E'2024-01-02 00:00+00,2\n'));
SELECT ingest.finish_upload(:up) IS NOT NULL AS finished;
SELECT ingest.wait(:up);
SELECT * FROM job(:up);
DELETE FROM meter;
-- a file on the server: its first 64 kB at enqueue
RESET ROLE;
COPY (SELECT 'ts,Comment' UNION ALL SELECT '2024-01-01 00:00+00,x') TO '/tmp/ingest_regress_files/mapping_bad_header.csv';
SELECT ingest.enqueue_file('meter', '/tmp/ingest_regress_files/mapping_bad_header.csv');
SET ROLE regress_plain;

-- "decimal": ",": numeric, real and double columns read 1.234,56; text is untouched; a
-- point that does not group thousands is an error, never silently another number
SELECT ingest.enqueue_data('meter', csv(E'ts;kwh;temp;site\n'
                                        '2024-01-01 00:00+00;1.234,5;-3,25;1,5\n'
                                        '2024-01-01 01:00+00;1234,567;1e3;2.5\n'
                                        '2024-01-01 02:00+00;12;NaN;x\n'
                                        '2024-01-01 03:00+00;1.5;0;bad\n'
                                        '2024-01-01 04:00+00;1.23.4;0;bad\n'
                                        '2024-01-01 05:00+00;1,2,3;0;bad\n'),
       '{"delimiter": ";", "decimal": ",", "max_errors": 10}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT ts, kwh, temp, site FROM meter ORDER BY ts;
SELECT line_number, sqlstate, message FROM errors(:id);
DELETE FROM meter;
RESET ROLE;
DROP TABLE meter, meter_ro;

-- "skip_lines": a report's preamble before the header; line numbers stay the file's own
CREATE TABLE skipped (id int, v text);
GRANT INSERT, SELECT ON skipped TO regress_plain;
SET ROLE regress_plain;
SELECT ingest.enqueue_data('skipped', csv(E'Report of 2024-01-01\r\n"quoted, with a ""quote"\r\n\r\n'
                                          'id,v\r\n1,one\r\nx,two\r\n3,three\r\n'),
       '{"skip_lines": 3, "max_errors": 5}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT * FROM skipped ORDER BY id;
SELECT line_number, message FROM errors(:id);
SELECT bytes_done = octet_length(csv(E'Report of 2024-01-01\r\n"quoted, with a ""quote"\r\n\r\n'
                                     'id,v\r\n1,one\r\nx,two\r\n3,three\r\n')) AS all_bytes_counted
  FROM ingest.upload_jobs WHERE id = :id;
-- lines end as the parser ends them: LF, CRLF or a lone CR
SELECT ingest.enqueue_data('skipped', csv(E'preamble\rid,v\r7,seven\r'), '{"skip_lines": 1}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT * FROM skipped WHERE id = 7;
-- more lines to skip than the file has: the job fails rather than load nothing quietly
SELECT ingest.enqueue_data('skipped', csv(E'a\nb\n'), '{"skip_lines": 5}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT ingest.enqueue_data('skipped', csv(E'a\nb\n'), '{"skip_lines": -1}');
RESET ROLE;
DROP TABLE skipped;
