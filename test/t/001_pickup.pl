# A job is picked up soon after the enqueuing transaction commits, without anyone calling
# anything (no ingest.wait: this test only looks at upload_jobs), and not before the commit.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IngestTest;

my $node = ingest_node('pickup');
$node->safe_psql('postgres', 'CREATE EXTENSION ingest; CREATE TABLE t (job int, n int)');

ok( $node->poll_query_until('postgres', q{
		SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type ILIKE '%ingest%launcher%'}),
	'the launcher is running');

# Five jobs one after the other, with a pause before the last so that an idle worker may
# have gone: each starts within 0.5 s of its commit (the contract says about 100 ms; a
# polling timer of a second or more would miss this most of the time).
for my $i (1 .. 5)
{
	sleep 3 if $i == 5;
	my $id = enqueue_rows($node, 'postgres', 't', $i, 100);
	ok(poll_until_finished($node, 'postgres', $id), "job $i finished with nobody waiting on it");
	my $job = job_row($node, 'postgres', $id);
	is($job->{state}, 'succeeded', "job $i succeeded");
	is($job->{rows_inserted}, 100, "job $i inserted its 100 rows");
	my $delay = $node->safe_psql('postgres',
		"SELECT extract(epoch FROM started_at - created_at) FROM ingest.upload_jobs WHERE id = $id");
	cmp_ok($delay, '<', 0.5, "job $i started ${delay} s after its commit");
}
is($node->safe_psql('postgres', 'SELECT count(*) FROM t'), 500, 'all rows are in');

# Enqueued, then the transaction stays open for 1.5 s: nothing starts before the commit,
# and the job starts soon after it.
my $id = $node->safe_psql('postgres', q{
	BEGIN;
	SELECT ingest.enqueue_data('t', convert_to(E'job,n\n6,1\n', 'UTF8'));
	SELECT pg_sleep(1.5);
	COMMIT;});
($id) = grep { /^\d+$/ } split /\n/, $id;
ok(poll_until_finished($node, 'postgres', $id), 'the job enqueued in a long transaction finished');
my $delay = $node->safe_psql('postgres',
	"SELECT extract(epoch FROM started_at - created_at) FROM ingest.upload_jobs WHERE id = $id");
cmp_ok($delay, '>=', 1.5, "it did not start before the commit (${delay} s after enqueue)");
cmp_ok($delay, '<', 2.0, 'it started within 0.5 s of the commit');

# ingest.workers shows no job once everything has finished
is($node->safe_psql('postgres', 'SELECT count(*) FROM ingest.workers WHERE job_id IS NOT NULL'),
	0, 'no worker is busy afterwards');

# Nothing crashed
ok(!$node->log_contains(qr/terminated by signal|PANIC|was terminated/), 'no process crashed');

$node->stop;
done_testing();
