# Jobs waiting when the server starts are run without anyone calling anything: those still
# queued at a clean shutdown, and those a crash (or shutdown) left 'running'.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IngestTest;

my $node = ingest_node('restart', conf => "ingest.max_workers = 2\n");

# The trigger takes a shared advisory lock: while a session holds it exclusively, workers
# that reach the table wait (running), the other jobs stay queued.
$node->safe_psql('postgres', q{
	CREATE EXTENSION ingest;
	CREATE TABLE t (job int, n int);
	CREATE FUNCTION gate() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN PERFORM pg_advisory_xact_lock_shared(4242); RETURN NEW; END $$;
	CREATE TRIGGER gate BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION gate();
});

my $tag = 0;
for my $mode ('fast', 'immediate')
{
	my $locker = $node->background_psql('postgres');
	$locker->query_safe('SELECT pg_advisory_lock(4242)');

	my @ids = map { enqueue_rows($node, 'postgres', 't', ++$tag, 1000) } 1 .. 4;
	my $list = sql_list(@ids);
	my @tags = ($tag - 3 .. $tag);

	ok( $node->poll_query_until('postgres', qq{
			SELECT count(*) >= 1 FROM ingest.upload_jobs WHERE id IN ($list) AND state = 'running'}),
		"$mode: jobs were taken and wait at the gate");
	# let the launcher do whatever it would with the rest
	sleep 1;
	my $states = $node->safe_psql('postgres',
		"SELECT string_agg(state, ',' ORDER BY id) FROM ingest.upload_jobs WHERE id IN ($list)");
	note "$mode: states before the stop: $states";
	my $running = () = $states =~ /running/g;
	my $queued  = () = $states =~ /queued/g;
	cmp_ok($running, '<=', 2, "$mode: no more jobs running than ingest.max_workers");
	is($running + $queued, 4, "$mode: every job is running or queued before the stop");

	$node->stop($mode);
	eval { $locker->quit; };
	$node->start;

	ok(poll_until_finished($node, 'postgres', @ids), "$mode: all jobs finished after the restart");
	is( $node->safe_psql('postgres',
			"SELECT string_agg(state, ',' ORDER BY id) FROM ingest.upload_jobs WHERE id IN ($list)"),
		'succeeded,succeeded,succeeded,succeeded',
		"$mode: all four succeeded");
	is( $node->safe_psql('postgres',
			"SELECT count(*) || ' ' || count(DISTINCT (job, n)) FROM t WHERE job IN (${\ sql_list(@tags)})"),
		'4000 4000',
		"$mode: each row is in exactly once");
	is( $node->safe_psql('postgres',
			"SELECT sum(rows_inserted) FROM ingest.upload_jobs WHERE id IN ($list)"),
		4000, "$mode: rows_inserted adds up");
	# the jobs that were running were started again
	cmp_ok( $node->safe_psql('postgres',
			"SELECT sum(attempts) FROM ingest.upload_jobs WHERE id IN ($list)"),
		'>=', 4 + $running, "$mode: interrupted jobs were attempted again");
}

# A job enqueued after the restarts runs as usual
my $id = enqueue_rows($node, 'postgres', 't', 99, 10);
ok(poll_until_finished($node, 'postgres', $id), 'a new job runs after the restarts');
is(job_row($node, 'postgres', $id)->{state}, 'succeeded', 'and succeeds');

$node->stop;
done_testing();
