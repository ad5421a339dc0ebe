# Operations on a live server:
#   - ingest.max_workers lowered with a reload while jobs are queued: once the jobs that
#     were running have ended, never more than one worker busy; raised again, more run;
#   - max_worker_processes exhausted: jobs wait (the launcher says so once), nothing
#     fails; they run when a slot frees, or after a restart with more slots;
#   - a hot standby: no ingest process runs there, enqueue is refused (read-only), the
#     queue is replicated; after the primary is stopped (immediate) with a job running
#     with commit_every and another queued, and the standby promoted, both jobs run on
#     the new primary by themselves, with exactly their rows.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use IngestTest;

# every row of tags below 100 takes a millisecond
my $slow_table = q{
	CREATE TABLE slow (job int, n int);
	CREATE FUNCTION slow_row() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN IF NEW.job < 100 THEN PERFORM pg_sleep(0.001); END IF; RETURN NEW; END $$;
	CREATE TRIGGER slow_row BEFORE INSERT ON slow FOR EACH ROW EXECUTE FUNCTION slow_row();
};

# the rows of table $table by job tag, as "tag:rows:distinct rows ..."
sub rows_by_job
{
	my ($node, $db, $table) = @_;
	return $node->safe_psql($db, qq{
		SELECT string_agg(job || ':' || c || ':' || d, ' ' ORDER BY job)
		  FROM (SELECT job, count(*) c, count(DISTINCT n) d FROM $table GROUP BY job) s});
}

# ---------------------------------------------------------------- ingest.max_workers reload
{
	my $node = ingest_node('reload', conf => q{
ingest.max_workers = 4
ingest.max_running_per_role = 4
ingest.batch_rows = 100
ingest.worker_idle_timeout = '5min'
});
	$node->safe_psql('postgres', "CREATE EXTENSION ingest; $slow_table");

	# 16 jobs of 800 slow rows (about a second each), all queued at once
	my @ids = split /\n/, $node->safe_psql('postgres', q{
		SELECT ingest.enqueue_data('slow',
		       convert_to('job,n' || E'\n' || string_agg(j || ',' || i, E'\n' ORDER BY i), 'UTF8'))
		  FROM generate_series(1, 16) j, generate_series(1, 800) i GROUP BY j ORDER BY j});
	is(scalar @ids, 16, '16 jobs queued');
	my $list = sql_list(@ids);
	ok( $node->poll_query_until('postgres',
			'SELECT count(*) = 4 FROM ingest.workers WHERE job_id IS NOT NULL'),
		'four workers busy with ingest.max_workers = 4');

	$node->safe_psql('postgres', 'ALTER SYSTEM SET ingest.max_workers = 1; SELECT pg_reload_conf()');
	ok( $node->poll_query_until('postgres',
			'SELECT count(*) <= 1 FROM ingest.workers WHERE job_id IS NOT NULL'),
		'after the reload, the jobs that were running end and at most one worker is busy');

	# sample while at least 4 more jobs finish
	my $sess = $node->background_psql('postgres', timeout => 120);
	my $done_sql = qq{SELECT count(*) FROM ingest.upload_jobs
	                   WHERE id IN ($list) AND state IN ('succeeded', 'failed', 'cancelled')};
	my $done_at_start = $sess->query_safe($done_sql);
	my ($samples, $max_busy, $max_running, $done) = (0, 0, 0, $done_at_start);
	{
		no warnings 'redefine';
		local *PostgreSQL::Test::BackgroundPsql::note = sub { };
		my $deadline = time + 60;
		while ($done < $done_at_start + 4 && $done < 16 && time < $deadline)
		{
			my ($busy, $running, $d) = split /\|/, $sess->query_safe(qq{SELECT
				(SELECT count(*) FROM ingest.workers WHERE job_id IS NOT NULL),
				(SELECT count(*) FROM ingest.upload_jobs WHERE state = 'running'),
				($done_sql)});
			$samples++;
			$max_busy = $busy if $busy > $max_busy;
			$max_running = $running if $running > $max_running;
			$done = $d;
			usleep(5_000);
		}
	}
	note "max_workers 1: $samples samples, most busy $max_busy, most running $max_running, "
	  . "jobs done $done_at_start -> $done";
	cmp_ok($done, '>=', $done_at_start + 4, 'jobs go on running with ingest.max_workers = 1');
	cmp_ok($samples, '>=', 50, 'the sampler looked often enough');
	is($max_busy, 1, 'never more than one worker busy (ingest.workers)');
	is($max_running, 1, 'never more than one job running (upload_jobs)');
	ok( $node->poll_query_until('postgres', q{
			SELECT count(*) <= 1 FROM pg_stat_activity WHERE backend_type = 'ingest worker'}),
		'the surplus workers left');

	$node->safe_psql('postgres', 'ALTER SYSTEM RESET ingest.max_workers; SELECT pg_reload_conf()');
	ok( $node->poll_query_until('postgres',
			'SELECT count(*) >= 2 FROM ingest.workers WHERE job_id IS NOT NULL'),
		'raised again: more workers busy at once');
	$sess->quit;

	ok(poll_until_finished($node, 'postgres', @ids), 'all 16 jobs finished');
	is( $node->safe_psql('postgres',
			"SELECT string_agg(DISTINCT state, ',') FROM ingest.upload_jobs WHERE id IN ($list)"),
		'succeeded', 'all succeeded');
	is( $node->safe_psql('postgres', 'SELECT count(*) || \' \' || count(DISTINCT (job, n)) FROM slow'),
		'12800 12800', 'with exactly their rows');
	ok(!$node->log_contains(qr/terminated by signal|was terminated|PANIC|exited with exit code 1/),
		'no process crashed or failed');
	$node->stop;
}

# ---------------------------------------------------------------- max_worker_processes full
{
	# Three background worker slots: the ingest launcher and the logical replication
	# launcher take two, so one ingest worker fits. No parallel query takes a slot.
	my $node = ingest_node('slots', conf => q{
max_worker_processes = 3
max_parallel_workers = 0
ingest.max_workers = 4
});
	for my $db ('other', 'main')
	{
		$node->safe_psql('postgres', "CREATE DATABASE $db");
		$node->safe_psql($db, 'CREATE EXTENSION ingest; CREATE TABLE t (job int, n int)');
	}
	# while a session holds the advisory lock, the job in 'other' waits in its trigger,
	# holding the only slot
	$node->safe_psql('other', q{
		CREATE FUNCTION gate() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN PERFORM pg_advisory_xact_lock_shared(4242); RETURN NEW; END $$;
		CREATE TRIGGER gate BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION gate();
	});
	my $locker = $node->background_psql('other');
	$locker->query_safe('SELECT pg_advisory_lock(4242)');
	my $x = enqueue_rows($node, 'other', 't', 1, 100);
	ok($node->poll_query_until('other', "SELECT count(*) = 1 FROM ingest.workers WHERE job_id = $x"),
		"the job in 'other' runs, holding the one free slot");

	# (the launcher may have met the shortage already, visiting the new databases: the
	# message is looked for, and counted, from the server's start)
	my $logpos = 0;
	my @m = map { enqueue_rows($node, 'main', 't', 10 + $_, 100) } 1 .. 3;
	ok($node->wait_for_log(qr/ingest launcher: no free background worker slot; queued jobs wait/, $logpos),
		'the launcher says that no slot is free');
	sleep 2;    # time for anything that would fail to do so
	is( $node->safe_psql('main', 'SELECT string_agg(state, \',\' ORDER BY id) FROM ingest.upload_jobs'),
		'queued,queued,queued', "main's jobs wait in the queue, none failed");
	is($node->safe_psql('main', 'SELECT string_agg(datname, \',\') FROM ingest.workers'), 'other',
		"only the worker of 'other' runs");
	$locker->query_safe('SELECT pg_advisory_unlock(4242)');
	$locker->quit;
	ok(poll_until_finished($node, 'other', $x), "the job in 'other' finished");
	ok(poll_until_finished($node, 'main', @m), "once the slot was free, main's jobs ran by themselves");
	is( $node->safe_psql('main', 'SELECT string_agg(state, \',\' ORDER BY id) FROM ingest.upload_jobs'),
		'succeeded,succeeded,succeeded', 'and succeeded');
	is(rows_by_job($node, 'main', 't'), '11:100:100 12:100:100 13:100:100', 'with exactly their rows');
	# it retried every second, and main's worker asked in vain for a colleague
	my @said = log_lines_since($node, $logpos, qr/no free background worker slot/);
	is(scalar @said, 1, 'the launcher said it once in all that time');

	# no slot at all until a restart with more
	$node->append_conf('postgresql.conf', "max_worker_processes = 2\n");
	$logpos = -s $node->logfile;
	$node->restart;
	my @r = map { enqueue_rows($node, 'main', 't', 20 + $_, 100) } 1 .. 2;
	ok($node->wait_for_log(qr/no free background worker slot; queued jobs wait/, $logpos),
		'with max_worker_processes = 2 no worker can start, and the launcher says so');
	sleep 2;
	@said = log_lines_since($node, $logpos, qr/no free background worker slot/);
	is(scalar @said, 1, 'once');
	is( $node->safe_psql('main',
			'SELECT string_agg(state, \',\' ORDER BY id) FROM ingest.upload_jobs WHERE id IN (' . sql_list(@r) . ')'),
		'queued,queued', 'the jobs wait, none failed');
	$node->append_conf('postgresql.conf', "max_worker_processes = 8\n");
	$node->restart;
	ok(poll_until_finished($node, 'main', @r), 'after a restart with more slots, they ran by themselves');
	is( $node->safe_psql('main',
			'SELECT string_agg(state, \',\' ORDER BY id) FROM ingest.upload_jobs WHERE id IN (' . sql_list(@r) . ')'),
		'succeeded,succeeded', 'and succeeded');
	is(rows_by_job($node, 'main', 't'),
		'11:100:100 12:100:100 13:100:100 21:100:100 22:100:100', 'with exactly their rows');
	ok(!$node->log_contains(qr/terminated by signal|was terminated|PANIC/), 'no process crashed');
	$node->stop;
}

# ---------------------------------------------------------------- hot standby, promotion
{
	# ingest.max_workers = 0 for now: the jobs stay queued on the primary
	my $primary = ingest_node('primary', init => { allows_streaming => 1 }, conf => q{
shared_buffers = 32MB
max_connections = 20
ingest.max_workers = 0
ingest.batch_rows = 100
});
	$primary->safe_psql('postgres', "CREATE EXTENSION ingest; $slow_table");
	my $l = enqueue_rows($primary, 'postgres', 'slow', 1, 6000, '{"commit_every": 200}');
	my $q = enqueue_rows($primary, 'postgres', 'slow', 2, 300);

	$primary->backup('b');
	my $standby = PostgreSQL::Test::Cluster->new('standby');
	$standby->init_from_backup($primary, 'b', has_streaming => 1);
	$standby->append_conf('postgresql.conf', "ingest.max_workers = 2\n");
	$standby->start;
	$primary->wait_for_catchup($standby);

	is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'the standby is in recovery');
	is( $standby->safe_psql('postgres',
			q{SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'ingest%'}),
		0, 'no ingest launcher or worker on the standby');
	is($standby->safe_psql('postgres', 'SELECT count(*) FROM ingest.workers'), 0,
		'ingest.workers is empty on the standby');
	is( $standby->safe_psql('postgres',
			"SELECT string_agg(id || ':' || state, ' ' ORDER BY id) FROM ingest.upload_jobs"),
		"$l:queued $q:queued", 'the queued jobs are replicated');
	my ($ret, $out, $err) = $standby->psql('postgres',
		q{SELECT ingest.enqueue_data('slow', convert_to(E'job,n\n3,1\n', 'UTF8'))});
	isnt($ret, 0, 'enqueue on the standby fails');
	like($err, qr/read-only transaction/, '... as a write in a read-only transaction');

	# the primary starts its worker: L runs, Q waits (one worker)
	$primary->safe_psql('postgres', 'ALTER SYSTEM SET ingest.max_workers = 1; SELECT pg_reload_conf()');
	ok( $primary->poll_query_until('postgres',
			"SELECT records_done >= 1000 FROM ingest.upload_jobs WHERE id = $l"),
		'L runs on the primary and has committed a few batches');
	is(job_row($primary, 'postgres', $q)->{state}, 'queued', 'Q is queued behind it');
	$primary->wait_for_catchup($standby);
	is($standby->safe_psql('postgres', 'SELECT count(*) FROM ingest.workers'), 0,
		'still no worker on the standby while L runs on the primary');
	my $seen = $standby->safe_psql('postgres',
		"SELECT state || ':' || (records_done >= 1000)::text FROM ingest.upload_jobs WHERE id = $l");
	is($seen, 'running:true', "the standby sees L running, with its progress");

	$primary->stop('immediate');
	$standby->promote;
	ok($standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()'), 'the standby was promoted');
	ok(poll_until_finished($standby, 'postgres', $l, $q),
		'the interrupted job and the queued one ran on the new primary by themselves');
	my $jl = job_row($standby, 'postgres', $l);
	my $jq = job_row($standby, 'postgres', $q);
	is("$jl->{state} $jq->{state}", 'succeeded succeeded', 'both succeeded');
	is($jl->{attempts}, 2, 'L on its second attempt');
	is($jl->{rows_inserted} . ' ' . $jq->{rows_inserted}, '6000 300', 'rows_inserted counts all rows');
	is(rows_by_job($standby, 'postgres', 'slow'), '1:6000:6000 2:300:300',
		'each row is in exactly once: no gap, no duplicate');
	ok(!$standby->log_contains(qr/terminated by signal|was terminated|PANIC|exited with exit code 1/),
		'no process crashed or failed on the standby');
	$standby->stop;
}

done_testing();
