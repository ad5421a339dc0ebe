# The extension's life around running and queued jobs:
#   - DROP EXTENSION while jobs run (one with commit_every, one without) and another is
#     queued: it completes once the running jobs have ended, the server stays up, the
#     workers leave (or serve the re-created extension) without an error, and a job of the
#     re-created extension runs as usual;
#   - ALTER EXTENSION ingest UPDATE from 1.0 with jobs queued, finished and left running
#     under 1.0: the workers wait for the update, then run them; the old rows keep their
#     data, and the updated schema is identical to a fresh CREATE EXTENSION (which runs
#     the one install script of the current version); the same from 1.2, with a job
#     queued under 1.2;
#   - privileges, fresh and updated: a plain role and a role shared by an app's users
#     (as Supabase's "authenticated") call the API and read the views, and their jobs
#     load, but they cannot call the internal functions (the worker's _batch_*, ...);
#     ingest_admin reads the statistics, which call the quota functions;
#   - databases without the extension at server start: their workers leave at once and
#     they can be dropped;
#   - DROP DATABASE of a database whose workers are idle succeeds at the first attempt.
# test/t/005_databases.pl already covers jobs in two databases at once, a database without
# ingest left untouched (and ingest's functions missing there), CREATE DATABASE from the
# templates, DROP DATABASE once jobs have finished (with retries) and DROP/CREATE
# EXTENSION with no job running: not repeated here.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IngestTest;

# batch_rows 100: a job commits (with commit_every) and looks at its cancel flag often;
# idle workers stay 5 minutes, so that they are there when a database is dropped
my $node = ingest_node('lifecycle', conf => q{
ingest.max_workers = 4
ingest.max_running_per_role = 2
ingest.batch_rows = 100
ingest.worker_idle_timeout = '5min'
});

my $pm_pid = postmaster_pid($node);
my $crash_re = qr/terminated by signal|server process .* was terminated|PANIC|could not record the outcome|exited with exit code 1|deadlock detected/;

# ---------------------------------------------------------------- DROP EXTENSION
$node->safe_psql('postgres', 'CREATE DATABASE lc');
# every row of job tags 1..9 takes a millisecond: a few thousand rows run for seconds
$node->safe_psql('lc', q{
	CREATE EXTENSION ingest;
	CREATE TABLE slow (job int, n int);
	CREATE FUNCTION slow_row() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN IF NEW.job < 10 THEN PERFORM pg_sleep(0.001); END IF; RETURN NEW; END $$;
	CREATE TRIGGER slow_row BEFORE INSERT ON slow FOR EACH ROW EXECUTE FUNCTION slow_row();
});

my $logpos = -s $node->logfile;
my $a = enqueue_rows($node, 'lc', 'slow', 1, 4000, '{"commit_every": 200}');
my $b = enqueue_rows($node, 'lc', 'slow', 2, 3000);
ok( $node->poll_query_until('lc', qq{
		SELECT count(*) = 2 FROM ingest.workers WHERE job_id IN ($a, $b)}),
	'A (commit_every) and B (one transaction) are running');
# max_running_per_role 2: C waits behind them
my $c = enqueue_rows($node, 'lc', 'slow', 3, 10);
ok( $node->poll_query_until('lc', qq{
		SELECT records_done >= 400 FROM ingest.upload_jobs WHERE id = $a}),
	'A has committed a few batches');
is(job_row($node, 'lc', $c)->{state}, 'queued', 'C is queued');
is( $node->safe_psql('lc', "SELECT string_agg(state, ',' ORDER BY id) FROM ingest.upload_jobs WHERE id IN ($a, $b)"),
	'running,running', 'A and B are still running');

# DROP, CREATE again and a new job, in one go: the new job gets id 1 again, so a worker of
# the old extension that went on writing its job's row by id would write into this one
my ($ret, $out, $err) = $node->psql('lc', q{
	DROP EXTENSION ingest;
	CREATE EXTENSION ingest;
	SELECT ingest.enqueue_data('slow',
	       convert_to('job,n' || E'\n' || string_agg('4,' || i, E'\n' ORDER BY i), 'UTF8'))
	  FROM generate_series(1, 50) i;});
is($ret, 0, 'DROP EXTENSION with jobs running completes, and CREATE EXTENSION works again')
  or diag $err;
my ($d) = grep { /^\d+$/ } split /\n/, $out;
is($d, 1, 'the re-created extension starts its job ids again');
ok(poll_until_finished($node, 'lc', $d), 'the job of the re-created extension finished');
my $jd = job_row($node, 'lc', $d);
is($jd->{state}, 'succeeded', 'and succeeded');
is($jd->{attempts} . ' ' . $jd->{rows_inserted}, '1 50', 'at its first attempt, with its 50 rows');
is($node->safe_psql('lc', 'SELECT count(*) FROM ingest.upload_jobs'), 1,
	'the new queue holds the new job only');

# DROP EXTENSION waited for the running jobs: they loaded all their rows (A's batches were
# not cut off half-way, B's transaction committed); C, still queued, went with the queue
is( $node->safe_psql('lc', q{
		SELECT string_agg(job || ':' || c || ':' || d, ' ' ORDER BY job)
		  FROM (SELECT job, count(*) c, count(DISTINCT n) d FROM slow GROUP BY job) s}),
	'1:4000:4000 2:3000:3000 4:50:50',
	'A and B loaded all their rows, once; C loaded nothing; the new job its own rows');
is(postmaster_pid($node), $pm_pid, 'the postmaster was not restarted');
my @bad = log_lines_since($node, $logpos, $crash_re);
is(scalar @bad, 0, 'no crash, no worker error, no deadlock') or diag join "\n", @bad;

# DROP EXTENSION alone, with a job running: afterwards the database's workers leave
$logpos = -s $node->logfile;
my $e = enqueue_rows($node, 'lc', 'slow', 5, 2000, '{"commit_every": 200}');
ok( $node->poll_query_until('lc', qq{
		SELECT records_done >= 200 FROM ingest.upload_jobs WHERE id = $e}),
	'E is running and has committed a batch');
($ret, $out, $err) = $node->psql('lc', 'DROP EXTENSION ingest');
is($ret, 0, 'DROP EXTENSION completes') or diag $err;
is($node->safe_psql('lc', 'SELECT count(*) FROM slow WHERE job = 5'), 2000,
	'E had loaded all its rows when the extension went');
ok( $node->poll_query_until('postgres', q{
		SELECT count(*) = 0 FROM pg_stat_activity
		 WHERE backend_type = 'ingest worker' AND datname = 'lc'}),
	'the workers of the database leave once the extension is gone');
@bad = log_lines_since($node, $logpos, $crash_re);
is(scalar @bad, 0, 'and they leave without an error') or diag join "\n", @bad;
$node->safe_psql('lc', 'CREATE EXTENSION ingest');
my $f = enqueue_rows($node, 'lc', 'slow', 6, 20);
ok(poll_until_finished($node, 'lc', $f), 'a job after CREATE EXTENSION finished');
is(job_row($node, 'lc', $f)->{state}, 'succeeded', 'and succeeded');

# A job that fails (record 2,500 is bad) while DROP EXTENSION waits for it: the failed
# transaction gives up the worker's hold on the extension, the DROP goes ahead, and the
# worker, finding nothing to record the failure in, says so and goes on quietly
$logpos = -s $node->logfile;
my $g = $node->safe_psql('lc', q{
	SELECT ingest.enqueue_data('slow',
	       convert_to('job,n' || E'\n' ||
	                  string_agg('7,' || CASE WHEN i = 2500 THEN 'x' ELSE i::text END, E'\n' ORDER BY i), 'UTF8'),
	       '{"commit_every": 200}')
	  FROM generate_series(1, 3000) i});
ok( $node->poll_query_until('lc', qq{
		SELECT records_done >= 400 FROM ingest.upload_jobs WHERE id = $g}),
	'G is running and has committed batches');
($ret, $out, $err) = $node->psql('lc', 'DROP EXTENSION ingest');
is($ret, 0, 'DROP EXTENSION completes') or diag $err;
is($node->safe_psql('lc', 'SELECT count(*) FROM slow WHERE job = 7'), 2400,
	'it waited for G, whose batches before the bad record stay');
ok( $node->wait_for_log(
		qr/ingest job $g failed, but the extension was dropped meanwhile: nothing is recorded/, $logpos),
	'the worker says that the failure could not be recorded');
ok( $node->poll_query_until('postgres', q{
		SELECT count(*) = 0 FROM pg_stat_activity
		 WHERE backend_type = 'ingest worker' AND datname = 'lc'}),
	'and leaves');
@bad = log_lines_since($node, $logpos, $crash_re);
is(scalar @bad, 0, 'without an error') or diag join "\n", @bad;
$node->safe_psql('lc', 'CREATE EXTENSION ingest');
my $h = enqueue_rows($node, 'lc', 'slow', 8, 20);
ok(poll_until_finished($node, 'lc', $h), 'a job after CREATE EXTENSION finished');
is(job_row($node, 'lc', $h)->{state}, 'succeeded', 'and succeeded');

# ---------------------------------------------------------------- ALTER EXTENSION UPDATE
$node->safe_psql('postgres', 'CREATE DATABASE upd');
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('postgres', 'CREATE DATABASE plain');
$node->safe_psql('upd', q{CREATE EXTENSION ingest VERSION '1.0'; CREATE TABLE t (job int, n int)});
is($node->safe_psql('upd', q{SELECT extversion FROM pg_extension WHERE extname = 'ingest'}),
	'1.0', 'upd has ingest 1.0');

# Jobs as the 1.0 library left them (this library writes the 1.1 columns, so they are
# inserted by hand): one succeeded with a rejected record, one failed, two queued (one
# with commit_every), one left 'running' by a crash.
my $csv = sub {
	my ($tag, $rows) = @_;
	return qq{convert_to('job,n' || E'\\n' || (SELECT string_agg('$tag,' || i, E'\\n' ORDER BY i)
	                                        FROM generate_series(1, $rows) i), 'UTF8')};
};
$node->safe_psql('upd', qq{
	INSERT INTO ingest.upload_jobs (owner, target, source, source_type, state, attempts,
	        rows_inserted, rows_rejected, bytes_total, bytes_done, records_done, last_error,
	        started_at, finished_at)
	VALUES ('postgres', 't', 'uploaded data', 'data', 'succeeded', 1, 3, 1, 20, 20, 4, NULL,
	        now() - interval '1 hour', now() - interval '59 minutes'),
	       ('postgres', 't', 'uploaded data', 'data', 'failed', 1, 0, 0, 20, 0, 0,
	        'uploaded data, line 2: boom', now() - interval '1 hour', now() - interval '59 minutes');
	INSERT INTO ingest.job_errors (job_id, line_number, sqlstate, message, raw_line)
	VALUES (1, 3, '22P02', 'invalid input syntax for type integer: "x"', '11,x');
	INSERT INTO t SELECT 11, i FROM generate_series(1, 3) i;

	WITH j AS (
	  INSERT INTO ingest.upload_jobs (owner, target, source, source_type, options, state)
	  VALUES ('postgres', 't', 'uploaded data', 'data', '{}', 'queued') RETURNING id)
	INSERT INTO ingest.job_data SELECT id, ${\ $csv->(13, 1000)} FROM j;
	WITH j AS (
	  INSERT INTO ingest.upload_jobs (owner, target, source, source_type, options, state)
	  VALUES ('postgres', 't', 'uploaded data', 'data', '{"commit_every": 300}', 'queued') RETURNING id)
	INSERT INTO ingest.job_data SELECT id, ${\ $csv->(14, 1000)} FROM j;
	WITH j AS (
	  INSERT INTO ingest.upload_jobs (owner, target, source, source_type, options, state,
	          attempts, worker_pid, started_at)
	  VALUES ('postgres', 't', 'uploaded data', 'data', '{}', 'running', 1, 999999, now())
	  RETURNING id)
	INSERT INTO ingest.job_data SELECT id, ${\ $csv->(15, 500)} FROM j;
});
my $before_update = $node->safe_psql('upd', q{
	SELECT string_agg(concat_ws(':', id, state, attempts, rows_inserted, rows_rejected,
	                            records_done, last_error), ' ' ORDER BY id)
	  FROM ingest.upload_jobs WHERE id <= 2});

# A new library is installed with a restart; the launcher then looks at every database.
# (the message is looked for from before the restart: the worker may say its piece before
# restart returns; failures are looked for from the start of the new server)
my $restart_logpos = -s $node->logfile;
$node->restart;
$logpos = -s $node->logfile;
ok( $node->poll_query_until('postgres', q{
		SELECT count(*) >= 1 FROM pg_stat_activity
		 WHERE backend_type = 'ingest worker' AND datname = 'upd'}),
	'a worker came to upd, which has jobs queued under 1.0');
ok( $node->wait_for_log(qr/extension "ingest" in database "upd" is at version 1\.0, but this library needs version 1\.5/, $restart_logpos),
	'it says that the extension there needs ALTER EXTENSION UPDATE');
sleep 2;    # time for a worker that would mishandle 1.0 to do so
is( $node->safe_psql('upd',
		q{SELECT string_agg(id || ':' || state, ' ' ORDER BY id) FROM ingest.upload_jobs WHERE id > 2}),
	'3:queued 4:queued 5:running',
	'under 1.0 nothing is claimed or taken back');
is(scalar(ingest_worker_pids($node, 'upd')), 1, 'the worker waits in upd for the update');

$node->safe_psql('upd', 'ALTER EXTENSION ingest UPDATE');
is($node->safe_psql('upd', q{SELECT extversion FROM pg_extension WHERE extname = 'ingest'}),
	'1.5', 'upd has ingest 1.5');
ok(poll_until_finished($node, 'upd', 3, 4, 5), 'after the update the waiting jobs ran by themselves');
is( $node->safe_psql('upd', q{
		SELECT string_agg(id || ':' || state || ':' || rows_inserted, ' ' ORDER BY id)
		  FROM ingest.upload_jobs WHERE id > 2}),
	'3:succeeded:1000 4:succeeded:1000 5:succeeded:500',
	'the queued jobs and the one left running succeeded');
is( $node->safe_psql('upd', q{
		SELECT string_agg(job || ':' || c || ':' || d, ' ' ORDER BY job)
		  FROM (SELECT job, count(*) c, count(DISTINCT n) d FROM t GROUP BY job) s}),
	'11:3:3 13:1000:1000 14:1000:1000 15:500:500', 'with exactly their rows');
is( $node->safe_psql('upd', q{
		SELECT string_agg(concat_ws(':', id, state, attempts, rows_inserted, rows_rejected,
		                            records_done, last_error), ' ' ORDER BY id)
		  FROM ingest.upload_jobs WHERE id <= 2}),
	$before_update, 'the finished jobs keep their data');
is( $node->safe_psql('upd', q{
		SELECT job_id || ':' || line_number || ':' || sqlstate || ':' || raw_line
		       || ':' || coalesce(record_number::text, 'null') FROM ingest.job_errors}),
	'1:3:22P02:11,x:null', 'and so does their rejected record (record_number is new: NULL)');
is( $node->safe_psql('upd', q{
		SELECT string_agg(max_attempts || ':' || priority || ':' || coalesce(timeout::text, '-'), ' ' ORDER BY id)
		  FROM ingest.upload_jobs WHERE id <= 2}),
	'3:0:- 3:0:-', 'the new columns have their defaults on old rows');
@bad = log_lines_since($node, $logpos, qr/ERROR|FATAL|exited with exit code 1/);
is(scalar @bad, 0, 'no worker failed on the 1.0 tables, before or after the update')
  or diag join "\n", @bad;

# From 1.2, the version before the last: a job queued under 1.2 (by hand: this library's
# functions refuse to run at 1.2) waits for the update, whose commit wakes a worker.
$node->safe_psql('postgres', 'CREATE DATABASE upd12');
$node->safe_psql('upd12', q{CREATE EXTENSION ingest VERSION '1.2'; CREATE TABLE t (job int, n int)});
is($node->safe_psql('upd12', q{SELECT extversion FROM pg_extension WHERE extname = 'ingest'}),
	'1.2', 'upd12 has ingest 1.2');
my ($ret12, $out12, $err12) = $node->psql('upd12', q{SELECT ingest.enqueue_data('t', 'job,n')});
like($err12, qr/extension "ingest" is at version 1\.2, but the loaded library needs version 1\.5/,
	'at 1.2 the functions ask for the update');
$node->safe_psql('upd12', qq{
	WITH j AS (
	  INSERT INTO ingest_private.upload_jobs (owner, target, source, source_type, options, state)
	  VALUES ('postgres', 't', 'uploaded data', 'data', '{}', 'queued') RETURNING id)
	INSERT INTO ingest_private.job_data SELECT id, ${\ $csv->(16, 100)} FROM j;
});
sleep 1;
is($node->safe_psql('upd12', 'SELECT state FROM ingest.upload_jobs'), 'queued',
	'under 1.2 the job is not claimed');
$node->safe_psql('upd12', 'ALTER EXTENSION ingest UPDATE');
is($node->safe_psql('upd12', q{SELECT extversion FROM pg_extension WHERE extname = 'ingest'}),
	'1.5', 'upd12 has ingest 1.5');
ok(poll_until_finished($node, 'upd12', 1), 'after the update the job queued under 1.2 ran');
is( $node->safe_psql('upd12', q{SELECT state || ':' || rows_inserted FROM ingest.upload_jobs}),
	'succeeded:100', 'and loaded its rows');

# The updated schemas against a fresh install, object by object.
$node->safe_psql('fresh', 'CREATE EXTENSION ingest');
is($node->safe_psql('fresh', q{SELECT extversion FROM pg_extension WHERE extname = 'ingest'}),
	'1.5', 'fresh has ingest 1.5');
my %catalog = (
	'functions' => q{
		SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ') '
		       || pg_get_function_result(p.oid) || ' ' || p.prokind::text || p.provolatile::text
		       || p.proparallel::text || p.prosecdef::text || p.proisstrict::text || p.prorows
		       || ' ' || coalesce(p.proconfig::text, '-') || ' ' || coalesce(p.proacl::text, '-')
		       || ' ' || coalesce(p.probin, '-') || ' ' || md5(p.prosrc)
		       || ' ' || coalesce(pg_get_expr(p.proargdefaults, 0), '-')
		       || ' ' || coalesce(obj_description(p.oid, 'pg_proc'), '-')
		  FROM pg_proc p WHERE p.pronamespace = 'ingest'::regnamespace},
	'relations' => q{
		SELECT c.relnamespace::regnamespace || '.' || c.relname || ' ' || c.relkind::text || ' ' || c.relpersistence::text
		       || ' ' || c.relrowsecurity::text || c.relforcerowsecurity::text
		       || ' ' || coalesce(c.reloptions::text, '-') || ' ' || coalesce(c.relacl::text, '-')
		       || ' ' || coalesce(obj_description(c.oid, 'pg_class'), '-')
		  FROM pg_class c WHERE c.relnamespace IN ('ingest'::regnamespace, 'ingest_private'::regnamespace)},
	'columns' => q{
		SELECT c.relnamespace::regnamespace || '.' || c.relname || '.' || a.attname || ' ' || a.attnum || ' '
		       || format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull::text
		       || ' ' || a.attidentity::text || a.attgenerated::text || a.attstorage::text
		       || ' ' || a.attstattarget
		       || ' ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '-')
		       || ' ' || coalesce(a.attacl::text, '-')
		       || ' ' || coalesce(col_description(c.oid, a.attnum), '-')
		  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
		  LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
		 WHERE c.relnamespace IN ('ingest'::regnamespace, 'ingest_private'::regnamespace) AND a.attnum > 0 AND NOT a.attisdropped},
	'constraints' => q{
		SELECT conrelid::regclass || ' ' || conname || ' ' || contype::text || ' '
		       || pg_get_constraintdef(oid)
		  FROM pg_constraint WHERE connamespace IN ('ingest'::regnamespace, 'ingest_private'::regnamespace)},
	'indexes' => q{
		SELECT schemaname || '.' || indexname || ' ' || indexdef FROM pg_indexes WHERE schemaname IN ('ingest', 'ingest_private')},
	'index statistics' => q{
		SELECT a.attrelid::regclass || '.' || a.attnum || ' ' || a.attstattarget
		  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
		 WHERE c.relkind = 'i' AND c.relnamespace = 'ingest_private'::regnamespace},
	'initial privileges' => q{
		SELECT pg_describe_object(classoid, objoid, objsubid) || ' ' || privtype::text || ' '
		       || initprivs::text
		  FROM pg_init_privs},
	'views' => q{
		SELECT schemaname || '.' || viewname || ' ' || md5(definition) FROM pg_views WHERE schemaname IN ('ingest', 'ingest_private')},
	'policies' => q{
		SELECT tablename || ' ' || policyname || ' ' || permissive || ' ' || roles::text
		       || ' ' || cmd || ' ' || coalesce(qual, '-') || ' ' || coalesce(with_check, '-')
		  FROM pg_policies WHERE schemaname IN ('ingest', 'ingest_private')},
	'triggers' => q{
		SELECT tgrelid::regclass || ' ' || pg_get_triggerdef(oid) FROM pg_trigger
		 WHERE NOT tgisinternal AND tgrelid IN
		       (SELECT oid FROM pg_class WHERE relnamespace IN ('ingest'::regnamespace, 'ingest_private'::regnamespace))},
	'sequences' => q{
		SELECT sequencename || ' ' || data_type || ' ' || start_value || ' ' || increment_by
		       || ' ' || max_value || ' ' || cycle::text
		  FROM pg_sequences WHERE schemaname IN ('ingest', 'ingest_private')},
	'extension members' => q{
		SELECT pg_describe_object(classid, objid, objsubid) FROM pg_depend
		 WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
		   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'ingest')},
	'extension' => q{
		SELECT extname || ' ' || extversion || ' ' || extrelocatable::text || ' '
		       || extnamespace::regnamespace || ' '
		       || coalesce((SELECT string_agg(c::regclass::text, ',' ORDER BY c::regclass::text)
		                      FROM unnest(extconfig) c), '-')
		       || ' ' || coalesce(extcondition::text, '-')
		  FROM pg_extension WHERE extname = 'ingest'},
	'schema' => q{
		SELECT nspname || ' ' || coalesce(nspacl::text, '-') || ' '
		       || coalesce(obj_description(oid, 'pg_namespace'), '-')
		  FROM pg_namespace WHERE nspname IN ('ingest', 'ingest_private')});
for my $what (sort keys %catalog)
{
	my $sql = "SELECT string_agg(x, E'\\n' ORDER BY x) FROM ($catalog{$what}) s(x)";
	my $fresh = $node->safe_psql('fresh', $sql);
	isnt($fresh, '', "a fresh install has $what to compare") unless $what eq 'triggers';
	is($node->safe_psql('upd', $sql), $fresh, "updated from 1.0 and fresh: same $what");
	is($node->safe_psql('upd12', $sql), $fresh, "updated from 1.2 and fresh: same $what");
}

# ---------------------------------------------------------------- privileges of functions
# A plain login role, and a role many end users share (Supabase's "authenticated", taken
# with SET ROLE by the login role "authenticator"): the API and the views work for them
# and their jobs load (the worker's INSERT, as the job's owner, needs no privilege on
# _batch_*); every internal function the views do not call is refused to them. Fresh and
# updated from 1.0: the same privileges.
$node->safe_psql('postgres', q{
	CREATE ROLE plain_user LOGIN;
	CREATE ROLE authenticated NOLOGIN;
	CREATE ROLE authenticator LOGIN NOINHERIT IN ROLE authenticated;
	CREATE ROLE ops LOGIN IN ROLE ingest_admin;
});
# Every function's privilege is stated (a function created without a GRANT would be
# PUBLIC's), and PUBLIC may execute exactly the API and what the views and wait call.
is( $node->safe_psql('fresh', q{
		SELECT string_agg(p.proname, ' ' ORDER BY p.proname) FROM pg_proc p
		 WHERE p.pronamespace = 'ingest'::regnamespace
		   AND (p.proacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(p.proacl) a
		                                     WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE'))}),
	'_enqueued_here _job_visible _tenant_visible _worker_status begin_upload cancel current_tenant '
	  . 'discard enqueue_data enqueue_dir enqueue_file enqueue_lo finish_upload purge queue_position retry upload_chunk wait',
	'PUBLIC executes the API and the functions the views and wait call, nothing else');
my @internal = (
	'SELECT * FROM ingest._batch_rows() AS b(rn int, job int, n int)',
	'SELECT ingest._batch_mark(1)',
	'SELECT ingest._xid_is_current(pg_current_xact_id()::xid)',
	q{SELECT ingest._role_setting('postgres'::regrole, 'ingest.max_queued_per_role')},
	q{SELECT ingest._max_running('postgres'::regrole)},
	'SELECT ingest._wake_workers()');
for my $db ('fresh', 'upd')
{
	$node->safe_psql($db, q{
		CREATE TABLE IF NOT EXISTS t (job int, n int);
		GRANT INSERT, SELECT ON t TO plain_user, authenticated;
	});
	for my $who (['plain_user', 'plain_user', ''], ['authenticated', 'authenticator', 'SET ROLE authenticated;'])
	{
		my ($role, $login, $set) = @$who;
		my $tag = $role eq 'plain_user' ? 31 : 32;
		my $in = sub {
			my ($sql) = @_;
			my ($r, $o, $e) = $node->psql($db, "$set $sql", extra_params => [ '-U', $login ]);
			return ($r, $o, $e);
		};
		for my $sql (@internal)
		{
			my ($r, $o, $e) = $in->($sql);
			like($e, qr/permission denied for function/, "$db, $role: $sql is refused");
		}
		my ($r, $job, $e) = $in->(qq{SELECT ingest.enqueue_data('t',
			convert_to('job,n' || E'\n' || string_agg('$tag,' || i, E'\n' ORDER BY i), 'UTF8'))
			FROM generate_series(1, 500) i});
		is($r, 0, "$db, $role: enqueue_data") or diag $e;
		($r, my $o, $e) = $in->("SELECT ingest.wait($job, '60s')");
		is($o, 'succeeded', "$db, $role: wait, and the job loaded as the role") or diag $e;
		($r, $o, $e) = $in->(qq{
			SELECT (SELECT count(*) FROM t WHERE job = $tag) || ' '
			       || (SELECT rows_inserted FROM ingest.upload_jobs WHERE id = $job) || ' '
			       || (SELECT count(*) FROM ingest.job_errors WHERE job_id = $job) || ' '
			       || (SELECT count(*) FROM ingest.upload_chunks) || ' '
			       || (SELECT count(*) FROM ingest.workers WHERE job_id = $job) || ' '
			       || coalesce(ingest.queue_position($job)::text, 'null') || ' '
			       || ingest.cancel($job) || ' ' || ingest.retry($job) || ' '
			       || coalesce(ingest.current_tenant(), 'none')});
		is($o, '500 500 0 0 0 null false false none',
			"$db, $role: the views and the job functions answer") or diag $e;
		($r, $o, $e) = $in->(qq{
			SELECT ingest.begin_upload('t') AS up \\gset
			SELECT ingest.upload_chunk(:up, 0, convert_to(E'job,n\n${tag},0\n', 'UTF8'));
			SELECT count(*) FROM ingest.upload_chunks WHERE job_id = :up;
			SELECT ingest.finish_upload(:up) = :up;
			SELECT ingest.purge('1 hour') >= 0;});
		is($o, "11\n1\nt\nt", "$db, $role: uploads and purge") or diag $e;
	}
	# ingest_admin's statistics call _role_setting and _max_running as the reader, for the
	# jobs of the last hour (the purge above kept them: with '0 s' a fast worker could
	# finish the upload's job before the purge, leave role_stats empty, and call neither)
	my ($r, $o, $e) = $node->psql($db, q{
		SELECT count(*) > 0 FROM ingest.role_stats WHERE max_running >= 1;
		SELECT workers_allowed FROM ingest.stats}, extra_params => [ '-U', 'ops' ]);
	is($o, "t\n4", "$db: ingest_admin reads role_stats and stats") or diag $e;
}

# ---------------------------------------------------------------- databases without ingest
# 'postgres' and 'plain' have no ingest; the restart above had the launcher start a worker
# in each database
ok( $node->poll_query_until('postgres', q{
		SELECT count(*) = 0 FROM pg_stat_activity
		 WHERE backend_type = 'ingest worker' AND datname IN ('postgres', 'plain')}),
	'no worker stays in a database without the extension');
($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE plain');
is($ret, 0, 'a database without the extension is dropped at the first attempt') or diag $err;

# ---------------------------------------------------------------- DROP DATABASE, idle workers
$node->safe_psql('postgres', 'CREATE DATABASE dropme');
$node->safe_psql('dropme', 'CREATE EXTENSION ingest; CREATE TABLE t (job int, n int)');
# two jobs at once, so that two workers come
my ($g, $h) = split /\n/, $node->safe_psql('dropme', q{
	SELECT ingest.enqueue_data('t', convert_to('job,n' || E'\n' || string_agg(j || ',' || i, E'\n'), 'UTF8'))
	  FROM generate_series(1, 2) j, generate_series(1, 20000) i GROUP BY j ORDER BY j});
ok(poll_until_finished($node, 'dropme', $g, $h), 'two jobs in dropme finished');
is( $node->safe_psql('dropme', "SELECT string_agg(DISTINCT state, ',') FROM ingest.upload_jobs"),
	'succeeded', 'they succeeded');
my @idle = ingest_worker_pids($node, 'dropme');
cmp_ok(scalar @idle, '>=', 1, 'idle workers stay in dropme (' . scalar(@idle) . ')');
$logpos = -s $node->logfile;
($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE dropme');
is($ret, 0, 'DROP DATABASE with idle workers in it succeeds at the first attempt') or diag $err;
unlike($err, qr/being accessed by other users/, 'no "being accessed by other users"');
@bad = log_lines_since($node, $logpos, qr/being accessed by other users|$crash_re/);
is(scalar @bad, 0, 'nothing of that in the log either') or diag join "\n", @bad;

# the rest goes on: a job in lc
my $k = enqueue_rows($node, 'lc', 'slow', 20, 100);
ok(poll_until_finished($node, 'lc', $k), 'jobs of the other databases still run');
is(job_row($node, 'lc', $k)->{state}, 'succeeded', 'and succeed');

# (the restart's shutdown makes every background worker exit with code 1: only crashes
# and failures to record a job count here)
@bad = log_lines_since($node, 0,
	qr/terminated by signal|server process .* was terminated|PANIC|could not record the outcome|deadlock detected/);
is(scalar @bad, 0, 'in the whole log: no crash, no job left unrecorded') or diag join "\n", @bad;
$node->stop;
done_testing();
