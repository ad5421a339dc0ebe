# No session can stall the queue: a job row locked by an uncommitted transaction (here
# `BEGIN; SELECT ingest.cancel(J)` on alice's queued job J, never committed) is skipped by the
# claim, and bob's job starts at once; J ends cancelled when the transaction commits. A
# running job's own writes never wait for such a transaction either, and a lock request
# queued on what a role can name (the views) holds up no enqueue or claim.
# With one worker (ingest.max_workers = 1), before the fix the claim waited on J's row lock
# while holding the per-database claim lock, and nothing else ran.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use IngestTest;

my $node = ingest_node('stall', conf => "ingest.max_workers = 1\n");
$node->safe_psql('postgres', q{
	CREATE EXTENSION ingest;
	CREATE ROLE alice NOLOGIN;
	CREATE ROLE bob NOLOGIN;
	CREATE TABLE t (job int, n int);
	GRANT INSERT, SELECT ON t TO alice, bob;
	-- rows of job 0 wait at a gate while the test holds advisory lock 77
	CREATE FUNCTION gate() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN IF NEW.job = 0 THEN PERFORM pg_advisory_xact_lock_shared(77); END IF; RETURN NEW; END $$;
	CREATE TRIGGER gate BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION gate();
});

# bob's job 0 occupies the only worker at the gate
my $gate = $node->background_psql('postgres', timeout => 60);
$gate->query_safe('SELECT pg_advisory_lock(77)');
my $s = $node->safe_psql('postgres', q{SET ROLE bob;
	SELECT ingest.enqueue_data('t', convert_to(E'job,n\n0,1\n', 'UTF8'))});
ok($node->poll_query_until('postgres', "SELECT state = 'running' FROM ingest.upload_jobs WHERE id = $s"),
	"bob's gated job runs");

# alice's J is next in line (alice never started a job: her turn comes first), bob's K after it
my $j = $node->safe_psql('postgres', q{SET ROLE alice;
	SELECT ingest.enqueue_data('t', convert_to(E'job,n\n1,1\n', 'UTF8'))});
my $k = $node->safe_psql('postgres', q{SET ROLE bob;
	SELECT ingest.enqueue_data('t', convert_to(E'job,n\n2,1\n', 'UTF8'))});
is($node->safe_psql('postgres', "SELECT id FROM ingest_private._queue ORDER BY place LIMIT 1"), $j,
	"alice's job is the next candidate");

# alice cancels J in a transaction she leaves open: J's row stays locked
my $locker = $node->background_psql('postgres', timeout => 60);
$locker->query_safe('SET ROLE alice');
$locker->query_safe('BEGIN');
is($locker->query_safe("SELECT ingest.cancel($j)"), 't', 'alice cancels J without committing');

my $t0 = time;
$gate->query_safe('SELECT pg_advisory_unlock(77)');
ok(poll_until_finished($node, 'postgres', $s), "bob's gated job finishes");
ok( $node->poll_query_until('postgres', qq{
		SELECT state = 'succeeded' FROM ingest.upload_jobs WHERE id = $k}),
	"bob's next job runs while J's row is locked");
my $elapsed = time - $t0;
cmp_ok($elapsed, '<', 10, sprintf('and starts without waiting for alice (%.1f s)', $elapsed));
is($node->safe_psql('postgres', 'SELECT count(*) FROM t WHERE job = 2'), 1, "bob's rows are in");
is($node->safe_psql('postgres', "SELECT state FROM ingest.upload_jobs WHERE id = $j"), 'queued',
	'J is still queued (the cancel is not committed)');
is($node->safe_psql('postgres', "SELECT attempts FROM ingest.upload_jobs WHERE id = $j"), 0,
	'and was never claimed');

$locker->query_safe('COMMIT');
is($node->safe_psql('postgres', "SELECT state FROM ingest.upload_jobs WHERE id = $j"), 'cancelled',
	'J is cancelled once the transaction commits');
is($node->safe_psql('postgres', 'SELECT count(*) FROM t WHERE job = 1'), 0, 'J loaded nothing');

# the queue goes on for alice too
my $j2 = $node->safe_psql('postgres', q{SET ROLE alice;
	SELECT ingest.enqueue_data('t', convert_to(E'job,n\n3,1\n', 'UTF8'))});
ok(poll_until_finished($node, 'postgres', $j2), 'a later job of alice runs');
is($node->safe_psql('postgres', 'SELECT count(*) FROM t WHERE job = 3'), 1, 'with its rows');

# A running job's own writes do not wait either: alice cancels her running job K2 in a
# transaction she leaves open, and sends a chunk to her running upload U in another that an
# error leaves open (aborted, still holding what it locked). Both jobs finish; bob's job after
# them starts.
$gate->query_safe('SELECT pg_advisory_lock(77)');
my $k2 = $node->safe_psql('postgres', q{SET ROLE alice;
	SELECT ingest.enqueue_data('t', convert_to(E'job,n\n0,2\n', 'UTF8'), '{"commit_every": 1}')});
ok($node->poll_query_until('postgres', "SELECT state = 'running' FROM ingest.upload_jobs WHERE id = $k2"),
	"alice's gated job runs");
$locker->query_safe('BEGIN');
is($locker->query_safe("SELECT ingest.cancel($k2)"), 't', 'alice cancels it without committing');
my $u = $node->safe_psql('postgres', q{SET ROLE alice; SELECT ingest.begin_upload('t')});
$node->safe_psql('postgres', qq{SET ROLE alice;
	SELECT ingest.upload_chunk($u, 0, convert_to(E'job,n\n0,3\n', 'UTF8'));
	SELECT ingest.finish_upload($u)});
my $aborted = $node->background_psql('postgres', timeout => 60, on_error_stop => 0);
$aborted->query_safe('SET ROLE alice');
$aborted->query_safe('BEGIN');
$aborted->query("SELECT ingest.upload_chunk($u, 1, convert_to(E'0,4\n', 'UTF8'))");
my $b3 = $node->safe_psql('postgres', q{SET ROLE bob;
	SELECT ingest.enqueue_data('t', convert_to(E'job,n\n5,1\n', 'UTF8'))});
$t0 = time;
$gate->query_safe('SELECT pg_advisory_unlock(77)');
ok(poll_until_finished($node, 'postgres', $k2, $u, $b3),
	'both of alice\'s jobs and bob\'s finish while her transactions stay open');
$elapsed = time - $t0;
cmp_ok($elapsed, '<', 20, sprintf('without waiting for them (%.1f s)', $elapsed));
is($node->safe_psql('postgres', "SELECT state FROM ingest.upload_jobs WHERE id = $k2"), 'succeeded',
	'the job whose cancel was never committed succeeded');
is($node->safe_psql('postgres', 'SELECT count(*) FROM t WHERE job = 5'), 1, "bob's job loaded");
$locker->query_safe('ROLLBACK');
$aborted->query('ROLLBACK');

# a committed cancel of a running job still stops it
$gate->query_safe('SELECT pg_advisory_lock(77)');
my $k3 = $node->safe_psql('postgres', q{SET ROLE alice;
	SELECT ingest.enqueue_data('t', convert_to(E'job,n\n0,9\n0,10\n', 'UTF8'))});
ok($node->poll_query_until('postgres', "SELECT state = 'running' FROM ingest.upload_jobs WHERE id = $k3"),
	"alice's next gated job runs");
is($node->safe_psql('postgres', "SET ROLE alice; SELECT ingest.cancel($k3)"), 't', 'alice cancels it, committed');
$gate->query_safe('SELECT pg_advisory_unlock(77)');
ok(poll_until_finished($node, 'postgres', $k3), 'it ends');
is($node->safe_psql('postgres', "SELECT state FROM ingest.upload_jobs WHERE id = $k3"), 'cancelled',
	'cancelled');

# A lock queued on ingest's tables by a role that cannot take it (CREATE RULE locks before it
# checks ownership) would make every enqueue and claim wait behind it: the tables are in a
# schema no role may use, and what users can name (the views) is not on that path.
my $reader = $node->background_psql('postgres', timeout => 60);
$reader->query_safe('SET ROLE alice');
$reader->query_safe('BEGIN');
$reader->query_safe('SELECT count(*) FROM ingest.upload_jobs');
my ($ret, $out, $err) = $node->psql('postgres',
	'SET ROLE alice; CREATE RULE r AS ON INSERT TO ingest_private.upload_jobs DO ALSO NOTHING');
like($err, qr/permission denied for schema ingest_private/, 'a role cannot even name the job table');
my $ruler = $node->background_psql('postgres', timeout => 60, on_error_stop => 0);
$ruler->query_safe('SET ROLE alice');
$ruler->query_safe("SET statement_timeout = '20s'");
$ruler->query_until(qr/started/, q{\echo started
CREATE RULE r AS ON INSERT TO ingest.upload_jobs DO INSTEAD NOTHING;
});
ok( $node->poll_query_until('postgres', q{
		SELECT count(*) > 0 FROM pg_locks WHERE NOT granted AND relation = 'ingest.upload_jobs'::regclass}),
	"alice's CREATE RULE waits for its lock on the view ingest.upload_jobs");
$t0 = time;
my $b4 = $node->safe_psql('postgres', q{SET ROLE bob;
	SELECT ingest.enqueue_data('t', convert_to(E'job,n\n6,1\n', 'UTF8'))});
# (watched in the table: the view is what the waiting CREATE RULE holds up)
ok( $node->poll_query_until('postgres', qq{
		SELECT state = 'succeeded' FROM ingest_private.upload_jobs WHERE id = $b4}),
	"bob's enqueue and its job go on meanwhile");
$elapsed = time - $t0;
cmp_ok($elapsed, '<', 10, sprintf('without waiting (%.1f s)', $elapsed));
$reader->query_safe('ROLLBACK');
$reader->quit;
$ruler->quit;

$aborted->quit;
$locker->quit;
$gate->quit;
done_testing();
