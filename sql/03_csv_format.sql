-- 03_csv_format: how CSV text becomes rows: header matching, columns, defaults, quoting,
-- newlines inside fields, UTF-8, NULL versus empty string, delimiter/quote/null options,
-- line ends.
CREATE TABLE fmt (
    id   int PRIMARY KEY,
    a    text,
    b    text,
    n    numeric DEFAULT 7,
    d    date DEFAULT '2000-01-01',
    note text DEFAULT 'dflt'
);
-- show: the rows of fmt with newlines and carriage returns made visible
CREATE FUNCTION show_fmt(lo int, hi int)
    RETURNS TABLE (id int, a text, b text, n numeric, d date, note text)
    LANGUAGE sql STABLE
    AS $$ SELECT id, replace(replace(a, E'\n', '\n'), E'\r', '\r'),
                 replace(replace(b, E'\n', '\n'), E'\r', '\r'), n, d, note
            FROM fmt WHERE id BETWEEN lo AND hi ORDER BY id $$;

-- The header names the columns in any order; table columns missing from the file get
-- their defaults.
SELECT ingest.enqueue_data('fmt', csv(E'b,id,a\nB1,1,A1\nB2,2,A2\n')) AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT * FROM show_fmt(1, 9);

-- All columns, in another order again
SELECT ingest.enqueue_data('fmt', csv(E'note,d,n,b,a,id\nN3,2024-02-29,1.5,B3,A3,3\n')) AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM show_fmt(1, 9);

-- "columns" names the target columns in file order; the header line, if any, is skipped,
-- not matched (here it names nothing real).
SELECT ingest.enqueue_data('fmt', csv(E'whatever,header\n10,x10\n11,x11\n'),
       '{"columns": ["id", "a"]}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT * FROM show_fmt(10, 19);

-- header false with columns: every line is data
SELECT ingest.enqueue_data('fmt', csv(E'y12,12\ny13,13\n'),
       '{"header": false, "columns": ["b", "id"]}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM show_fmt(12, 13);

-- header false without columns: the file has every column, in table order
SELECT ingest.enqueue_data('fmt', csv(E'14,a14,b14,2.25,2001-02-03,n14\n'),
       '{"header": false}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM show_fmt(14, 14);

-- Quoting: delimiters, doubled quotes and newlines inside quoted fields; a quoted field
-- spanning lines is one field; spaces around unquoted fields are kept (as COPY keeps them).
SELECT ingest.enqueue_data('fmt', csv(
    E'id,a,b\n'
    '20,"comma, inside","he said ""hi"""\n'
    '21,"two\nlines",plain\n'
    '22,"quote "" comma , and\nnewline",x\n'
    '23, padded ,"  quoted spaces  "\n'
    '24,"""",""""""\n'
    '25,"a\n\nb",\n')) AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT id, a, b FROM show_fmt(20, 29);
SELECT id, length(a) AS len_a, length(b) AS len_b FROM fmt WHERE id BETWEEN 20 AND 29 ORDER BY id;

-- UTF-8 text, multi-byte characters in the header-matched columns and around delimiters
SELECT ingest.enqueue_data('fmt', csv(
    E'id,a,b\n'
    '30,Zürich,Ærøskøbing\n'
    '31,日本語,"中文, 한국어"\n'
    '32,😀,"emoji ""😀"" quoted"\n')) AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT id, a, b, length(a) AS chars_a, octet_length(a) AS bytes_a FROM fmt
 WHERE id BETWEEN 30 AND 39 ORDER BY id;

-- NULL versus empty string: by default an unquoted empty field is NULL, "" is ''.
SELECT ingest.enqueue_data('fmt', csv(E'id,a,b\n40,,""\n41,"",\n42,,\n')) AS id \gset
SELECT ingest.wait(:id);
SELECT id, a IS NULL AS a_null, a = '' AS a_empty, b IS NULL AS b_null, b = '' AS b_empty
  FROM fmt WHERE id BETWEEN 40 AND 49 ORDER BY id;

-- An empty field for a column with a default is NULL, not the default (as in COPY).
SELECT ingest.enqueue_data('fmt', csv(E'id,note\n43,\n')) AS id \gset
SELECT ingest.wait(:id);
SELECT id, note IS NULL AS note_null FROM fmt WHERE id = 43;

-- The null option: that string means NULL; an unquoted empty field is then ''.
SELECT ingest.enqueue_data('fmt', csv(E'id,a,b\n44,NA,\n45,,NA\n46,na,x\n'),
       '{"null": "NA"}') AS id \gset
SELECT ingest.wait(:id);
SELECT id, a IS NULL AS a_null, a, b IS NULL AS b_null, b
  FROM fmt WHERE id BETWEEN 44 AND 49 ORDER BY id;
-- ... and for a non-text column
SELECT ingest.enqueue_data('fmt', csv(E'id,n\n47,\\N\n'), '{"null": "\\N"}') AS id \gset
SELECT ingest.wait(:id);
SELECT id, n IS NULL AS n_null FROM fmt WHERE id = 47;

-- delimiter and quote options
SELECT ingest.enqueue_data('fmt', csv(E'id;a;b\n50;x;''semi;colon''\n51;''it''''s'';y\n'),
       '{"delimiter": ";", "quote": "''"}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT id, a, b FROM show_fmt(50, 51);
SELECT ingest.enqueue_data('fmt', csv(E'id\ta\tb\n52\ttab\t"q\tt"\n'),
       '{"delimiter": "\t"}') AS id \gset
SELECT ingest.wait(:id);
SELECT id, replace(a, E'\t', '\t') AS a, replace(b, E'\t', '\t') AS b FROM fmt WHERE id = 52;
SELECT ingest.enqueue_data('fmt', csv(E'id|a|b\n53|"x|y"|"z"\n'), '{"delimiter": "|"}') AS id \gset
SELECT ingest.wait(:id);
SELECT id, a, b FROM show_fmt(53, 53);

-- Line ends: CRLF, and no line end after the last record
SELECT ingest.enqueue_data('fmt', csv(E'id,a,b\r\n60,crlf,x\r\n61,"in\r\nside",y\r\n62,last,no newline')) AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT id, a, b FROM show_fmt(60, 69);

-- A file with a header and no records loads nothing and succeeds.
SELECT ingest.enqueue_data('fmt', csv(E'id,a,b\n')) AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);

-- Values are read by each column's input function
CREATE TABLE typed (id int, ts timestamptz, iv interval, arr int[], js jsonb, u uuid, f float8, ok boolean);
SELECT ingest.enqueue_data('typed', csv(
    E'id,ts,iv,arr,js,u,f,ok\n'
    '1,2024-05-06 07:08:09+00,1 day 02:00:00,"{1,2,3}","{""k"": [1, ""v""]}",a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,1.5e3,t\n'
    '2,epoch,P1Y2M,{},null,A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A12,-Infinity,off\n')) AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SET TimeZone = 'UTC';
SELECT * FROM typed ORDER BY id;
RESET TimeZone;
