-- 23_batched_equivalence: the batched insert path (multiinsert.c) against the per-row one.
-- Each case loads the same file twice into fresh copies of the same tables, once with
-- ingest.batched_insert off (per-row, the executor's own INSERT) and once on, and compares
-- the outcomes: job counters and error, rejected records (line, SQLSTATE, message), the
-- contents of every table of the case (triggers' side tables included) and its sequences.
-- An AFTER STATEMENT trigger on each table notes ingest.insert_path, the path each load
-- took (none is noted for a job that failed: its transaction rolled back).
CREATE ROLE regress_eq NOLOGIN;
CREATE TABLE public.eq_paths (schema text, path text);
CREATE FUNCTION public.eq_note_path() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public
    AS $$ BEGIN INSERT INTO public.eq_paths VALUES (TG_TABLE_SCHEMA, current_setting('ingest.insert_path')); RETURN NULL; END $$;
-- eq_enqueue(ddl, data, opts, target): the case's tables made in schemas eq_off and eq_on,
-- the file enqueued into each as regress_eq (app.tenant 'a'), batched_insert off then on;
-- returns the two job ids
CREATE FUNCTION eq_enqueue(ddl text, data text, opts jsonb DEFAULT '{"max_errors": 10}',
                           target text DEFAULT 't') RETURNS text
    LANGUAGE plpgsql AS $$
DECLARE s text; ids text := ''; r record;
BEGIN
    DELETE FROM public.eq_paths;
    FOREACH s IN ARRAY ARRAY['eq_off', 'eq_on'] LOOP
        EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', s);
        EXECUTE format('CREATE SCHEMA %I', s);
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO regress_eq', s);
        PERFORM set_config('search_path', s || ', public', true);
        EXECUTE ddl;
        IF ddl !~ 'GRANT' THEN
            EXECUTE format('GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA %I TO regress_eq', s);
        END IF;
        EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO regress_eq', s);
        FOR r IN SELECT c.relname FROM pg_class c
                  WHERE c.relnamespace = s::regnamespace AND c.relkind IN ('r', 'p') LOOP
            EXECUTE format('CREATE TRIGGER eq_path AFTER INSERT ON %I.%I FOR EACH STATEMENT EXECUTE FUNCTION public.eq_note_path()',
                           s, r.relname);
        END LOOP;
        PERFORM set_config('ingest.batched_insert', CASE s WHEN 'eq_on' THEN 'on' ELSE 'off' END, true);
        PERFORM set_config('app.tenant', 'a', true);
        PERFORM set_config('role', 'regress_eq', true);
        ids := ids || ingest.enqueue_data(target::regclass, convert_to(data, 'UTF8'), opts) || ' ';
        PERFORM set_config('role', 'none', true);
    END LOOP;
    RETURN trim(ids);
END $$;
-- eq_state(job, schema): what a load left, as lines
CREATE FUNCTION eq_state(job bigint, s text) RETURNS SETOF text
    LANGUAGE plpgsql AS $$
DECLARE r record; t text;
BEGIN
    PERFORM ingest.wait(job);
    SELECT * INTO r FROM ingest.upload_jobs WHERE id = job;
    RETURN NEXT format('job: %s, inserted %s, rejected %s, skipped %s%s', r.state, r.rows_inserted,
                       r.rows_rejected, r.rows_skipped,
                       COALESCE(', error: ' || regexp_replace(r.last_error, 'job [0-9]+', 'job N', 'g'), ''));
    FOR r IN SELECT * FROM errors(job) LOOP
        RETURN NEXT format('rejected line %s: %s %s', r.line_number, r.sqlstate, r.message);
    END LOOP;
    FOR r IN SELECT c.relname, c.relkind FROM pg_class c
              WHERE c.relnamespace = s::regnamespace AND c.relkind IN ('r', 'S') ORDER BY c.relname LOOP
        IF r.relkind = 'S' THEN
            EXECUTE format('SELECT last_value || '', '' || is_called FROM %I.%I', s, r.relname) INTO t;
            RETURN NEXT format('sequence %s: %s', r.relname, t);
        ELSE
            EXECUTE format('SELECT count(*) || '' rows'' || CASE WHEN count(*) > 20 THEN '', md5 '' || md5(string_agg(x::text, '' '' ORDER BY x::text)) ELSE '': '' || COALESCE(string_agg(x::text, '' '' ORDER BY x::text), '''') END FROM %I.%I x',
                           s, r.relname) INTO t;
            RETURN NEXT format('%s: %s', r.relname, t);
        END IF;
    END LOOP;
END $$;
-- eq_result(ids): the paths the two loads took, whether their outcomes are the same, and
-- the outcome (of the batched-on load)
CREATE FUNCTION eq_result(ids text) RETURNS SETOF text
    LANGUAGE plpgsql AS $$
DECLARE a text[]; b text[];
BEGIN
    a := ARRAY(SELECT regexp_replace(x, 'eq_o(n|ff)', 'eq_X', 'g')
                 FROM eq_state(split_part(ids, ' ', 1)::bigint, 'eq_off') x);
    b := ARRAY(SELECT regexp_replace(x, 'eq_o(n|ff)', 'eq_X', 'g')
                 FROM eq_state(split_part(ids, ' ', 2)::bigint, 'eq_on') x);
    RETURN NEXT format('paths: off %s, on %s',
                       (SELECT string_agg(DISTINCT path, ',') FROM eq_paths WHERE schema = 'eq_off'),
                       (SELECT string_agg(DISTINCT path, ',') FROM eq_paths WHERE schema = 'eq_on'));
    IF a = b THEN
        RETURN NEXT 'same outcome';
    ELSE
        RETURN NEXT 'DIFFERENT; per-row: ' || array_to_string(a, ' / ');
    END IF;
    RETURN QUERY SELECT unnest(b);
END $$;
SHOW ingest.batched_insert;
SHOW ingest.insert_path;
-- a plain role can neither turn it off nor set the path
SET ROLE regress_eq;
SET ingest.batched_insert = off;
SET ingest.insert_path = 'batched';
RESET ROLE;

-- 1. a primary key: duplicates and a bad value rejected, the rest in, batched
\set ddl 'CREATE TABLE t (id int PRIMARY KEY, v text)'
SELECT eq_enqueue(:'ddl', E'id,v\n1,a\n2,b\n1,dup\nx,bad\n3,c\n2,dup again\n') AS ids \gset
SELECT * FROM eq_result(:'ids');
-- the same without max_errors: the first duplicate fails the job, on both paths
SELECT eq_enqueue(:'ddl', E'id,v\n1,a\n2,b\n1,dup\n3,c\n', '{}') AS ids \gset
SELECT * FROM eq_result(:'ids');

-- 2. 2,500 rows, some TOASTed (flushes by rows and by bytes), duplicates on both sides of
-- a flush boundary, an AFTER ROW trigger counting
\set ddl 'CREATE TABLE t (id int PRIMARY KEY, v text); CREATE TABLE seen (id int); CREATE FUNCTION note() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO seen VALUES (NEW.id); RETURN NULL; END $$; CREATE TRIGGER note AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION note()'
SELECT 'id,v' || E'\n' || string_agg(CASE WHEN i IN (1000, 1001, 2400) THEN (i - 500)::text ELSE i::text END || ',' ||
       CASE WHEN i % 7 = 0 THEN (SELECT string_agg(md5((i * 1000 + k)::text), '') FROM generate_series(1, 100) k)
            ELSE 'v' || i END, E'\n' ORDER BY i) || E'\n' AS data
  FROM generate_series(1, 2500) i \gset
SELECT eq_enqueue(:'ddl', :'data') AS ids \gset
SELECT * FROM eq_result(:'ids');

-- 3. RLS, permissive and restrictive policies: only tenant a's rows, and the shared ones,
-- never 'forbidden'; tenant filled by its default from app.tenant
\set ddl 'CREATE TABLE t (tenant text NOT NULL DEFAULT current_setting(''app.tenant''), id int, v text, PRIMARY KEY (tenant, id)); ALTER TABLE t ENABLE ROW LEVEL SECURITY; CREATE POLICY own ON t USING (true) WITH CHECK (tenant = current_setting(''app.tenant'')); CREATE POLICY shared ON t FOR INSERT WITH CHECK (tenant = ''shared''); CREATE POLICY never ON t AS RESTRICTIVE FOR INSERT WITH CHECK (v IS DISTINCT FROM ''forbidden'')'
SELECT eq_enqueue(:'ddl', E'tenant,id,v\na,1,mine\nb,2,theirs\nshared,3,common\na,4,forbidden\na,5,ok\n') AS ids \gset
SELECT * FROM eq_result(:'ids');
-- what the loads rejected the owner cannot insert itself either, and no such row got in
SET ROLE regress_eq;
SET app.tenant = 'a';
INSERT INTO eq_on.t VALUES ('b', 2, 'theirs');
INSERT INTO eq_on.t VALUES ('a', 4, 'forbidden');
RESET ROLE;
RESET app.tenant;
SELECT s.schema, count(t.*) AS rows_the_owner_could_not_insert
  FROM (VALUES ('eq_on'), ('eq_off')) s(schema)
  LEFT JOIN (SELECT 'eq_on' AS schema, * FROM eq_on.t UNION ALL SELECT 'eq_off', * FROM eq_off.t) t
    ON t.schema = s.schema AND (t.tenant NOT IN ('a', 'shared') OR t.v = 'forbidden')
 GROUP BY 1 ORDER BY 1;
SELECT eq_enqueue(:'ddl', E'id,v\n1,defaulted\n2,forbidden\n', '{"max_errors": 10}') AS ids \gset
SELECT * FROM eq_result(:'ids');

-- 4. FORCE RLS on the owner's own table, a policy with a subquery on another table
\set ddl 'CREATE TABLE allowed (tenant text); INSERT INTO allowed VALUES (''a''), (''c''); CREATE TABLE t (tenant text, id int); ALTER TABLE t OWNER TO regress_eq; ALTER TABLE t ENABLE ROW LEVEL SECURITY; ALTER TABLE t FORCE ROW LEVEL SECURITY; CREATE POLICY sub ON t WITH CHECK (tenant IN (SELECT a.tenant FROM allowed a)); GRANT SELECT ON allowed TO regress_eq'
SELECT eq_enqueue(:'ddl', E'tenant,id\na,1\nb,2\nc,3\n,4\n') AS ids \gset
SELECT * FROM eq_result(:'ids');

-- 5. column privileges: INSERT on (id, v) only; w takes its default (a file naming w is
-- refused at enqueue, and again by the worker before its INSERT starts, on either path)
\set ddl 'CREATE TABLE t (id int, v text, w text DEFAULT ''dflt''); GRANT INSERT (id, v), SELECT ON t TO regress_eq'
SELECT eq_enqueue(:'ddl', E'id,v\n1,a\n2,b\n') AS ids \gset
SELECT * FROM eq_result(:'ids');

-- 6. CHECK, NOT NULL, a domain
\set ddl 'CREATE DOMAIN code AS text CHECK (VALUE ~ ''^[A-Z]+$''); CREATE TABLE t (id int, qty int CHECK (qty >= 0), name text NOT NULL, c code)'
SELECT eq_enqueue(:'ddl', E'id,qty,name,c\n1,5,a,AB\n2,-1,b,CD\n3,1,,EF\n4,2,d,gh\n5,3,e,IJ\n') AS ids \gset
SELECT * FROM eq_result(:'ids');
-- max_errors 0: the CHECK failure names its line on both paths
SELECT eq_enqueue(:'ddl', E'id,qty,name,c\n1,5,a,AB\n2,-1,b,CD\n', '{}') AS ids \gset
SELECT * FROM eq_result(:'ids');

-- 7. unique (deferrable, made immediate with max_errors) and exclusion constraints
\set ddl 'CREATE TABLE t (id int, k int UNIQUE DEFERRABLE INITIALLY DEFERRED, r int4range, EXCLUDE USING gist (r WITH &&))'
SELECT eq_enqueue(:'ddl', E'id,k,r\n1,1,"[1,5)"\n2,1,"[10,20)"\n3,3,"[4,6)"\n4,4,"[30,40)"\n') AS ids \gset
SELECT * FROM eq_result(:'ids');
-- max_errors 0: the deferred unique check fails the job at commit
SELECT eq_enqueue(:'ddl', E'id,k,r\n1,1,"[1,5)"\n2,1,"[10,20)"\n', '{}') AS ids \gset
SELECT * FROM eq_result(:'ids');

-- 8. foreign keys, immediate and deferred
\set ddl 'CREATE TABLE parent (id int PRIMARY KEY); INSERT INTO parent VALUES (1), (2); CREATE TABLE t (id int, p int REFERENCES parent, q int REFERENCES parent DEFERRABLE INITIALLY DEFERRED)'
SELECT eq_enqueue(:'ddl', E'id,p,q\n1,1,1\n2,9,1\n3,1,9\n4,2,2\n') AS ids \gset
SELECT * FROM eq_result(:'ids');
SELECT eq_enqueue(:'ddl', E'id,p,q\n1,1,1\n3,1,9\n', '{}') AS ids \gset
SELECT * FROM eq_result(:'ids');

-- 9. identity, serial and stored generated columns (a CHECK on the generated one)
\set ddl 'CREATE TABLE t (id int GENERATED ALWAYS AS IDENTITY, a int, b int GENERATED ALWAYS AS (a * 2) STORED CHECK (b < 100), s bigserial)'
SELECT eq_enqueue(:'ddl', E'a\n1\n2\n60\n3\n') AS ids \gset
SELECT * FROM eq_result(:'ids');

-- 10. a volatile default that reads the table: per-row on both (as COPY would)
\set ddl 'CREATE TABLE t (id int, n bigint); CREATE FUNCTION rows_so_far() RETURNS bigint LANGUAGE sql VOLATILE AS $$ SELECT count(*) FROM t $$; ALTER TABLE t ALTER n SET DEFAULT rows_so_far()'
SELECT eq_enqueue(:'ddl', E'id\n1\n2\n3\n') AS ids \gset
SELECT * FROM eq_result(:'ids');

-- 11. triggers: statement triggers and AFTER ROW with transition tables (batched), and
-- a BEFORE ROW trigger that changes and skips rows (per-row)
\set ddl 'CREATE TABLE t (id int PRIMARY KEY, v text); CREATE TABLE log (what text); CREATE FUNCTION bs() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO log VALUES (''before statement''); RETURN NULL; END $$; CREATE FUNCTION ar() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO log VALUES (''row '' || NEW.id); RETURN NULL; END $$; CREATE FUNCTION tt() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO log SELECT ''new table '' || string_agg(id::text, '','' ORDER BY id) FROM newrows; RETURN NULL; END $$; CREATE TRIGGER bs BEFORE INSERT ON t FOR EACH STATEMENT EXECUTE FUNCTION bs(); CREATE TRIGGER ar AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION ar(); CREATE TRIGGER tt AFTER INSERT ON t REFERENCING NEW TABLE AS newrows FOR EACH STATEMENT EXECUTE FUNCTION tt()'
SELECT eq_enqueue(:'ddl', E'id,v\n1,a\n2,b\n1,dup\n3,c\n') AS ids \gset
SELECT * FROM eq_result(:'ids');
\set ddl 'CREATE TABLE t (id int PRIMARY KEY, v text); CREATE FUNCTION br() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.v = ''skip'' THEN RETURN NULL; END IF; NEW.v := upper(NEW.v); RETURN NEW; END $$; CREATE TRIGGER br BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION br()'
SELECT eq_enqueue(:'ddl', E'id,v\n1,a\n2,skip\n3,c\n') AS ids \gset
SELECT * FROM eq_result(:'ids');

-- 12. partitions: a partitioned target with a default partition and one whose columns are
-- in another order with a dropped one; a partition loaded directly (its partition
-- constraint checked); batched
\set ddl 'CREATE TABLE t (id int, v text) PARTITION BY RANGE (id); CREATE TABLE t_low (v text, dropme int, id int); ALTER TABLE t_low DROP COLUMN dropme; ALTER TABLE t ATTACH PARTITION t_low FOR VALUES FROM (0) TO (10); CREATE TABLE t_rest PARTITION OF t DEFAULT'
SELECT eq_enqueue(:'ddl', E'id,v\n1,low\n50,rest\n-5,rest too\n') AS ids \gset
SELECT * FROM eq_result(:'ids');
SELECT eq_enqueue(:'ddl', E'id,v\n1,low\n50,not here\n2,low\n', '{"max_errors": 10}', 't_low') AS ids \gset
SELECT * FROM eq_result(:'ids');

-- 12b. rows of one flush routed to three partitions: t_b with its columns reordered and one
-- dropped, a CHECK of its own, the generated column, and RLS of its own that denies
-- everything (ignored for routed rows, as by PostgreSQL's INSERT); t_a and t_c with an
-- AFTER ROW trigger numbering the rows it sees (in file order across partitions); a row
-- with no partition, one failing t_b's CHECK, a duplicate key in t_a
\set ddl 'CREATE TABLE t (id int, region text, v text, total int GENERATED ALWAYS AS (id * 10) STORED, PRIMARY KEY (region, id)) PARTITION BY LIST (region); CREATE TABLE t_a PARTITION OF t FOR VALUES IN (''a''); CREATE TABLE t_b (v text, dropme int, total int GENERATED ALWAYS AS (id * 10) STORED, region text NOT NULL, id int NOT NULL, CHECK (v <> ''bad'')); ALTER TABLE t_b DROP COLUMN dropme; ALTER TABLE t ATTACH PARTITION t_b FOR VALUES IN (''b''); ALTER TABLE t_b ENABLE ROW LEVEL SECURITY; ALTER TABLE t_b FORCE ROW LEVEL SECURITY; CREATE POLICY nothing ON t_b WITH CHECK (false); CREATE TABLE t_c PARTITION OF t FOR VALUES IN (''c''); CREATE TABLE seen (n serial, region text, id int, total int); CREATE FUNCTION note() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO seen (region, id, total) VALUES (NEW.region, NEW.id, NEW.total); RETURN NULL; END $$; CREATE TRIGGER note AFTER INSERT ON t_a FOR EACH ROW EXECUTE FUNCTION note(); CREATE TRIGGER note AFTER INSERT ON t_c FOR EACH ROW EXECUTE FUNCTION note()'
SELECT eq_enqueue(:'ddl', E'id,region,v\n1,a,first\n1,b,one b\n2,c,one c\n3,z,nowhere\n2,b,bad\n1,a,dup\n4,a,ok\n5,c,ok c\n6,b,ok b\n') AS ids \gset
SELECT * FROM eq_result(:'ids');
-- max_errors 0: the row with no partition fails the job, naming its line, on both paths
SELECT eq_enqueue(:'ddl', E'id,region,v\n1,a,first\n1,b,one b\n3,z,nowhere\n4,a,ok\n', '{}') AS ids \gset
SELECT * FROM eq_result(:'ids');

-- 12c. 3,000 rows over four partitions in many flushes (by rows, and by bytes with TOASTed
-- values): a default partition, itself partitioned with its columns reordered, one
-- partition with a dropped column; duplicates on both sides of flush boundaries
\set ddl 'CREATE TABLE t (id int, k int, v text, PRIMARY KEY (k, id)) PARTITION BY RANGE (k); CREATE TABLE t_0 PARTITION OF t FOR VALUES FROM (0) TO (1); CREATE TABLE t_1 (dropme text, id int NOT NULL, k int NOT NULL, v text); ALTER TABLE t_1 DROP COLUMN dropme; ALTER TABLE t ATTACH PARTITION t_1 FOR VALUES FROM (1) TO (2); CREATE TABLE t_rest (v text, k int NOT NULL, id int NOT NULL) PARTITION BY RANGE (id); CREATE TABLE t_rest_lo PARTITION OF t_rest FOR VALUES FROM (MINVALUE) TO (1500); CREATE TABLE t_rest_hi (id int NOT NULL, v text, k int NOT NULL); ALTER TABLE t_rest ATTACH PARTITION t_rest_hi FOR VALUES FROM (1500) TO (MAXVALUE); ALTER TABLE t ATTACH PARTITION t_rest DEFAULT'
SELECT 'id,k,v' || E'\n' || string_agg(CASE WHEN i IN (1000, 1001, 2400) THEN (i - 500)::text ELSE i::text END || ',' ||
       (i % 4)::text || ',' ||
       CASE WHEN i % 7 = 0 THEN (SELECT string_agg(md5((i * 1000 + k)::text), '') FROM generate_series(1, 100) k)
            ELSE 'v' || i END, E'\n' ORDER BY i) || E'\n' AS data
  FROM generate_series(1, 3000) i \gset
SELECT eq_enqueue(:'ddl', :'data') AS ids \gset
SELECT * FROM eq_result(:'ids');

-- 12d. RLS on the parent (a permissive and a restrictive policy, the tenant from its
-- default), routed to a partition with reordered columns: only tenant a's rows get in
\set ddl 'CREATE TABLE t (tenant text NOT NULL DEFAULT current_setting(''app.tenant''), id int, v text) PARTITION BY LIST (tenant); CREATE TABLE t_a (v text, id int, tenant text NOT NULL DEFAULT current_setting(''app.tenant'')); ALTER TABLE t ATTACH PARTITION t_a FOR VALUES IN (''a''); CREATE TABLE t_other PARTITION OF t DEFAULT; ALTER TABLE t ENABLE ROW LEVEL SECURITY; CREATE POLICY own ON t USING (true) WITH CHECK (tenant = current_setting(''app.tenant'')); CREATE POLICY never ON t AS RESTRICTIVE FOR INSERT WITH CHECK (v IS DISTINCT FROM ''forbidden'')'
SELECT eq_enqueue(:'ddl', E'tenant,id,v\na,1,mine\nb,2,theirs\na,3,forbidden\na,4,ok\n,5,none\n') AS ids \gset
SELECT * FROM eq_result(:'ids');
-- what the loads rejected the owner cannot insert itself either, and no such row got in
SET ROLE regress_eq;
SET app.tenant = 'a';
INSERT INTO eq_on.t VALUES ('b', 2, 'theirs');
INSERT INTO eq_on.t VALUES ('a', 3, 'forbidden');
RESET ROLE;
RESET app.tenant;
SELECT s.schema, count(t.*) AS rows_the_owner_could_not_insert
  FROM (VALUES ('eq_on'), ('eq_off')) s(schema)
  LEFT JOIN (SELECT 'eq_on' AS schema, * FROM eq_on.t UNION ALL SELECT 'eq_off', * FROM eq_off.t) t
    ON t.schema = s.schema AND (t.tenant IS DISTINCT FROM 'a' OR t.v = 'forbidden')
 GROUP BY 1 ORDER BY 1;
SELECT tableoid::regclass, * FROM eq_on.t ORDER BY id;

-- 12e. what keeps a partitioned target per-row, for the whole target: a partition with a
-- BEFORE ROW trigger (the rows of the other partitions too), a volatile CHECK constraint on
-- one partition, transition tables on the parent
\set ddl 'CREATE TABLE t (id int, v text) PARTITION BY RANGE (id); CREATE TABLE t_low PARTITION OF t FOR VALUES FROM (0) TO (10); CREATE TABLE t_rest PARTITION OF t DEFAULT; CREATE FUNCTION br() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.v = ''skip'' THEN RETURN NULL; END IF; NEW.v := upper(NEW.v) || '' '' || current_setting(''ingest.insert_path''); RETURN NEW; END $$; CREATE TRIGGER br BEFORE INSERT ON t_rest FOR EACH ROW EXECUTE FUNCTION br()'
SELECT eq_enqueue(:'ddl', E'id,v\n1,low\n50,rest\n60,skip\n2,low too\n') AS ids \gset
SELECT * FROM eq_result(:'ids');
\set ddl 'CREATE TABLE t (id int, v text) PARTITION BY RANGE (id); CREATE TABLE t_low PARTITION OF t FOR VALUES FROM (0) TO (10); CREATE TABLE t_rest PARTITION OF t DEFAULT; CREATE FUNCTION few() RETURNS boolean LANGUAGE sql VOLATILE AS $$ SELECT count(*) < 2 FROM t_rest $$; ALTER TABLE t_rest ADD CHECK (few())'
SELECT eq_enqueue(:'ddl', E'id,v\n1,low\n50,rest\n60,rest\n70,rest\n') AS ids \gset
SELECT * FROM eq_result(:'ids');
\set ddl 'CREATE TABLE t (id int, v text) PARTITION BY RANGE (id); CREATE TABLE t_low PARTITION OF t FOR VALUES FROM (0) TO (10); CREATE TABLE t_rest PARTITION OF t DEFAULT; CREATE TABLE log (what text); CREATE FUNCTION tt() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO log SELECT ''new table '' || string_agg(id::text, '','' ORDER BY id) FROM newrows; RETURN NULL; END $$; CREATE TRIGGER tt AFTER INSERT ON t REFERENCING NEW TABLE AS newrows FOR EACH STATEMENT EXECUTE FUNCTION tt()'
SELECT eq_enqueue(:'ddl', E'id,v\n1,low\n50,rest\n2,low\n') AS ids \gset
SELECT * FROM eq_result(:'ids');

-- 12f. a partition that gains a BEFORE ROW trigger after the batch was judged (here, by a
-- statement trigger on the parent, on a job's first attempt only: a sequence counts the
-- attempts): the batched load's first attempt fails with a serialization failure, leaving
-- no row, and the job's next attempt loads the file; the same rows as the per-row load's
CREATE SEQUENCE public.eq_attempt_eq_off;
CREATE SEQUENCE public.eq_attempt_eq_on;
\set ddl 'CREATE TABLE t (id int, v text) PARTITION BY RANGE (id); CREATE TABLE t_low PARTITION OF t FOR VALUES FROM (0) TO (10); CREATE TABLE t_rest PARTITION OF t DEFAULT; CREATE FUNCTION br() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$; CREATE FUNCTION add_br() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$ BEGIN IF nextval(format(''public.eq_attempt_%s'', TG_TABLE_SCHEMA)) = 1 THEN EXECUTE format(''CREATE TRIGGER br BEFORE INSERT ON %I.t_rest FOR EACH ROW EXECUTE FUNCTION %I.br()'', TG_TABLE_SCHEMA, TG_TABLE_SCHEMA); END IF; RETURN NULL; END $$; CREATE TRIGGER add_br BEFORE INSERT ON t FOR EACH STATEMENT EXECUTE FUNCTION add_br()'
SELECT eq_enqueue(:'ddl', E'id,v\n1,low\n50,rest\n2,low\n') AS ids \gset
SELECT * FROM eq_result(:'ids');
SELECT j.attempts, j.state FROM ingest.upload_jobs j
 WHERE j.id IN (split_part(:'ids', ' ', 1)::bigint, split_part(:'ids', ' ', 2)::bigint) ORDER BY j.id;
DROP SEQUENCE public.eq_attempt_eq_off, public.eq_attempt_eq_on;

-- 12g. a foreign key on the partitioned table (its check an AFTER ROW trigger on each
-- partition, so a failing row is found by halving): batched
\set ddl 'CREATE TABLE parent (id int PRIMARY KEY); INSERT INTO parent VALUES (1), (2); CREATE TABLE t (id int, p int REFERENCES parent) PARTITION BY RANGE (id); CREATE TABLE t_low (p int, id int); ALTER TABLE t ATTACH PARTITION t_low FOR VALUES FROM (0) TO (10); CREATE TABLE t_rest PARTITION OF t DEFAULT'
SELECT eq_enqueue(:'ddl', E'id,p\n1,1\n50,9\n2,2\n60,1\n3,9\n') AS ids \gset
SELECT * FROM eq_result(:'ids');

-- 13. rules: DO INSTEAD into another table, DO ALSO (per-row)
\set ddl 'CREATE TABLE t (id int, v text); CREATE TABLE elsewhere (id int, v text); CREATE RULE r AS ON INSERT TO t DO INSTEAD INSERT INTO elsewhere VALUES (NEW.id, NEW.v)'
SELECT eq_enqueue(:'ddl', E'id,v\n1,a\n2,b\n') AS ids \gset
SELECT * FROM eq_result(:'ids');
\set ddl 'CREATE TABLE t (id int, v text); CREATE TABLE also (id int); CREATE RULE r AS ON INSERT TO t DO ALSO INSERT INTO also VALUES (NEW.id)'
SELECT eq_enqueue(:'ddl', E'id,v\n1,a\n2,b\n') AS ids \gset
SELECT * FROM eq_result(:'ids');

-- 14. on_conflict nothing and update (per-row)
\set ddl 'CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, ''old'')'
SELECT eq_enqueue(:'ddl', E'id,v\n1,new\n2,b\n', '{"on_conflict": "nothing"}') AS ids \gset
SELECT * FROM eq_result(:'ids');
SELECT eq_enqueue(:'ddl', E'id,v\n1,new\n2,b\n', '{"on_conflict": "update"}') AS ids \gset
SELECT * FROM eq_result(:'ids');

-- 15. a volatile WITH CHECK expression, and a volatile CHECK constraint (per-row)
\set ddl 'CREATE TABLE t (id int); CREATE FUNCTION few() RETURNS boolean LANGUAGE sql VOLATILE AS $$ SELECT count(*) < 2 FROM t $$; ALTER TABLE t ENABLE ROW LEVEL SECURITY; CREATE POLICY p ON t USING (true) WITH CHECK (few())'
SELECT eq_enqueue(:'ddl', E'id\n1\n2\n3\n') AS ids \gset
SELECT * FROM eq_result(:'ids');
\set ddl 'CREATE TABLE t (id int); CREATE FUNCTION few() RETURNS boolean LANGUAGE sql VOLATILE AS $$ SELECT count(*) < 2 FROM t $$; ALTER TABLE t ADD CHECK (few())'
SELECT eq_enqueue(:'ddl', E'id\n1\n2\n3\n') AS ids \gset
SELECT * FROM eq_result(:'ids');

-- 15b. a STABLE function that calls a VOLATILE one (volatility is not checked through a
-- call), in a WITH CHECK policy and in a CHECK constraint: the batched load must give the
-- per-row outcome (2 rows in, line 4 rejected), as the owner's own INSERT does
\set ddl 'CREATE TABLE t (id int); CREATE FUNCTION few_v() RETURNS boolean LANGUAGE sql VOLATILE AS $$ SELECT count(*) < 2 FROM t $$; CREATE FUNCTION few() RETURNS boolean LANGUAGE sql STABLE AS $$ SELECT few_v() $$; ALTER TABLE t ENABLE ROW LEVEL SECURITY; CREATE POLICY p ON t USING (true) WITH CHECK (few())'
SELECT eq_enqueue(:'ddl', E'id\n1\n2\n3\n') AS ids \gset
SELECT * FROM eq_result(:'ids');
\set ddl 'CREATE TABLE t (id int); CREATE FUNCTION few_v() RETURNS boolean LANGUAGE sql VOLATILE AS $$ SELECT count(*) < 2 FROM t $$; CREATE FUNCTION few() RETURNS boolean LANGUAGE sql STABLE AS $$ SELECT few_v() $$; ALTER TABLE t ADD CHECK (few())'
SELECT eq_enqueue(:'ddl', E'id\n1\n2\n3\n') AS ids \gset
SELECT * FROM eq_result(:'ids');

-- 15c. a STABLE SQL function the planner inlines (as auth.uid() is), whose body calls only
-- built-in functions: judged by its body, it is batched, with the per-row outcome
\set ddl 'CREATE TABLE t (id int); CREATE FUNCTION my_org() RETURNS text LANGUAGE sql STABLE AS $$ SELECT coalesce(current_setting(''app.nope'', true), ''x'') $$; ALTER TABLE t ENABLE ROW LEVEL SECURITY; CREATE POLICY p ON t USING (true) WITH CHECK (my_org() = ''x'')'
SELECT eq_enqueue(:'ddl', E'id\n1\n2\n3\n') AS ids \gset
SELECT * FROM eq_result(:'ids');

-- 16. with commit_every, several batches (batch_rows 2)
\set ddl 'CREATE TABLE t (id int PRIMARY KEY, v text CHECK (v <> ''bad''))'
SET ingest.batch_rows = 2;
SELECT eq_enqueue(:'ddl', E'id,v\n1,a\n2,bad\n3,c\n3,dup\n4,d\n5,e\n', '{"max_errors": 10, "commit_every": 2}') AS ids \gset
RESET ingest.batch_rows;
SELECT * FROM eq_result(:'ids');

-- 17. The two differences README names, both with bad records only. With max_errors 0, a
-- duplicate key and, on a later line of the same flush, a failed CHECK: the per-row INSERT
-- meets the duplicate first, the batched one checks every row before it writes any, so its
-- error names the later line. Either way the job fails and nothing is loaded.
\set ddl 'CREATE TABLE t (id int PRIMARY KEY, v text CHECK (v <> ''bad''))'
SELECT eq_enqueue(:'ddl', E'id,v\n1,a\n1,dup\n2,bad\n', '{}') AS ids \gset
SELECT * FROM eq_result(:'ids');
-- with max_errors both reject the same records, in the same order
SELECT eq_enqueue(:'ddl', E'id,v\n1,a\n1,dup\n2,bad\n3,c\n') AS ids \gset
SELECT * FROM eq_result(:'ids');
-- an identity column and a duplicate key: the batched path had computed the identity values of
-- every row of the flush before the duplicate failed, so the rows retried after it get later
-- values (the same rows, the same rejections; only the generated numbers differ)
\set ddl 'CREATE TABLE t (id int PRIMARY KEY, n int GENERATED ALWAYS AS IDENTITY)'
SELECT eq_enqueue(:'ddl', E'id\n1\n1\n2\n3\n') AS ids \gset
SELECT * FROM eq_result(:'ids');

DROP SCHEMA eq_on CASCADE;
DROP SCHEMA eq_off CASCADE;
