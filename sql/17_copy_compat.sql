-- 17_copy_compat: the same bytes loaded by COPY ... (FORMAT csv) and by ingest into twin
-- tables; the contents must be the same, or differ as README "Differences from COPY" says.
-- Each case: cc_setup(name, columns, bytes, COPY options) makes cc_copy_NAME and
-- cc_ing_NAME, writes the file under /tmp/ingest_regress_files and runs COPY (its error,
-- with the line COPY names, is kept); then ingest loads the same bytes; cc_compare tells both
-- outcomes and whether the tables hold the same rows.
CREATE TABLE cc_case (name text PRIMARY KEY, copy_result text, data bytea);
CREATE FUNCTION cc_data(text) RETURNS bytea LANGUAGE sql STABLE
    AS $$ SELECT data FROM cc_case WHERE name = $1 $$;
CREATE FUNCTION cc_setup(name text, cols text, data bytea, copy_opts text DEFAULT '')
    RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    path text := '/tmp/ingest_regress_files/cc_' || name || '.csv';
    lo oid;
    n bigint;
    result text;
    ctx text;
BEGIN
    EXECUTE format('CREATE TABLE %I (%s)', 'cc_copy_' || name, cols);
    EXECUTE format('CREATE TABLE %I (%s)', 'cc_ing_' || name, cols);
    lo := lo_from_bytea(0, data);
    PERFORM lo_export(lo, path);
    PERFORM lo_unlink(lo);
    BEGIN
        EXECUTE format('COPY %I FROM %L (FORMAT csv%s)', 'cc_copy_' || name, path, copy_opts);
        GET DIAGNOSTICS n = ROW_COUNT;
        result := 'ok, ' || n || ' rows';
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS ctx = PG_EXCEPTION_CONTEXT;
        result := SQLSTATE || ' at ' || coalesce(substring(ctx from 'line [0-9]+'), '?') || ': ' || SQLERRM;
    END;
    INSERT INTO cc_case VALUES (name, result, data);
    RETURN 'COPY: ' || result;
END $$;
CREATE FUNCTION cc_compare(name text, job bigint,
    OUT ingest text, OUT rejected text, OUT same_rows boolean)
    LANGUAGE plpgsql AS $$
DECLARE
    d bigint;
BEGIN
    SELECT j.state || ', ' || j.rows_inserted || ' rows' ||
           coalesce(': ' || regexp_replace(j.last_error, 'job [0-9]+', 'job N'), '')
      INTO ingest FROM ingest.upload_jobs j WHERE j.id = job;
    SELECT string_agg('line ' || e.line_number || ' ' || e.sqlstate || ' ' || e.message, '; '
                      ORDER BY e.line_number)
      INTO rejected FROM ingest.job_errors e WHERE e.job_id = job;
    EXECUTE format('SELECT count(*) FROM ((TABLE %1$I EXCEPT ALL TABLE %2$I) UNION ALL
                                          (TABLE %2$I EXCEPT ALL TABLE %1$I)) x',
                   'cc_copy_' || name, 'cc_ing_' || name) INTO d;
    same_rows := (d = 0);
END $$;
-- the rows of a table, quotes, NULLs and line ends made visible
CREATE FUNCTION cc_show(tab text) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        'SELECT replace(replace(t::text, E''\n'', ''\n''), E''\r'', ''\r'') FROM %I t ORDER BY 1', tab);
END $$;

-- 1. Stray quotes, read as COPY reads them: a quote starts or ends a quoted section
-- anywhere in a field; a doubled quote inside quotes is one quote; a backslash is data.
SELECT cc_setup('stray', 'id int, name text', csv(
    E'1, "Smith, John"\n2,"ab"cd\n3,ab"cd"\n4,ab"c,d"e\n5,"say ""hi"""\n' ||
    E'6,back\\slash\n7,"quoted \\"" inner"\n8,x""y\n9,"a"b"c"d\n'));
SELECT ingest.enqueue_data('cc_ing_stray', cc_data('stray'), '{"header": false}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM cc_compare('stray', :id);
SELECT * FROM cc_show('cc_ing_stray');

-- 2. The same file with "strict_quotes": true: the old refusal, one record per bad line
-- (documented difference: an option a user chooses), the parser resynchronised at the
-- next line.
CREATE TABLE cc_ing_stray_strict (id int, name text);
SELECT ingest.enqueue_data('cc_ing_stray_strict', cc_data('stray'),
    '{"header": false, "strict_quotes": true, "max_errors": 10}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, rows_rejected FROM ingest.upload_jobs WHERE id = :id;
SELECT line_number, sqlstate, message FROM errors(:id);
SELECT * FROM cc_show('cc_ing_stray_strict');
SELECT try($$SELECT ingest.enqueue_data('cc_ing_stray_strict', csv('1,a'), '{"strict_quotes": "yes"}')$$);

-- 3. A non-empty null string: a quoted field equal to it stays a string (COPY's rule), an
-- unquoted one is NULL; with the default null string, "" is the empty string.
SELECT cc_setup('qnull', 'a text, b text, c text', csv(
    E'NULL,"NULL",x\n"",,NULL\nN"ULL",NULL"",z\n'), ', NULL ''NULL''');
SELECT ingest.enqueue_data('cc_ing_qnull', cc_data('qnull'), '{"header": false, "null": "NULL"}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM cc_compare('qnull', :id);
SELECT * FROM cc_show('cc_ing_qnull');
SELECT cc_setup('dnull', 'a text, b text', csv(E'"",\n,""\n'));
SELECT ingest.enqueue_data('cc_ing_dnull', cc_data('dnull'), '{"header": false}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM cc_compare('dnull', :id);
SELECT a IS NULL AS a_null, b IS NULL AS b_null FROM cc_ing_dnull ORDER BY 1;

-- 4. force_null, as COPY's FORCE_NULL: in the columns named, a quoted null string is NULL
-- too; a column not loaded is an error of the job.
SELECT cc_setup('fnull', 'a text, b text, c text', csv(
    E'"NULL","NULL","NULL"\nNULL,NULL,NULL\n"x","",""\n'), ', NULL ''NULL'', FORCE_NULL (b, c)');
SELECT ingest.enqueue_data('cc_ing_fnull', cc_data('fnull'),
    '{"header": false, "null": "NULL", "force_null": ["b", "c"]}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM cc_compare('fnull', :id);
SELECT * FROM cc_show('cc_ing_fnull');
SELECT cc_setup('fnull2', 'a text, b text', csv(E'"",""\n'), ', FORCE_NULL (b)');
SELECT ingest.enqueue_data('cc_ing_fnull2', cc_data('fnull2'), '{"header": false, "force_null": ["b"]}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM cc_compare('fnull2', :id);
SELECT ingest.enqueue_data('cc_ing_fnull2', cc_data('fnull2'),
    '{"header": false, "columns": ["a"], "force_null": ["b"]}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM cc_compare('fnull2', :id);
SELECT try($$SELECT ingest.enqueue_data('cc_ing_fnull2', csv('1,a'), '{"force_null": "b"}')$$);

-- 5. A line \. alone is data for ingest (as for COPY from a file on PostgreSQL 18); COPY
-- before 18 stops there. Only the version-independent part of COPY's result is shown.
SELECT cc_setup('eoc', 'a text', csv(E'a\\.\n\\.b\n"\\."\n\\.\nafter\n'));
SELECT ingest.enqueue_data('cc_ing_eoc', cc_data('eoc'), '{"header": false}') AS id \gset
SELECT ingest.wait(:id);
SELECT copy_result IN ('ok, 3 rows', 'ok, 5 rows') AS copy_stops_before_18
  FROM cc_case WHERE name = 'eoc';
SELECT * FROM cc_show('cc_ing_eoc');

-- 6. Mixed line ends (LF, then CRLF, then a lone CR): COPY refuses the file; ingest takes
-- each as a line end.
SELECT cc_setup('mixed', 'id int, t text', csv(E'1,a\n2,b\r\n3,c\r4,d\n'));
SELECT ingest.enqueue_data('cc_ing_mixed', cc_data('mixed'), '{"header": false}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM cc_compare('mixed', :id);
SELECT * FROM cc_show('cc_ing_mixed');

-- 7. A table with no columns: COPY takes empty lines only (an empty row each), and refuses
-- any other; ingest skips blank lines and refuses a record, naming its line.
SELECT cc_setup('nocols', '', csv(E'\n\n'));
SELECT ingest.enqueue_data('cc_ing_nocols', cc_data('nocols'), '{"header": false}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM cc_compare('nocols', :id);
SELECT cc_setup('nocols2', '', csv(E'\nx\n'));
SELECT ingest.enqueue_data('cc_ing_nocols2', cc_data('nocols2'), '{"header": false}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM cc_compare('nocols2', :id);
SELECT ingest.enqueue_data('cc_ing_nocols2', cc_data('nocols2'), '{"header": false, "max_errors": 5}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM cc_compare('nocols2', :id);

-- 8. A wrong field count and a bad value in one record: as COPY, too many fields is
-- reported first (22P04), and with too few the bad value before the missing column is
-- (22P02).
SELECT cc_setup('short', 'a int, b int, c int', csv(E'x,1\n'));
SELECT ingest.enqueue_data('cc_ing_short', cc_data('short'), '{"header": false, "max_errors": 5}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM cc_compare('short', :id);
SELECT cc_setup('long', 'a int, b int, c int', csv(E'x,1,2,3\n'));
SELECT ingest.enqueue_data('cc_ing_long', cc_data('long'), '{"header": false, "max_errors": 5}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM cc_compare('long', :id);
SELECT cc_setup('short2', 'a int, b int, c int', csv(E'1,2\n'));
SELECT ingest.enqueue_data('cc_ing_short2', cc_data('short2'), '{"header": false, "max_errors": 5}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM cc_compare('short2', :id);

-- 9. Line numbers: ingest counts every LF, CRLF and lone CR as one line end, inside quoted
-- fields too, and reports a record at the line where it starts; COPY counts only the
-- file's own line end inside quoted fields, and names the line where the record ends.
SELECT cc_setup('lines', 'a int, t text', csv(E'1,"x\r\ny"\r\n2,"p\nq\nr"\r\nbad,"s\r\nt"\r\n'));
SELECT ingest.enqueue_data('cc_ing_lines', cc_data('lines'), '{"header": false, "max_errors": 5}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM cc_compare('lines', :id);

-- 10. Some of PostgreSQL's own COPY CSV regression inputs (copy2.sql: testnl, y_csv with
-- and without FORCE QUOTE and with QUOTE '''' DELIMITER '|'; file_fdw text.csv).
SELECT cc_setup('testnl', 'a int, b text, c int', csv(E'1,"a field with two LFs\n\ninside",2\n'));
SELECT ingest.enqueue_data('cc_ing_testnl', cc_data('testnl'), '{"header": false}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM cc_compare('testnl', :id);
SELECT cc_setup('ycsv', 'col1 text, col2 text', csv(
    E'"Jackson, Sam",\\h\n"It is ""perfect"".",\t\n"",\n"Jackson, Sam","\\h"\n"It is ""perfect"".","\t"\n'));
SELECT ingest.enqueue_data('cc_ing_ycsv', cc_data('ycsv'), '{"header": false}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM cc_compare('ycsv', :id);
SELECT cc_setup('ypipe', 'col1 text, col2 text', csv(E'Jackson, Sam|\\h\nIt is "perfect".|\t\n''''|\n'),
    ', QUOTE '''''''', DELIMITER ''|''');
SELECT ingest.enqueue_data('cc_ing_ypipe', cc_data('ypipe'),
    '{"header": false, "quote": "''", "delimiter": "|"}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM cc_compare('ypipe', :id);
SELECT cc_setup('fdwtext', 'w1 text, w2 text, w3 text, w4 text', csv(
    E'AAA,aaa,123,""\nXYZ,xyz,"",321\nNULL,NULL,NULL,NULL\nNULL,NULL,"NULL",NULL\nABC,abc,"",""\n'),
    ', NULL ''NULL''');
SELECT ingest.enqueue_data('cc_ing_fdwtext', cc_data('fdwtext'), '{"header": false, "null": "NULL"}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM cc_compare('fdwtext', :id);
