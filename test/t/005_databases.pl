# Any database with the extension works, at the same time as others; a database without it
# is left alone (and so are template databases: CREATE DATABASE keeps working); a database
# whose jobs have finished can be dropped.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use IngestTest;

my $node = ingest_node('dbs');
for my $db ('db_a', 'db_b', 'db_plain')
{
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, 'CREATE TABLE t (job int, n int)');
}
$node->safe_psql($_, 'CREATE EXTENSION ingest') for ('db_a', 'db_b');

# jobs in two databases at once
my $ida = enqueue_rows($node, 'db_a', 't', 1, 5000);
my $idb = enqueue_rows($node, 'db_b', 't', 2, 7000);
ok(poll_until_finished($node, 'db_a', $ida), 'the job in db_a finished');
ok(poll_until_finished($node, 'db_b', $idb), 'the job in db_b finished');
is(job_row($node, 'db_a', $ida)->{state}, 'succeeded', 'db_a job succeeded');
is(job_row($node, 'db_b', $idb)->{state}, 'succeeded', 'db_b job succeeded');
is($node->safe_psql('db_a', 'SELECT count(*) || \' \' || min(job) || \' \' || max(job) FROM t'),
	'5000 1 1', 'db_a holds its own rows only');
is($node->safe_psql('db_b', 'SELECT count(*) || \' \' || min(job) || \' \' || max(job) FROM t'),
	'7000 2 2', 'db_b holds its own rows only');
is($node->safe_psql('db_a', 'SELECT count(*) FROM ingest.upload_jobs'), 1,
	"db_a's queue holds db_a's job only");

# the database without the extension: untouched, and everything works in it
is($node->safe_psql('db_plain', q{SELECT count(*) FROM pg_extension WHERE extname = 'ingest'}),
	0, 'db_plain has no ingest');
$node->safe_psql('db_plain', 'INSERT INTO t SELECT 0, i FROM generate_series(1, 100) i');
is($node->safe_psql('db_plain', 'SELECT count(*) FROM t'), 100, 'db_plain works as usual');
my ($ret, $out, $err) = $node->psql('db_plain', q{SELECT ingest.enqueue_data('t', '\x')});
isnt($ret, 0, 'calling ingest in db_plain fails ...');
like($err, qr/schema "ingest" does not exist|function ingest\.enqueue_data.* does not exist/,
	'... only because it is not installed there');

# template databases are not held open: CREATE DATABASE (copying template1) works,
# again and again, while jobs come and go
for my $i (1 .. 5)
{
	my $id = enqueue_rows($node, 'db_a', 't', 10 + $i, 100);
	($ret, $out, $err) = $node->psql('postgres', "CREATE DATABASE copy_$i");
	is($ret, 0, "CREATE DATABASE copy_$i works") or diag $err;
	ok(poll_until_finished($node, 'db_a', $id), "job $i in db_a finished");
}
ok( $node->poll_query_until('postgres', q{
		SELECT count(*) = 0 FROM pg_stat_activity
		 WHERE datname IN ('template0', 'template1') }),
	'nothing of ingest sits in a template database');

# a database whose jobs have finished can be dropped (idle workers leave it); the launcher
# goes on with the others
my $dropped = 0;
my $deadline = time + 120;
while (time < $deadline)
{
	($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE db_b');
	if ($ret == 0) { $dropped = 1; last; }
	note "DROP DATABASE db_b: $err";
	sleep 2;
}
ok($dropped, 'DROP DATABASE of a database that had jobs succeeds within 2 minutes');
my $id = enqueue_rows($node, 'db_a', 't', 3, 10);
ok(poll_until_finished($node, 'db_a', $id), 'db_a still gets its jobs run after db_b was dropped');
is(job_row($node, 'db_a', $id)->{state}, 'succeeded', 'and they succeed');

# DROP EXTENSION and CREATE EXTENSION again
$node->safe_psql('db_a', 'DROP EXTENSION ingest');
$node->safe_psql('db_a', 'CREATE EXTENSION ingest');
$id = enqueue_rows($node, 'db_a', 't', 4, 10);
ok(poll_until_finished($node, 'db_a', $id), 'a job runs after the extension was re-created');
is(job_row($node, 'db_a', $id)->{state}, 'succeeded', 'and succeeds');

ok(!$node->log_contains(qr/terminated by signal|PANIC|was terminated/), 'no process crashed');
ok(!$node->log_contains(qr/exited with exit code 1/), 'no worker or launcher exited with an error');
$node->stop;
done_testing();
