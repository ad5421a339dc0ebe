# A role that does not own the extension cannot stall the queue. DROP EXTENSION locks the
# extension object before it checks ownership, so if workers held that object during a job
# a non-owner's DROP would wait there, and workers, seeing a DROP coming, would claim
# nothing meanwhile. Workers hold the job table instead, which only its owner can lock
# against them: the non-owner is refused at once and other roles' jobs run.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IngestTest;

my $node = ingest_node('dropper', conf => "ingest.max_workers = 2\n");
$node->safe_psql('postgres', q{
	CREATE EXTENSION ingest;
	CREATE ROLE bob LOGIN;
	CREATE ROLE alice LOGIN;
	CREATE TABLE slow (job int, n int);
	CREATE TABLE quick (job int, n int);
	GRANT INSERT, SELECT ON slow, quick TO bob, alice;
	-- while the test holds advisory lock 4242, loads into slow wait in their trigger
	CREATE FUNCTION gate() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN PERFORM pg_advisory_xact_lock_shared(4242); RETURN NEW; END $$;
	CREATE TRIGGER gate BEFORE INSERT ON slow FOR EACH ROW EXECUTE FUNCTION gate();
});

my $locker = $node->background_psql('postgres');
$locker->query_safe('SELECT pg_advisory_lock(4242)');

my $csv = q{(SELECT convert_to('job,n' || E'\n' || string_agg('1,' || i, E'\n'), 'UTF8') FROM generate_series(1, 10) i)};
my $slow = $node->safe_psql('postgres', "SET ROLE bob; SELECT ingest.enqueue_data('slow', $csv)");
ok($node->poll_query_until('postgres', "SELECT state = 'running' FROM ingest.upload_jobs WHERE id = $slow"),
	"bob's job runs, held at the gate");

# bob asks to drop the extension while his job runs: nothing of ours holds a lock he can
# queue behind, so he is refused at once (his job is still held at the gate)
my ($rc, $out, $err) = $node->psql('postgres', 'SET ROLE bob; DROP EXTENSION ingest;');
like($err, qr/must be owner of extension ingest/, "bob's DROP EXTENSION is refused");
is($node->safe_psql('postgres', "SELECT state FROM ingest.upload_jobs WHERE id = $slow"), 'running',
	'without waiting for his running job');

# meanwhile alice's job is claimed and runs as usual
my $quick = $node->safe_psql('postgres', "SET ROLE alice; SELECT ingest.enqueue_data('quick', $csv)");
ok(poll_until_finished($node, 'postgres', $quick), "alice's job runs while bob's DROP waits");
is(job_row($node, 'postgres', $quick)->{state}, 'succeeded', 'and succeeds');

$locker->query_safe('SELECT pg_advisory_unlock(4242)');
$locker->quit;
ok(poll_until_finished($node, 'postgres', $slow), "bob's job finishes once the gate opens");
is(job_row($node, 'postgres', $slow)->{state}, 'succeeded', 'and succeeds');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_extension WHERE extname = 'ingest'"), 1,
	'the extension is still there');

$node->stop;
done_testing();
