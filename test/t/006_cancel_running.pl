# Live progress in ingest.workers; a running job stops at its next batch when cancelled and
# ends 'cancelled' (its rows gone with commit_every 0, its committed batches kept
# otherwise); a queued job behind it is cancelled at once; another role cannot cancel;
# ingest.wait returns the current state on timeout.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use IngestTest;

my $node = ingest_node('cancel', conf => "ingest.max_workers = 1\ningest.batch_rows = 100\n");
# every row takes a millisecond: a 20,000-row job runs for 20 s or more
$node->safe_psql('postgres', q{
	CREATE EXTENSION ingest;
	CREATE TABLE slow (job int, n int);
	CREATE FUNCTION slow_row() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN PERFORM pg_sleep(0.001); RETURN NEW; END $$;
	CREATE TRIGGER slow_row BEFORE INSERT ON slow FOR EACH ROW EXECUTE FUNCTION slow_row();
	CREATE ROLE other NOLOGIN;
	CREATE ROLE owner_role NOLOGIN;
	GRANT INSERT, SELECT ON slow TO owner_role;
});

# job A, owned by owner_role
my $a = $node->safe_psql('postgres', q{
	SET ROLE owner_role;
	SELECT ingest.enqueue_data('slow',
	       convert_to('job,n' || E'\n' || string_agg('1,' || i, E'\n' ORDER BY i), 'UTF8'))
	  FROM generate_series(1, 20000) i});
ok( $node->poll_query_until('postgres', qq{
		SELECT rows > 0 AND bytes > 0 FROM ingest.workers WHERE job_id = $a}),
	'ingest.workers shows the running job with rows and bytes progressing');
my $r1 = $node->safe_psql('postgres', "SELECT rows FROM ingest.workers WHERE job_id = $a");
sleep 1;
my $r2 = $node->safe_psql('postgres', "SELECT rows FROM ingest.workers WHERE job_id = $a");
cmp_ok($r2, '>', $r1, "progress moves ($r1 then $r2 rows)");
is($node->safe_psql('postgres', q{SELECT datname FROM ingest.workers}), 'postgres',
	'the worker is in the right database');
is($node->safe_psql('postgres', "SELECT ingest.wait($a, '0.3 s')"), 'running',
	'ingest.wait on a running job times out with "running"');

# job B waits behind A (one worker)
my $b = enqueue_rows($node, 'postgres', 'slow', 2, 10);
sleep 1;
is($node->safe_psql('postgres', "SELECT state FROM ingest.upload_jobs WHERE id = $b"), 'queued',
	'B is queued behind A');
is($node->safe_psql('postgres', "SELECT ingest.cancel($b)"), 't', 'cancel B returns true');
is($node->safe_psql('postgres', "SELECT state FROM ingest.upload_jobs WHERE id = $b"),
	'cancelled', 'B is cancelled at once');

# another role cannot cancel A, nor see it in ingest.workers' job details
my ($ret, $out, $err) = $node->psql('postgres', "SET ROLE other; SELECT ingest.cancel($a)");
isnt($out, 't', 'another role cannot cancel A');
is($node->safe_psql('postgres', "SET ROLE other; SELECT count(*) FROM ingest.workers WHERE job_id = $a"),
	0, 'another role does not see A in ingest.workers');
sleep 1;
is($node->safe_psql('postgres', "SELECT state FROM ingest.upload_jobs WHERE id = $a"), 'running',
	'A goes on running');

# its owner cancels A: it stops at its next batch
my $t0 = time;
is($node->safe_psql('postgres', "SET ROLE owner_role; SELECT ingest.cancel($a)"), 't',
	'the owner cancels A');
ok($node->poll_query_until('postgres', "SELECT state <> 'running' FROM ingest.upload_jobs WHERE id = $a"),
	'A stops');
my $stop_time = time - $t0;
cmp_ok($stop_time, '<', 5, sprintf('within a few batches (%.1f s)', $stop_time));
my $ja = job_row($node, 'postgres', $a);
is($ja->{state}, 'cancelled', 'A ends cancelled');
is($node->safe_psql('postgres', 'SELECT count(*) FROM slow WHERE job = 1'), 0,
	'with commit_every 0 none of its rows stay');
is($ja->{rows_inserted}, 0, 'and rows_inserted says so');
is($node->safe_psql('postgres', "SELECT attempts FROM ingest.upload_jobs WHERE id = $b"), 0,
	'B never ran');
is($node->safe_psql('postgres', 'SELECT count(*) FROM slow WHERE job = 2'), 0, 'B loaded nothing');

# with commit_every, the batches committed before the cancel stay, and rows_inserted agrees
my $c = enqueue_rows($node, 'postgres', 'slow', 3, 20000, '{"commit_every": 500}');
ok( $node->poll_query_until('postgres', qq{
		SELECT count(*) >= 1000 FROM slow WHERE job = 3}),
	'C commits as it goes');
is($node->safe_psql('postgres', "SELECT ingest.cancel($c)"), 't', 'C is cancelled');
ok(poll_until_finished($node, 'postgres', $c), 'C stops');
my $jc = job_row($node, 'postgres', $c);
is($jc->{state}, 'cancelled', 'C ends cancelled');
my $kept = $node->safe_psql('postgres', 'SELECT count(*) FROM slow WHERE job = 3');
is($jc->{rows_inserted}, $kept, "rows_inserted ($jc->{rows_inserted}) is what stayed ($kept)");
cmp_ok($kept, '<', 20000, 'C did not run to the end');
is($kept % 500, 0, 'what stayed is whole commits of 500');

# the worker is free again; a job of 500 slow rows takes at least half a second, and its
# started_at / finished_at say so (finished_at is when it finished, not when its
# transaction began)
my $d = enqueue_rows($node, 'postgres', 'slow', 4, 500);
ok(poll_until_finished($node, 'postgres', $d), 'the next job runs');
is(job_row($node, 'postgres', $d)->{state}, 'succeeded', 'and succeeds');
my $took = $node->safe_psql('postgres',
	"SELECT extract(epoch FROM finished_at - started_at) FROM ingest.upload_jobs WHERE id = $d");
cmp_ok($took, '>=', 0.45, "finished_at - started_at ($took s) covers the load");

$node->stop;
done_testing();
