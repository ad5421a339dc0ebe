# A worker that dies in the middle of a job, with the server up: the job is taken back
# and run again, by a new worker or by an idle colleague in the same database, and its
# rows end up in the table exactly once.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IngestTest;

my $node = ingest_node('orphans',
	conf => "ingest.max_workers = 2\ningest.max_running_per_role = 2\ningest.batch_rows = 100\n");
$node->safe_psql('postgres', q{
	CREATE EXTENSION ingest;
	CREATE TABLE slow (job int, n int);
	CREATE FUNCTION slow_row() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN IF NEW.job = 1 THEN PERFORM pg_sleep(0.001); END IF; RETURN NEW; END $$;
	CREATE TRIGGER slow_row BEFORE INSERT ON slow FOR EACH ROW EXECUTE FUNCTION slow_row();
});

# job A is slow (about 5 s); job B is quick and leaves its worker idle beside A's
my $a = enqueue_rows($node, 'postgres', 'slow', 1, 5000);
ok($node->poll_query_until('postgres', "SELECT count(*) > 0 FROM ingest.workers WHERE job_id = $a"),
	'A is running');
my $b = enqueue_rows($node, 'postgres', 'slow', 2, 10);
ok(poll_until_finished($node, 'postgres', $b), 'B finished');
is(job_row($node, 'postgres', $b)->{state}, 'succeeded', 'B succeeded');
is($node->safe_psql('postgres', 'SELECT count(*) FROM ingest.workers'), 2,
	"B's worker stays, idle, beside A's");

# A's worker is terminated: no new enqueue, no restart; the idle colleague takes A back
my $pid = $node->safe_psql('postgres', "SELECT pid FROM ingest.workers WHERE job_id = $a");
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
ok(poll_until_finished($node, 'postgres', $a), 'A finished after its worker died');
my $ja = job_row($node, 'postgres', $a);
is($ja->{state}, 'succeeded', 'A succeeded');
is($ja->{attempts}, 2, 'on its second attempt');
is($node->safe_psql('postgres', 'SELECT count(*), count(DISTINCT n) FROM slow WHERE job = 1'),
	'5000|5000', "A's rows are in exactly once");

# with commit_every, the retry resumes after the last checkpoint: still exactly once
$node->safe_psql('postgres', 'TRUNCATE slow');
my $c = enqueue_rows($node, 'postgres', 'slow', 1, 5000, '{"commit_every": 500}');
ok($node->poll_query_until('postgres',
		"SELECT records_done >= 1000 FROM ingest.upload_jobs WHERE id = $c"),
	'C committed a few batches');
$pid = $node->safe_psql('postgres', "SELECT pid FROM ingest.workers WHERE job_id = $c");
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)") if $pid ne '';
ok(poll_until_finished($node, 'postgres', $c), 'C finished');
my $jc = job_row($node, 'postgres', $c);
is($jc->{state}, 'succeeded', 'C succeeded');
is($node->safe_psql('postgres', 'SELECT count(*), count(DISTINCT n) FROM slow WHERE job = 1'),
	'5000|5000', "C's rows are in exactly once, across the two attempts");
is($jc->{rows_inserted}, 5000, 'rows_inserted counts both attempts');

$node->stop;
done_testing();
