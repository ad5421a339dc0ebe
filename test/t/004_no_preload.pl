# Without shared_preload_libraries: CREATE EXTENSION works, enqueue warns that no worker
# will run the job, the job stays queued (and can be cancelled); once the library is
# preloaded and the server restarted, the queued job runs.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IngestTest;

my $node = ingest_node('nopreload', preload => 0);

my ($ret, $out, $err) = $node->psql('postgres',
	'CREATE EXTENSION ingest; CREATE TABLE t (job int, n int)');
is($ret, 0, 'CREATE EXTENSION works without shared_preload_libraries');

($ret, $out, $err) = $node->psql('postgres',
	q{SELECT ingest.enqueue_data('t', convert_to(E'job,n\n1,1\n1,2\n', 'UTF8'))});
is($ret, 0, 'enqueue works');
like($out, qr/^\d+$/, 'and returns a job id');
my $id = $out;
like($err, qr/WARNING:.*/, 'enqueue warns');
like($err, qr/shared_preload_libraries/, 'the warning says why (shared_preload_libraries)');
note "warning: $err";

my $id2 = enqueue_rows($node, 'postgres', 't', 2, 5);

sleep 2;
is($node->safe_psql('postgres', "SELECT state FROM ingest.upload_jobs WHERE id = $id"),
	'queued', 'with no worker the job stays queued');
is($node->safe_psql('postgres', "SELECT ingest.wait($id, '0.3 s')"),
	'queued', 'ingest.wait times out and returns the current state');
($ret, $out, $err) = $node->psql('postgres', 'SELECT count(*) FROM ingest.workers');
is($out, '0', 'ingest.workers is empty (and does not fail)');
is($node->safe_psql('postgres', "SELECT ingest.cancel($id2)"), 't', 'a queued job can be cancelled');
is($node->safe_psql('postgres', "SELECT state FROM ingest.upload_jobs WHERE id = $id2"),
	'cancelled', 'and is cancelled at once');

# now preload the library: the queued job runs after the restart, the cancelled one not
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'ingest'\n");
$node->restart;
ok(poll_until_finished($node, 'postgres', $id), 'the queued job ran after the restart');
my $job = job_row($node, 'postgres', $id);
is($job->{state}, 'succeeded', 'and succeeded');
is($job->{rows_inserted}, 2, 'with its 2 rows');
is(job_row($node, 'postgres', $id2)->{state}, 'cancelled', 'the cancelled job stayed cancelled');
is($node->safe_psql('postgres', 'SELECT count(*) FROM t WHERE job = 2'), 0,
	'and loaded nothing');

# and enqueue no longer warns
($ret, $out, $err) = $node->psql('postgres',
	q{SELECT ingest.enqueue_data('t', convert_to(E'job,n\n3,1\n', 'UTF8'))});
is($err, '', 'with the library preloaded enqueue does not warn');
ok(poll_until_finished($node, 'postgres', $out), 'and the job runs');

$node->stop;
done_testing();
