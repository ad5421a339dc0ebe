# Operations seen in the server log and done by the workers on their own:
#   - one LOG line per finished job (succeeded, failed, cancelled while running, cancelled
#     while queued by a session), with owner, target, rows, seconds and rows/s;
#   - ingest.log_jobs = off (here per database, ALTER DATABASE) writes none;
#   - the sweep: with ingest.keep_failed_data, idle workers drop the stored bytes (data
#     and chunks) of jobs that failed or were cancelled longer ago, and only those; the job
#     rows stay, and ingest.retry of such a job is refused, saying why.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IngestTest;

# One worker in all (so the jobs of a test run one after the other, in one process at a
# time), which leaves after a second idle: a job enqueued once none is left starts a
# fresh worker, which sweeps before it claims.
my $node = ingest_node('ops', conf => q{
ingest.max_workers = 1
ingest.worker_idle_timeout = '1s'
ingest.keep_failed_data = -1
});
$node->safe_psql('postgres', q{
	CREATE EXTENSION ingest;
	CREATE ROLE loader NOLOGIN;
	CREATE TABLE t (id int PRIMARY KEY, v text);
	GRANT SELECT, INSERT ON t TO loader;
	-- rows with id 0 wait for an advisory lock the test holds
	CREATE FUNCTION gate() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN IF NEW.id = 0 THEN PERFORM pg_advisory_xact_lock_shared(26); END IF; RETURN NEW; END $$;
	CREATE TRIGGER gate BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION gate();
});

# Enqueue $csv (a SQL string literal's text, E'' escapes) into t as role loader.
sub enqueue_as_loader
{
	my ($db, $csv, $options) = @_;
	$options //= '{}';
	return $node->safe_psql($db, qq{
		SET ROLE loader; SELECT ingest.enqueue_data('t', convert_to(E'$csv', 'UTF8'), '$options')});
}

my $logpos = -s $node->logfile;
my $line_re = qr/ingest job (\d+) (\w+): database (\S+), owner (\S+), target (\S+), (\d+) rows inserted, (\d+) rejected, (\d+) skipped, ([0-9.]+) s, (\d+) rows\/s/;

# ------------------------------------------------------------ one LOG line per finished job
my $ok = enqueue_as_loader('postgres', 'id,v\n1,a\n2,b\nx,c\n3,d\n', '{"max_errors": 1}');
my $bad = enqueue_as_loader('postgres', 'id,v\n10,a\nnope,b\n');
ok(poll_until_finished($node, 'postgres', $ok, $bad), 'two jobs finished');
ok($node->wait_for_log(qr/ingest job $ok succeeded:/, $logpos), 'the succeeded job is logged');
ok($node->wait_for_log(qr/ingest job $bad failed:/, $logpos), 'the failed job is logged');
my @lines = log_lines_since($node, $logpos, qr/ingest job $ok succeeded:/);
is(scalar @lines, 1, 'one line for the succeeded job');
my @f = $lines[0] =~ $line_re;
is_deeply([ @f[0 .. 7] ], [ $ok, 'succeeded', 'postgres', 'loader', 'public.t', 3, 1, 0 ],
	'its id, state, owner, target, rows inserted, rejected and skipped');
ok($f[8] > 0 && $f[9] > 0, "its seconds ($f[8]) and rows/s ($f[9])");
@lines = log_lines_since($node, $logpos, qr/ingest job $bad failed: database/);
is(scalar @lines, 1, 'one line for the failed job (beside the line with its error)');
@f = $lines[0] =~ $line_re;
is_deeply([ @f[0 .. 7] ], [ $bad, 'failed', 'postgres', 'loader', 'public.t', 0, 1, 0 ],
	'the failed job: nothing inserted (max_errors 0 rolls back), the record that failed it rejected');

# a running job cancelled: logged by its worker as cancelled
my $holder = $node->background_psql('postgres');
$holder->query_safe('SELECT pg_advisory_lock(26)');
my $gated = enqueue_as_loader('postgres', 'id,v\n20,a\n0,gate\n');
ok($node->poll_query_until('postgres', "SELECT state = 'running' FROM ingest.upload_jobs WHERE id = $gated"),
	'the gated job runs');
$node->safe_psql('postgres', "SET ROLE loader; SELECT ingest.cancel($gated)");
$holder->query_safe('SELECT pg_advisory_unlock(26)');
$holder->quit;
ok(poll_until_finished($node, 'postgres', $gated), 'the cancelled job finished');
ok($node->wait_for_log(qr/ingest job $gated cancelled: database postgres, owner loader, target public\.t, 0 rows inserted/, $logpos),
	'a job cancelled while running is logged as cancelled');

# a queued job cancelled by the session that queued it: the session logs it, at commit;
# a cancel rolled back (to a savepoint) logs nothing
my $queued = $node->safe_psql('postgres', q{
	SET ROLE loader;
	BEGIN;
	SELECT ingest.enqueue_data('t', convert_to(E'id,v\n30,a\n', 'UTF8')) \gset
	SELECT ingest.cancel(:enqueue_data);
	COMMIT;
	SELECT :enqueue_data;
});
($queued) = grep { /^\d+$/ } split /\n/, $queued;
ok($node->wait_for_log(qr/ingest job $queued cancelled: database postgres, owner loader, target public\.t, 0 rows inserted, 0 rejected, 0 skipped, 0\.000 s, 0 rows\/s/, $logpos),
	'a job cancelled while queued is logged by the cancelling session');
my $taken_back = $node->safe_psql('postgres', q{
	SET ROLE loader;
	BEGIN;
	SELECT ingest.enqueue_data('t', convert_to(E'id,v\n31,a\n', 'UTF8')) \gset
	SAVEPOINT s;
	SELECT ingest.cancel(:enqueue_data);
	ROLLBACK TO SAVEPOINT s;
	COMMIT;
	SELECT :enqueue_data;
});
($taken_back) = grep { /^\d+$/ } split /\n/, $taken_back;
ok(poll_until_finished($node, 'postgres', $taken_back), 'the job whose cancel was taken back ran');
ok($node->wait_for_log(qr/ingest job $taken_back succeeded:/, $logpos), 'and is logged once, as succeeded');
is(scalar(log_lines_since($node, $logpos, qr/ingest job $taken_back cancelled/)), 0,
	'the cancel taken back by ROLLBACK TO SAVEPOINT logged nothing');
is(scalar(log_lines_since($node, $logpos, qr/ingest job \d+ \w+: database/)), 5,
	'five jobs finished, five lines');

# ------------------------------------------------------------ ingest.log_jobs = off
# A database whose workers are quiet. Its table logs each row's job tag from a trigger:
# the line of the second job there comes from the only worker after the first job's
# outcome committed, so by then the first job's line would be in the log.
$node->safe_psql('postgres', q{
	CREATE DATABASE quiet;
	ALTER DATABASE quiet SET ingest.log_jobs = off;
});
$node->safe_psql('quiet', q{
	CREATE EXTENSION ingest;
	CREATE TABLE t (id int PRIMARY KEY, v text);
	GRANT SELECT, INSERT ON t TO loader;
	CREATE FUNCTION mark() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN RAISE LOG 'ingest-026 row of job tag %', NEW.v; RETURN NEW; END $$;
	CREATE TRIGGER mark BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION mark();
});
my $q1 = enqueue_as_loader('quiet', 'id,v\n1,first\n');
ok(poll_until_finished($node, 'quiet', $q1), 'a job of the quiet database finished');
my $q2 = enqueue_as_loader('quiet', 'id,v\n2,second\n');
ok(poll_until_finished($node, 'quiet', $q2), 'and another');
ok($node->wait_for_log(qr/ingest-026 row of job tag second/, $logpos), 'the second job ran');
is($node->safe_psql('quiet', "SELECT string_agg(state, ' ' ORDER BY id) FROM ingest.upload_jobs"),
	'succeeded succeeded', 'both succeeded');
is(scalar(log_lines_since($node, $logpos, qr/ingest job \d+ \w+: database quiet,/)), 0,
	'with ingest.log_jobs off, no line for them');
# ingest.workers seen from another database: the job's owner, but no target (a table's
# oid names a table of its own database only)
$node->safe_psql('quiet', q{
	CREATE TABLE gated (id int);
	GRANT INSERT ON gated TO loader;
	CREATE FUNCTION gate() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN PERFORM pg_advisory_xact_lock_shared(27); RETURN NEW; END $$;
	CREATE TRIGGER gate BEFORE INSERT ON gated FOR EACH ROW EXECUTE FUNCTION gate();
});
$holder = $node->background_psql('quiet');
$holder->query_safe('SELECT pg_advisory_lock(27)');
my $q3 = $node->safe_psql('quiet', q{SET ROLE loader; SELECT ingest.enqueue_data('gated', convert_to(E'id\n1\n', 'UTF8'))});
ok($node->poll_query_until('quiet', "SELECT count(*) = 1 FROM ingest.workers WHERE job_id = $q3"),
	'a job of the quiet database runs');
is($node->safe_psql('quiet', "SELECT owner || ' ' || target FROM ingest.workers WHERE job_id = $q3"),
	'loader gated', 'in its database: its owner and target');
is($node->safe_psql('postgres', "SELECT owner || ' ' || (target IS NULL) FROM ingest.workers WHERE datname = 'quiet'"),
	'loader true', 'from another database: its owner, no target');
$holder->query_safe('SELECT pg_advisory_unlock(27)');
$holder->quit;
ok(poll_until_finished($node, 'quiet', $q3), 'it finished');

# a plain role cannot turn it off for its own session (superuser setting)
my ($rc, $out, $err) = $node->psql('postgres', 'SET ROLE loader; SET ingest.log_jobs = off');
like($err, qr/permission denied to set parameter "ingest.log_jobs"/, 'a plain role cannot quiet the log');

# ------------------------------------------------------------ the sweep of failed jobs' bytes
# Three jobs whose bytes are stored: two failed, one upload cancelled before it was
# finished. With ingest.keep_failed_data = -1 nothing is swept.
my $old = enqueue_as_loader('postgres', 'id,v\n40,a\nbad,b\n');
my $recent = enqueue_as_loader('postgres', 'id,v\n41,a\nbad,b\n');
my $upload = $node->safe_psql('postgres', q{
	SET ROLE loader;
	SELECT ingest.begin_upload('t') \gset
	SELECT ingest.upload_chunk(:begin_upload, 0, convert_to(E'id,v\n42,', 'UTF8'));
	SELECT ingest.upload_chunk(:begin_upload, 1, convert_to(E'a\n', 'UTF8'));
	SELECT ingest.cancel(:begin_upload);
	SELECT :begin_upload;
});
($upload) = grep { /^\d+$/ } (split /\n/, $upload)[-1];
ok(poll_until_finished($node, 'postgres', $old, $recent, $upload), 'two jobs failed, an upload was cancelled');
my $stored = qq{SELECT (SELECT count(*) FROM ingest_private.job_data WHERE job_id = $old) || ' '
	|| (SELECT count(*) FROM ingest_private.job_data WHERE job_id = $recent) || ' '
	|| (SELECT count(*) FROM ingest_private.job_chunks WHERE job_id = $upload)};
is($node->safe_psql('postgres', $stored), '1 1 2', 'their bytes are stored');

# two of them finished two days ago (as far as their rows say); keep failed jobs' bytes a day
$node->safe_psql('postgres', qq{
	UPDATE ingest_private.upload_jobs SET finished_at = now() - interval '2 days' WHERE id IN ($old, $upload)});
my $sweep_logpos = -s $node->logfile;
$node->safe_psql('postgres', q{ALTER SYSTEM SET ingest.keep_failed_data = '1d'; SELECT pg_reload_conf()});
# once no worker is left, a job starts a fresh one, which sweeps when it starts
ok($node->poll_query_until('postgres', 'SELECT count(*) = 0 FROM ingest.workers'), 'the workers left');
my $kick = enqueue_as_loader('postgres', 'id,v\n50,a\n');
ok(poll_until_finished($node, 'postgres', $kick), 'a job ran');
ok($node->poll_query_until('postgres', "$stored = '0 1 0'"),
	'the bytes of the jobs finished two days ago went; those of the recent failure stayed');
# 16 bytes of data and 8 + 2 of chunks
ok($node->wait_for_log(qr/ingest: discarded the stored bytes \(26 bytes\) of 2 failed or cancelled job\(s\) that finished longer ago than ingest.keep_failed_data \(86400 s\)/,
		$sweep_logpos),
	'the sweep is logged with the jobs and bytes it dropped');
is($node->safe_psql('postgres', "SELECT state || ' ' || rows_inserted FROM ingest.upload_jobs WHERE id IN ($old, $upload) ORDER BY id"),
	"failed 0\ncancelled 0", 'the job rows stay');
($rc, $out, $err) = $node->psql('postgres', "SET ROLE loader; SELECT ingest.retry($old)");
like($err, qr/ingest job $old cannot be retried: its stored bytes were discarded/, 'a swept job cannot be retried');
like($err, qr/HINT:  Send the file again as a new job\./, 'the hint says what to do');
is($node->safe_psql('postgres', "SET ROLE loader; SELECT ingest.retry($recent)"), 't',
	'the recent failure can still be retried');
ok(poll_until_finished($node, 'postgres', $recent), 'and ran again');

# ingest.keep_failed_data 0: swept at the next turn of an idle worker, whatever their age
$node->safe_psql('postgres', q{ALTER SYSTEM SET ingest.keep_failed_data = 0; SELECT pg_reload_conf()});
ok($node->poll_query_until('postgres', 'SELECT count(*) = 0 FROM ingest.workers'), 'the workers left');
$kick = enqueue_as_loader('postgres', 'id,v\n51,a\n');
ok(poll_until_finished($node, 'postgres', $kick), 'a job ran');
ok($node->poll_query_until('postgres', "$stored = '0 0 0'"), 'with 0, the recent failure\'s bytes go too');

# ------------------------------------------------------------ a retry older than a discard
# A retry in a REPEATABLE READ transaction whose snapshot was taken before a discard
# committed must not queue the job: its snapshot still shows the bytes. The discard updates
# the job's row, so the retry's lock on it fails to serialize.
$node->safe_psql('postgres', q{ALTER SYSTEM SET ingest.keep_failed_data = -1; SELECT pg_reload_conf()});
my $rr = enqueue_as_loader('postgres', 'id,v\n60,a\nbad,b\n');
ok(poll_until_finished($node, 'postgres', $rr), 'a job failed');
my $rr_session = $node->background_psql('postgres', on_error_stop => 0);
$rr_session->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
$rr_session->query_safe("SET LOCAL ROLE loader");
is($rr_session->query_safe("SELECT state FROM ingest.upload_jobs WHERE id = $rr"), 'failed',
	'a session took its snapshot');
is($node->safe_psql('postgres', "SET ROLE loader; SELECT ingest.discard($rr) > 0"), 't',
	'another session discarded the bytes');
my ($rr_out, $rr_ret) = $rr_session->query("SELECT ingest.retry($rr)");
like($rr_session->{stderr}, qr/could not serialize access due to concurrent update/,
	'the older snapshot\'s retry fails to serialize');
$rr_session->query('ROLLBACK');
$rr_session->quit;
is($node->safe_psql('postgres', "SELECT state FROM ingest.upload_jobs WHERE id = $rr"), 'failed',
	'the job was not queued again');
($rc, $out, $err) = $node->psql('postgres', "SET ROLE loader; SELECT ingest.retry($rr)");
like($err, qr/cannot be retried: its stored bytes were discarded/, 'a new transaction is told why');

# ------------------------------------------------------------ the LOG line is one line
# A role that may create tables names one with a newline and the start of a forged line.
$node->safe_psql('postgres', q{GRANT CREATE ON SCHEMA public TO loader});
$node->safe_psql('postgres', qq{SET ROLE loader; CREATE TABLE "x\nLOG:  ingest job 4242 failed: owner acme" (n int)});
$logpos = -s $node->logfile;
my $forged = $node->safe_psql('postgres', q{
	SET ROLE loader;
	SELECT ingest.enqueue_data(oid::regclass, convert_to(E'n\n1\n', 'UTF8'))
	  FROM pg_class WHERE relname LIKE E'x\nLOG:%'});
ok(poll_until_finished($node, 'postgres', $forged), 'a job into that table finished');
ok($node->wait_for_log(qr/ingest job $forged succeeded/, $logpos), 'it is logged');
@lines = log_lines_since($node, $logpos, qr/ingest job $forged succeeded/);
like($lines[0] // '', qr/target public\."x\\x0aLOG:  ingest job 4242 failed: owner acme", 1 rows inserted/,
	'on one line, the newline in the name shown as \x0a');
is(scalar(log_lines_since($node, $logpos, qr/^\s*LOG:  ingest job 4242/)), 0, 'no forged line');

# ------------------------------------------------------------ ingest.workers across databases
# A tenant's running job, seen by its role from a database without ingest.tenant_key: the
# tenant cannot be told there, so nothing of the job is shown.
$node->safe_psql('postgres', q{
	CREATE DATABASE tenants;
	ALTER DATABASE tenants SET ingest.tenant_key = 'app.tenant'});
$node->safe_psql('tenants', q{
	CREATE EXTENSION ingest;
	CREATE TABLE gated (id int, org text DEFAULT current_setting('app.tenant'));
	GRANT INSERT ON gated TO loader;
	CREATE FUNCTION gate() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN PERFORM pg_advisory_xact_lock_shared(28); RETURN NEW; END $$;
	CREATE TRIGGER gate BEFORE INSERT ON gated FOR EACH ROW EXECUTE FUNCTION gate();
});
$holder = $node->background_psql('tenants');
$holder->query_safe('SELECT pg_advisory_lock(28)');
my $tj = $node->safe_psql('tenants', q{SET ROLE loader; SET app.tenant = 'acme';
	SELECT ingest.enqueue_data('gated', convert_to(E'id\n1\n', 'UTF8'))});
ok($node->poll_query_until('tenants', "SELECT count(*) = 1 FROM ingest.workers WHERE job_id = $tj"),
	'a tenant\'s job runs');
is($node->safe_psql('tenants', "SET ROLE loader; SET app.tenant = 'acme'; SELECT owner || ' ' || target FROM ingest.workers WHERE job_id = $tj"),
	'loader gated', 'its tenant sees it');
is($node->safe_psql('tenants', "SET ROLE loader; SET app.tenant = 'globex'; SELECT count(job_id) FROM ingest.workers"),
	'0', 'another tenant of the role does not');
is($node->safe_psql('postgres', q{SET ROLE loader;
	SELECT count(job_id) || '/' || count(owner) || '/' || count(bytes_total) FROM ingest.workers WHERE datname = 'tenants'}),
	'0/0/0', 'nor does the role in a database without tenant key');
$holder->query_safe('SELECT pg_advisory_unlock(28)');
$holder->quit;
ok(poll_until_finished($node, 'tenants', $tj), 'it finished');

ok(!$node->log_contains(qr/terminated by signal|PANIC|was terminated/), 'no process crashed');
$node->stop;
done_testing();
