# An error in a worker's own bookkeeping (here the claim query, after someone renamed the
# view it reads) is not a job's: the worker reports it and leaves, but after a pause, so
# a persistent error does not become a tight loop of workers started and failing. Once
# the cause is gone, the waiting job runs.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use IngestTest;

my $node = ingest_node('bookkeeping', conf => "ingest.max_workers = 2\n");
$node->safe_psql('postgres', q{
	CREATE EXTENSION ingest;
	CREATE TABLE t (job int, n int);
	ALTER VIEW ingest_private._queue RENAME TO _queue_away;
});

my $log_start = -s $node->logfile;
my $id = enqueue_rows($node, 'postgres', 't', 1, 100);
sleep 8;
my $log = slurp_file($node->logfile, $log_start);
my $fails = () = $log =~ /leaves in 5 s after an error in its own bookkeeping/g;
cmp_ok($fails, '>=', 1, 'the failing claim is reported');
cmp_ok($fails, '<=', 3, "a worker fails at most every 5 s, not in a loop ($fails in 8 s)");
like($log, qr/relation "ingest_private._queue" does not exist/, 'with the error that caused it');
is($node->safe_psql('postgres', "SELECT state FROM ingest.upload_jobs WHERE id = $id"),
	'queued', 'the job waits, untouched');

$node->safe_psql('postgres', 'ALTER VIEW ingest_private._queue_away RENAME TO _queue');
ok(poll_until_finished($node, 'postgres', $id), 'once the view is back the job runs');
is(job_row($node, 'postgres', $id)->{state}, 'succeeded', 'and succeeds');
is($node->safe_psql('postgres', 'SELECT count(*) FROM t'), 100, 'with its rows');
ok(!$node->log_contains('terminated by signal'), 'no process crashed');

$node->stop;
done_testing();
