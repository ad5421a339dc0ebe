# A job whose worker dies under it (here: killed with SIGKILL, which makes the postmaster
# restart every backend) is taken back at most ingest.max_worker_deaths (3) times, however
# many attempts its owner asked for: the third death fails it. Its owner cannot retry it; a
# member of ingest_admin can, and that starts the count again. Jobs with a death run one at
# a time.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IngestTest;

my $node = ingest_node('deaths', conf => "ingest.max_workers = 2\nrestart_after_crash = on\n");
$node->safe_psql('postgres', q{
	CREATE EXTENSION ingest;
	CREATE ROLE alice NOLOGIN;
	CREATE ROLE ops NOLOGIN IN ROLE ingest_admin;
	CREATE TABLE t (n int);
	GRANT INSERT, SELECT ON t TO alice;
	CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN PERFORM pg_sleep(600); RETURN NEW; END $$;
	CREATE TRIGGER slow BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION slow();
});
# Jobs under which a worker died run one at a time (a crash takes every running job's worker
# down, so a job that ran beside the cause is kept apart from it from then on): two such
# jobs, two workers, only one runs while the other waits.
$node->safe_psql('postgres', q{
	CREATE TABLE gated (n int);
	CREATE FUNCTION gate() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN PERFORM pg_advisory_xact_lock_shared(5); RETURN NEW; END $$;
	CREATE TRIGGER gate BEFORE INSERT ON gated FOR EACH ROW EXECUTE FUNCTION gate();
	GRANT INSERT ON gated TO alice;
});
my $gate = $node->background_psql('postgres');
$gate->query_safe('SELECT pg_advisory_lock(5)');
$node->safe_psql('postgres', q{ALTER SYSTEM SET ingest.max_workers = 0; SELECT pg_reload_conf()});
my @suspects = map {
	$node->safe_psql('postgres', q{SET ROLE alice;
		SELECT ingest.enqueue_data('gated', convert_to(E'n\n1\n', 'UTF8'))})
} 1 .. 2;
$node->safe_psql('postgres', "UPDATE ingest.upload_jobs SET worker_deaths = 1 WHERE id IN (@{[ join ',', @suspects ]})");
$node->safe_psql('postgres', q{ALTER SYSTEM RESET ingest.max_workers; SELECT pg_reload_conf()});
$node->safe_psql('postgres', 'SELECT ingest._wake_workers()');
ok( $node->poll_query_until('postgres', qq{
		SELECT count(*) = 1 FROM ingest.upload_jobs WHERE id IN (@{[ join ',', @suspects ]}) AND state = 'running'}),
	'one of two jobs with a worker death runs');
sleep 2;
is( $node->safe_psql('postgres', qq{
		SELECT string_agg(state, ',' ORDER BY state) FROM ingest.upload_jobs WHERE id IN (@{[ join ',', @suspects ]})}),
	'queued,running', 'the other waits, though a second worker is allowed');
$gate->query_safe('SELECT pg_advisory_unlock(5)');
$gate->quit;
ok(poll_until_finished($node, 'postgres', @suspects), 'both run, one after the other');
is($node->safe_psql('postgres', 'SELECT count(*) FROM gated'), 2, 'and load');

my $id = $node->safe_psql('postgres', q{SET ROLE alice;
	SELECT ingest.enqueue_data('t', convert_to(E'n\n1\n', 'UTF8'), '{"max_attempts": 100}')});

for my $death (1 .. 3)
{
	ok( $node->poll_query_until('postgres', qq{
			SELECT state = 'running' AND worker_deaths = ${\ ($death - 1)}
			  FROM ingest.upload_jobs WHERE id = $id}),
		"death $death: the job runs (after " . ($death - 1) . ' deaths)');
	# the worker's pid once it is inside the job's sleep
	my $pid;
	$node->poll_query_until('postgres', qq{
		SELECT count(*) = 1 FROM pg_stat_activity
		 WHERE backend_type = 'ingest worker' AND wait_event = 'PgSleep'});
	$pid = $node->safe_psql('postgres', q{
		SELECT pid FROM pg_stat_activity WHERE backend_type = 'ingest worker' AND wait_event = 'PgSleep'});
	ok($pid =~ /^\d+$/, "death $death: the worker ($pid) sleeps in the job's trigger");
	kill 'KILL', $pid;
	# the postmaster restarts every backend; the job is taken back by the next worker
}

ok( $node->poll_query_until('postgres', qq{
		SELECT state = 'failed' FROM ingest.upload_jobs WHERE id = $id}),
	'after the third death the job fails');
my $r = $node->safe_psql('postgres',
	"SELECT worker_deaths, attempts, max_attempts, last_error FROM ingest.upload_jobs WHERE id = $id");
my ($deaths, $attempts, $max, $err) = split /\|/, $r, 4;
is($deaths, 3, 'worker_deaths says 3');
cmp_ok($attempts, '<', $max, "although attempts ($attempts) are under max_attempts ($max)");
is($err, 'the worker running this job died 3 times (ingest.max_worker_deaths is 3); the job is not retried',
	'last_error says why');
is($node->safe_psql('postgres', 'SELECT count(*) FROM t'), 0, 'nothing was loaded');

my ($ret, $out, $stderr) = $node->psql('postgres', "SET ROLE alice; SELECT ingest.retry($id)");
isnt($ret, 0, 'its owner cannot retry it');
like($stderr, qr/ingest job $id cannot be retried: the worker running it died 3 times/,
	'with an error that says why');
like($stderr, qr/HINT:  A member of ingest_admin can retry it/, 'and who can');
is($node->safe_psql('postgres', "SELECT state FROM ingest.upload_jobs WHERE id = $id"), 'failed',
	'the job stays failed');

is($node->safe_psql('postgres', "SET ROLE ops; SELECT ingest.retry($id)"), 't',
	'a member of ingest_admin retries it');
is($node->safe_psql('postgres', "SELECT worker_deaths FROM ingest.upload_jobs WHERE id = $id"), 0,
	'which starts the count of deaths again');
ok( $node->poll_query_until('postgres', qq{
		SELECT state = 'running' FROM ingest.upload_jobs WHERE id = $id}),
	'and the job runs again');

$node->stop('immediate');
done_testing();
