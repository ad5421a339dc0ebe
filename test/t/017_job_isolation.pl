# Walls between jobs run by one worker (ingest.max_workers = 1): what a job's code creates or
# changes in the worker's session never reaches a later job.
#   1. The review's exploit: alice's trigger plants a temporary table (with a trigger of hers)
#      that shadows the table a superuser's audit trigger writes to, despite its
#      SET search_path; when the superuser's job runs next, alice must not become a superuser
#      and must not get the superuser's rows. Also with the trap set by a deferred trigger.
#   2. Each kind of leftover in two jobs of one owner in one process: prepared statements,
#      WITH HOLD cursors, session advisory locks and session settings are gone when the
#      next job runs (LISTEN is refused in workers); a job that made a temporary schema ends its worker.
#   3. Another owner's job runs in a fresh process: no placeholder setting and no random seed
#      of the earlier job reaches it.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IngestTest;

my $node = ingest_node('isolation',
	conf => "ingest.max_workers = 1\ningest.worker_idle_timeout = '5min'\n");

$node->safe_psql('postgres', q{
	CREATE EXTENSION ingest;
	CREATE ROLE alice NOLOGIN;
	CREATE ROLE bob NOLOGIN;
	GRANT CREATE ON SCHEMA public TO alice, bob;

	-- the superuser's table, audited by a trigger that pins its search_path
	CREATE TABLE public.ref (id int, v text);
	CREATE TABLE public.ref_audit (id int, v text);
	CREATE FUNCTION public.ref_audit() RETURNS trigger LANGUAGE plpgsql
	  SET search_path = public AS $$
	BEGIN INSERT INTO ref_audit VALUES (NEW.id, NEW.v); RETURN NEW; END $$;
	CREATE TRIGGER ref_audit AFTER INSERT ON public.ref
	  FOR EACH ROW EXECUTE FUNCTION public.ref_audit();
});

# alice's table and the trap her trigger tries to set
$node->safe_psql('postgres', q{
	SET ROLE alice;
	CREATE TABLE public.alice_t (id int, v text);
	CREATE TABLE public.alice_loot (id int, v text);
	GRANT INSERT ON public.alice_loot TO PUBLIC;
	CREATE FUNCTION public.escalate() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
	  INSERT INTO public.alice_loot VALUES (NEW.id, NEW.v);
	  ALTER ROLE alice SUPERUSER;
	  RETURN NEW;
	END $$;
	CREATE FUNCTION public.plant() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
	  CREATE TEMP TABLE IF NOT EXISTS ref_audit (id int, v text);
	  GRANT ALL ON ref_audit TO PUBLIC;
	  IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'trap'
	                 AND tgrelid = 'pg_temp.ref_audit'::regclass) THEN
	    CREATE TRIGGER trap BEFORE INSERT ON pg_temp.ref_audit
	      FOR EACH ROW EXECUTE FUNCTION public.escalate();
	  END IF;
	  RETURN NULL;
	END $$;
	CREATE TRIGGER plant AFTER INSERT ON public.alice_t
	  FOR EACH STATEMENT EXECUTE FUNCTION public.plant();
});

sub load_as
{
	my ($role, $table, $csv) = @_;
	my $set = $role ? "SET ROLE $role;" : '';
	my $id = $node->safe_psql('postgres',
		"$set SELECT ingest.enqueue_data('$table', convert_to(E'$csv', 'UTF8'))");
	ok(poll_until_finished($node, 'postgres', $id), "job $id of " . ($role || 'the superuser') . " finished");
	return $id;
}

# ---- 1. the exploit
my $a1 = load_as('alice', 'public.alice_t', 'id,v\n1,a\n');
is(job_row($node, 'postgres', $a1)->{state}, 'succeeded',
	"alice's job succeeds (her trigger may make a temporary table, as in her own session)");
my $alice_pid = $node->safe_psql('postgres', "SELECT worker_pid FROM ingest.upload_jobs WHERE id = $a1");

my $s1 = load_as(undef, 'public.ref', 'id,v\n1,secret\n');
is(job_row($node, 'postgres', $s1)->{state}, 'succeeded', "the superuser's job succeeds");
is($node->safe_psql('postgres', q{SELECT rolsuper FROM pg_roles WHERE rolname = 'alice'}), 'f',
	'alice did not become a superuser');
is($node->safe_psql('postgres', 'SELECT count(*) FROM public.alice_loot'), 0,
	"alice's table got none of the superuser's rows");
is($node->safe_psql('postgres', q{SELECT string_agg(id || ':' || v, ',') FROM public.ref_audit}),
	'1:secret', "the superuser's audit row went to the superuser's audit table");
isnt($node->safe_psql('postgres', "SELECT worker_pid FROM ingest.upload_jobs WHERE id = $s1"),
	$alice_pid, "the superuser's job ran in another process than alice's");
is( $node->safe_psql('postgres', q{
		SELECT count(*) FROM pg_namespace n JOIN pg_class c ON c.relnamespace = n.oid
		 WHERE n.nspname LIKE 'pg_temp%' AND c.relname = 'ref_audit'}),
	0, "alice's temporary table is gone with her worker");

# the same trap set from a deferred trigger, which fires at commit
$node->safe_psql('postgres', q{
	SET ROLE alice;
	CREATE TABLE public.alice_d (id int, v text);
	CREATE CONSTRAINT TRIGGER plant_late AFTER INSERT ON public.alice_d
	  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.plant();
});
my $a2 = load_as('alice', 'public.alice_d', 'id,v\n2,b\n');
is(job_row($node, 'postgres', $a2)->{state}, 'succeeded', "alice's job with a deferred trigger succeeds");
my $s2 = load_as(undef, 'public.ref', 'id,v\n2,secret2\n');
is(job_row($node, 'postgres', $s2)->{state}, 'succeeded', "the superuser's next job succeeds");
is($node->safe_psql('postgres', q{SELECT rolsuper FROM pg_roles WHERE rolname = 'alice'}), 'f',
	'alice still is no superuser');
is($node->safe_psql('postgres', 'SELECT count(*) FROM public.alice_loot'), 0,
	"alice's table still has none of the superuser's rows");
is($node->safe_psql('postgres', q{SELECT string_agg(id || ':' || v, ',' ORDER BY id) FROM public.ref_audit}),
	'1:secret,2:secret2', "both audit rows are in the superuser's audit table");

# ---- 2. each kind of leftover, in two jobs of alice's in one process
$node->safe_psql('postgres', q{
	SET ROLE alice;
	CREATE TABLE public.probe (n int);
	CREATE TABLE public.probe_log (job int, what text, result text);
	CREATE FUNCTION public.probe() RETURNS trigger LANGUAGE plpgsql AS $$
	DECLARE r text;
	BEGIN
	  INSERT INTO probe_log VALUES (NEW.n, 'pid', pg_backend_pid()::text);
	  IF NEW.n = 1 THEN
	    EXECUTE 'PREPARE p AS SELECT 1';
	    EXECUTE 'DECLARE c CURSOR WITH HOLD FOR SELECT 1';
	    BEGIN EXECUTE 'LISTEN ch'; r := 'done';
	    EXCEPTION WHEN OTHERS THEN r := SQLERRM; END;
	    INSERT INTO probe_log VALUES (1, 'listen', r);
	    PERFORM pg_advisory_lock(4711);
	    PERFORM set_config('work_mem', '77kB', false);
	    PERFORM set_config('app.leak', 'alice was here', false);
	    PERFORM setseed(0.42);
	  ELSIF NEW.n = 4 THEN
	    CREATE TEMP TABLE scratch (x int);
	    CREATE FUNCTION pg_temp.f() RETURNS int LANGUAGE sql AS 'SELECT 1';
	  ELSE
	    INSERT INTO probe_log VALUES (NEW.n, 'prepared', (SELECT count(*) FROM pg_prepared_statements)::text),
	      (NEW.n, 'cursors', (SELECT count(*) FROM pg_cursors)::text),
	      (NEW.n, 'listening', (SELECT count(*) FROM pg_listening_channels())::text),
	      (NEW.n, 'advisory', (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'
	                              AND pid = pg_backend_pid())::text),
	      (NEW.n, 'work_mem', current_setting('work_mem')),
	      (NEW.n, 'temp schema', (pg_my_temp_schema() <> 0)::text),
	      (NEW.n, 'app.leak', coalesce(current_setting('app.leak', true), '(none)')),
	      (NEW.n, 'random', random()::text);
	  END IF;
	  RETURN NEW;
	END $$;
	CREATE TRIGGER probe BEFORE INSERT ON public.probe FOR EACH ROW EXECUTE FUNCTION public.probe();
	GRANT INSERT ON public.probe, public.probe_log TO bob;
});

sub probe
{
	my ($job, $what) = @_;
	return $node->safe_psql('postgres',
		"SELECT result FROM public.probe_log WHERE job = $job AND what = '$what'");
}

my $p1 = load_as('alice', 'public.probe', 'n\n1\n');
is(job_row($node, 'postgres', $p1)->{state}, 'succeeded', "alice's first probe job succeeds");
like(probe(1, 'listen'), qr/cannot execute LISTEN within a background process/,
	'LISTEN is refused (PostgreSQL refuses it in any background worker)');
is( $node->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE pid = " . probe(1, 'pid')),
	1, 'the worker of the first job is still there');
my $p2 = load_as('alice', 'public.probe', 'n\n2\n');
is(job_row($node, 'postgres', $p2)->{state}, 'succeeded', "alice's second probe job succeeds");
is(probe(2, 'pid'), probe(1, 'pid'), 'both of alice\'s jobs ran in the same process');
is(probe(2, 'prepared'), 0, 'the prepared statement is gone');
is(probe(2, 'cursors'), 0, 'no cursor is open');
is(probe(2, 'listening'), 0, 'no channel is listened to');
is(probe(2, 'advisory'), 0, 'the session advisory lock was released');
is(probe(2, 'work_mem'), '4MB', 'the session setting is back to its default');
is(probe(2, 'temp schema'), 'false', 'the session has no temporary schema');

# a temporary schema ends the worker after the job
my $p4 = load_as('alice', 'public.probe', 'n\n4\n');
is(job_row($node, 'postgres', $p4)->{state}, 'succeeded', 'a job creating a temporary table and function succeeds');
my $p5 = load_as('alice', 'public.probe', 'n\n5\n');
isnt(probe(5, 'pid'), probe(4, 'pid'), 'the next job, of the same owner, runs in a fresh process');
is(probe(5, 'temp schema'), 'false', 'which has no temporary schema');

# ---- 3. bob's job runs in another process: no placeholder, no random seed of alice's
$node->safe_psql('postgres', q{
	SET ROLE alice; SELECT setseed(0.42);
	CREATE TABLE public.seeded AS SELECT random()::text AS r;
	GRANT SELECT ON public.seeded TO bob;
});
# alice's job n = 1 seeds the generator again, right before bob's job
load_as('alice', 'public.probe', 'n\n1\n');
my $b1 = load_as('bob', 'public.probe', 'n\n3\n');
is(job_row($node, 'postgres', $b1)->{state}, 'succeeded', "bob's probe job succeeds");
isnt(probe(3, 'pid'), probe(2, 'pid'), "bob's job ran in another process than alice's");
is(probe(3, 'app.leak'), '(none)', "alice's custom setting does not exist in bob's job");
isnt(probe(3, 'random'), $node->safe_psql('postgres', 'SELECT r FROM public.seeded'),
	"bob's random() does not follow the seed alice's job set");
is(probe(3, 'advisory'), 0, 'and bob holds no advisory lock of alice\'s');

done_testing();
