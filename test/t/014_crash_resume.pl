# Crash safety of a load in progress. With commit_every, each batch commits with the job's
# checkpoint; when the worker is killed with SIGKILL (the postmaster then restarts every
# process, as after a crash) or the server stops with -m immediate (as on power loss: only
# what reached the WAL survives), the job resumes by itself from its last checkpoint and
# ends with exactly the file's rows. Without commit_every, it starts again from the
# beginning and nothing of the interrupted attempt is left.
# With on_conflict nothing, rows_skipped is committed with each checkpoint too: a resumed
# job counts every record once.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IngestTest;

my $rows = 30000;
my $node = ingest_node('crash', conf => "ingest.batch_rows = 1000\nrestart_after_crash = on\n");
$node->safe_psql('postgres', q{
	CREATE EXTENSION ingest;
	CREATE TABLE t (job int, n int, PRIMARY KEY (job, n));
	-- a gate half-way: while the test holds advisory lock 4242, a load stops at row 10001,
	-- after committing the batches before it (with commit_every)
	CREATE FUNCTION gate() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN IF NEW.n = 10001 THEN PERFORM pg_advisory_xact_lock_shared(4242); END IF; RETURN NEW; END $$;
	CREATE TRIGGER gate BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION gate();
});

# Interrupt job $id (held at the gate by $locker) once its checkpoint (or, without
# commit_every, its progress in shared memory) shows it got to the gate, then wait for it
# to end; the interruption ends the locker's session too. Returns the job row.
sub interrupt_and_finish
{
	my ($id, $how, $checkpointed, $locker) = @_;
	my $progress = $checkpointed
	  ? "SELECT records_done = 10000 FROM ingest.upload_jobs WHERE id = $id"
	  : "SELECT coalesce(max(rows), 0) >= 10000 FROM ingest.workers WHERE job_id = $id";
	ok($node->poll_query_until('postgres', $progress), "$how: job $id is under way");
	my $done_before = $node->safe_psql('postgres',
		"SELECT records_done FROM ingest.upload_jobs WHERE id = $id");

	if ($how eq 'sigkill')
	{
		my $pid = $node->safe_psql('postgres', "SELECT pid FROM ingest.workers WHERE job_id = $id");
		ok($pid =~ /^\d+$/, "$how: the worker's pid is known");
		kill 'KILL', $pid;
		# the postmaster reinitializes; wait until it accepts connections again
		$node->poll_query_until('postgres', 'SELECT 1', '1');
	}
	else
	{
		$node->stop('immediate');
		$node->start;
	}
	eval { $locker->quit; };
	ok(poll_until_finished($node, 'postgres', $id), "$how: job $id finished after the interruption");
	my $j = job_row($node, 'postgres', $id);
	$j->{done_before} = $done_before;
	return $j;
}

my $tag = 0;
for my $how ('sigkill', 'immediate')
{
	# with commit_every: resumes after the checkpoint
	my $locker = $node->background_psql('postgres');
	$locker->query_safe('SELECT pg_advisory_lock(4242)');
	my $id = enqueue_rows($node, 'postgres', 't', ++$tag, $rows, '{"commit_every": 2000}');
	my $j = interrupt_and_finish($id, $how, 1, $locker);
	is($j->{state}, 'succeeded', "$how, commit_every: succeeded");
	cmp_ok($j->{attempts}, '>=', 2, "$how, commit_every: on a later attempt");
	is($j->{done_before}, 10000, "$how, commit_every: the checkpoint before the gate was committed");
	is($node->safe_psql('postgres', "SELECT count(*), count(DISTINCT n), min(n), max(n) FROM t WHERE job = $tag"),
		"$rows|$rows|1|$rows", "$how, commit_every: every row exactly once, no gap");
	is($j->{rows_inserted}, $rows, "$how, commit_every: rows_inserted counts across attempts");

	# without commit_every: the interrupted attempt left nothing, the next loads it all
	$locker = $node->background_psql('postgres');
	$locker->query_safe('SELECT pg_advisory_lock(4242)');
	$id = enqueue_rows($node, 'postgres', 't', ++$tag, $rows);
	$j = interrupt_and_finish($id, $how, 0, $locker);
	is($j->{state}, 'succeeded', "$how, one transaction: succeeded");
	cmp_ok($j->{attempts}, '>=', 2, "$how, one transaction: on a later attempt");
	is($j->{done_before}, 0, "$how, one transaction: no checkpoint before the interruption");
	is($node->safe_psql('postgres', "SELECT count(*), count(DISTINCT n) FROM t WHERE job = $tag"),
		"$rows|$rows", "$how, one transaction: every row exactly once");
}

# on_conflict nothing: rows_skipped commits with each checkpoint as rows_inserted does, so a
# job killed half-way and resumed counts every record once (half of them are in already)
{
	my $t = ++$tag;
	$node->safe_psql('postgres', "INSERT INTO t SELECT $t, n FROM generate_series(1, $rows, 2) n");
	my $locker = $node->background_psql('postgres');
	$locker->query_safe('SELECT pg_advisory_lock(4242)');
	my $id = enqueue_rows($node, 'postgres', 't', $t, $rows, '{"commit_every": 2000, "on_conflict": "nothing"}');
	my $j = interrupt_and_finish($id, 'sigkill', 1, $locker);
	is($j->{state}, 'succeeded', 'on_conflict nothing, sigkill: succeeded');
	cmp_ok($j->{attempts}, '>=', 2, 'on_conflict nothing, sigkill: on a later attempt');
	is($node->safe_psql('postgres', "SELECT rows_inserted || ' ' || rows_skipped || ' ' || rows_rejected || ' ' || records_done
		FROM ingest.upload_jobs WHERE id = $id"), ($rows / 2) . ' ' . ($rows / 2) . " 0 $rows",
		'on_conflict nothing, sigkill: inserted and skipped each counted once across attempts');
	is($node->safe_psql('postgres', "SELECT count(*), count(DISTINCT n) FROM t WHERE job = $t"),
		"$rows|$rows", 'on_conflict nothing, sigkill: every row exactly once');
}

ok(!$node->log_contains('duplicate key value'), 'no attempt met a row loaded before');

$node->stop;
done_testing();
