# The "parallel" option where it depends on the server's configuration: without
# max_prepared_transactions a load without commit_every could never be split (its parts
# would have to commit together by two-phase commit), and "parallel": true says so; with
# it, or with commit_every, true is refused because this version loads every file with one
# worker. Nothing is queued by a refusal; false loads as always; no prepared transaction
# is ever left behind.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IngestTest;

my $node = ingest_node('parallel', conf => "max_prepared_transactions = 0\n");
$node->safe_psql('postgres',
	'CREATE EXTENSION ingest; CREATE TABLE t (job int, n int, PRIMARY KEY (job, n))');

my $csv = "E'job,n\\n1,1\\n1,2\\n1,3\\n'";

sub refusal
{
	my ($options) = @_;
	my ($ret, $out, $err) = $node->psql('postgres',
		"SELECT ingest.enqueue_data('t', convert_to($csv, 'UTF8'), '$options')");
	isnt($ret, 0, "$options is refused");
	return $err;
}

is($node->safe_psql('postgres', 'SHOW max_prepared_transactions'), '0',
	'max_prepared_transactions is 0');
like(refusal('{"parallel": true}'),
	qr/ERROR:  ingest option "parallel" is true, but this source cannot be loaded in parts: without "commit_every" .* max_prepared_transactions is 0/,
	'without commit_every the refusal names max_prepared_transactions');
like(refusal('{"parallel": true, "commit_every": 2}'),
	qr/ERROR:  ingest option "parallel" is true, but this version of ingest loads every file with one worker/,
	'with commit_every the refusal says that parts are not run yet');
is($node->safe_psql('postgres', 'SELECT count(*) FROM ingest.upload_jobs'), '0',
	'a refusal queues nothing');

# false: one worker loads the file
my $id = enqueue_rows($node, 'postgres', 't', 2, 5000, '{"parallel": false}');
ok(poll_until_finished($node, 'postgres', $id), 'a job with parallel false ran');
my $job = job_row($node, 'postgres', $id);
is($job->{state}, 'succeeded', 'and succeeded');
is($job->{rows_inserted}, 5000, 'with its 5000 rows');
is($node->safe_psql('postgres', 'SELECT count(*) FROM t WHERE job = 2'), '5000',
	'which are in the table');

# with max_prepared_transactions, the refusal no longer blames it
$node->append_conf('postgresql.conf', "max_prepared_transactions = 4\n");
$node->restart;
like(refusal('{"parallel": true}'),
	qr/ERROR:  ingest option "parallel" is true, but this version of ingest loads every file with one worker/,
	'with max_prepared_transactions the refusal is only that parts are not run yet');

is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts'), '0',
	'no prepared transaction is left');
$node->stop;
done_testing();
