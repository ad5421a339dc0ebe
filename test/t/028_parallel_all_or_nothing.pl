# One file, several workers, all-or-nothing: a job without commit_every loaded in parts
# prepares each part's transaction and commits them together once every part is prepared.
# Before that no row is visible; the prepared transactions belong to the worker, not to the
# job's owner, who can neither commit nor roll them back. A job that fails or is cancelled
# leaves nothing; one whose parts wait on each other (a key in two parts), cannot be
# prepared (a trigger that sends a NOTIFY) or meets a bad record is loaded by one worker,
# with exactly one worker's outcome. A file that grows while its parts load fails the job.
# A crash with parts prepared: the next attempt keeps them and commits every record once.
# No prepared transaction is left behind.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IngestTest;

my $dir = PostgreSQL::Test::Utils::tempdir;
chmod 0755, $dir;
my $node = ingest_node('all_or_nothing', conf => qq{
max_prepared_transactions = 20
ingest.max_workers = 3
ingest.max_running_per_role = 3
ingest.batch_rows = 50
ingest.parallel_min_bytes = 8000
ingest.parallel_lock_timeout = '1s'
ingest.allowed_dirs = '$dir'
ingest.worker_idle_timeout = '2min'
restart_after_crash = on
});

# 3000 records of about 30 bytes (about 11 parts of 8 kB), with quoted line ends.
sub write_csv
{
	my ($name, %edit) = @_;
	open(my $fh, '>', "$dir/$name") or die "$name: $!";
	binmode $fh;
	print $fh "id,name,qty\n";
	for my $i (1 .. 3000)
	{
		my $text = $i % 97 == 0 ? "\"line one\nline two $i\"" : "name $i";
		my ($id, $qty) = ($i, $i % 1000);
		($id, $qty) = $edit{$i}->($id, $qty) if $edit{$i};
		print $fh "$id,$text,$qty\n";
	}
	close $fh;
	chmod 0644, "$dir/$name";
}
write_csv('good.csv');
# a bad qty in several parts
write_csv('spread.csv', map { my $i = $_; ($i => sub { ($_[0], 'x') }) } (150, 700, 1250, 1800, 2350, 2900));
# one bad record in a middle part
write_csv('one_bad.csv', 1800 => sub { ($_[0], 'oops') });
# a key of the first part again in the last: two parts would wait on each other
write_csv('dup.csv', 2900 => sub { (100, $_[1]) });

$node->safe_psql('postgres', q{
	CREATE EXTENSION ingest;
	CREATE ROLE alice NOLOGIN IN ROLE pg_read_server_files;
	GRANT USAGE ON SCHEMA public TO alice;
	CREATE FUNCTION mk(name text) RETURNS void LANGUAGE plpgsql AS $$
	BEGIN
		EXECUTE format('CREATE TABLE %I (id int PRIMARY KEY, name text, qty int, loaded_by int DEFAULT pg_backend_pid())', name);
		EXECUTE format('ALTER TABLE %I OWNER TO alice', name);
	END $$;
	SELECT mk(t) FROM unnest(ARRAY['one', 'par', 'spread1', 'spreadp', 'max1', 'maxp', 'bad1', 'badp',
	                               'dup1', 'dupp', 'notif', 'crash', 'canc', 'grow', 'gate', 'dropx', 'vanish']) t;
	-- a slow table: each row takes a little time, so that a load lasts
	CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN PERFORM pg_sleep(0.002); RETURN NEW; END $$;
	CREATE TRIGGER slow BEFORE INSERT ON par FOR EACH ROW EXECUTE FUNCTION slow();
	CREATE TRIGGER slow BEFORE INSERT ON crash FOR EACH ROW EXECUTE FUNCTION slow();
	CREATE TRIGGER slow BEFORE INSERT ON canc FOR EACH ROW EXECUTE FUNCTION slow();
	CREATE TRIGGER slow BEFORE INSERT ON grow FOR EACH ROW EXECUTE FUNCTION slow();
	CREATE TRIGGER slow BEFORE INSERT ON dropx FOR EACH ROW EXECUTE FUNCTION slow();
	CREATE TRIGGER slow BEFORE INSERT ON vanish FOR EACH ROW EXECUTE FUNCTION slow();
	-- the owner's code may lift lock_timeout: the part's own watch still ends the wait
	CREATE FUNCTION no_wait_limit() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN PERFORM set_config('lock_timeout', '0', true); RETURN NULL; END $$;
	CREATE TRIGGER no_wait_limit BEFORE INSERT ON dupp FOR EACH STATEMENT EXECUTE FUNCTION no_wait_limit();
	-- a gate: rows wait while another session holds the advisory lock
	CREATE FUNCTION gate() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN PERFORM pg_advisory_xact_lock_shared(4242); RETURN NEW; END $$;
	CREATE TRIGGER gate BEFORE INSERT ON gate FOR EACH ROW EXECUTE FUNCTION gate();
	-- a trigger that sends a NOTIFY: a transaction that did cannot be prepared
	CREATE FUNCTION tell() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN PERFORM pg_notify('loaded', TG_TABLE_NAME); RETURN NULL; END $$;
	CREATE TRIGGER tell AFTER INSERT ON notif FOR EACH STATEMENT EXECUTE FUNCTION tell();
});

sub enqueue
{
	my ($table, $file, $options) = @_;
	return $node->safe_psql('postgres',
		"SET ROLE alice; SELECT ingest.enqueue_file('$table', '$dir/$file', '$options')");
}

sub finished
{
	my ($id) = @_;
	ok(poll_until_finished($node, 'postgres', $id), "job $id finished");
	return $node->safe_psql('postgres',
		"SELECT state || ' ' || rows_inserted || ' ' || rows_rejected || ' ' || records_done "
		  . "|| ' ' || coalesce(last_error, '') FROM ingest.upload_jobs WHERE id = $id");
}

sub errors_of
{
	my ($id) = @_;
	return $node->safe_psql('postgres',
		"SELECT string_agg(line_number || ' ' || record_number || ' ' || sqlstate || ' ' "
		  . "|| regexp_replace(message, '\"\\w+_pkey\"', 'the key') || ' ' || raw_line, E'\\n' "
		  . "ORDER BY line_number, record_number) FROM ingest.job_errors WHERE job_id = $id");
}

sub parts_of
{
	my ($id) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) || ' ' || count(*) FILTER (WHERE state = 'done') FROM ingest_private.job_parts WHERE job_id = $id");
}

sub same_rows
{
	my ($a, $b) = @_;
	return $node->safe_psql('postgres',
		"SELECT (SELECT count(*) FROM (SELECT id, name, qty FROM $a EXCEPT SELECT id, name, qty FROM $b) x) "
		  . "+ (SELECT count(*) FROM (SELECT id, name, qty FROM $b EXCEPT SELECT id, name, qty FROM $a) y)");
}

sub prepared_left
{
	return $node->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts');
}

# "parallel": true is taken without commit_every
my $one = enqueue('one', 'good.csv', '{"parallel": false}');
my $one_out = finished($one);
like($one_out, qr/^succeeded 3000 0 3000 $/, 'one worker: 3000 rows');

# ---- while the parts load: nothing is visible, and the prepared transactions are the worker's
my $par = enqueue('par', 'good.csv', '{"parallel": true}');
ok($node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM ingest_private.job_parts WHERE job_id = $par AND state = 'prepared'"),
	'a part is prepared while others load');
is($node->safe_psql('postgres', "SELECT count(*) FROM par"), '0', 'no row of a prepared part is visible');
my $gid = $node->safe_psql('postgres', "SELECT gid FROM pg_prepared_xacts ORDER BY prepared LIMIT 1");
like($gid, qr/^ingest:[0-9a-f]{32}$/, 'the identifier is random: no job id, no role');
is($node->safe_psql('postgres', "SELECT owner = (SELECT rolname FROM pg_roles WHERE oid = 10) "
	  . "FROM pg_prepared_xacts WHERE gid = '$gid'"), 't', 'the prepared transaction belongs to the bootstrap superuser');
for my $verb ('ROLLBACK', 'COMMIT')
{
	my ($rc, $out, $err) = $node->psql('postgres', "SET ROLE alice; $verb PREPARED '$gid'");
	like($err, qr/permission denied to finish prepared transaction/,
		"the job's owner cannot $verb PREPARED a part");
}
my $par_out = finished($par);
is($par_out, $one_out, 'in parts: the same outcome as one worker');
like(parts_of($par), qr/^(\d+) \1$/, 'every part done');
cmp_ok((split / /, parts_of($par))[0], '>=', 3, 'at least 3 parts');
is(same_rows('one', 'par'), '0', 'the same rows');
cmp_ok($node->safe_psql('postgres', 'SELECT count(DISTINCT loaded_by) FROM par'), '>=', 2,
	'loaded by more than one worker');
is($node->safe_psql('postgres', "SELECT count(*) FROM ingest_private.job_parts WHERE job_id = $par AND gid IS NOT NULL"),
	'0', 'the committed parts keep no identifier');
is(prepared_left(), '0', 'no prepared transaction left');

# ---- rejected records in several parts, within max_errors: committed with the rows
my $s1 = enqueue('spread1', 'spread.csv', '{"max_errors": 10, "parallel": false}');
my $sp = enqueue('spreadp', 'spread.csv', '{"max_errors": 10, "parallel": true}');
my $s1_out = finished($s1);
like($s1_out, qr/^succeeded 2994 6 3000 $/, 'one worker: 6 records rejected');
is(finished($sp), $s1_out, 'in parts: the same');
is(errors_of($sp), errors_of($s1), 'the same rejected records, lines and record numbers');
is(same_rows('spread1', 'spreadp'), '0', 'the same rows');
like(parts_of($sp), qr/^(\d+) \1$/, 'loaded in parts');

# ---- more than max_errors, spread over parts: one worker's failure, nothing loaded
my $m1 = enqueue('max1', 'spread.csv', '{"max_errors": 4, "parallel": false}');
my $mp = enqueue('maxp', 'spread.csv', '{"max_errors": 4, "parallel": true}');
my $m1_out = finished($m1);
like($m1_out, qr/^failed 0 5 0 .*line 2375: .*\(5 records rejected, more than max_errors = 4\)$/,
	'one worker: fails at the fifth rejected record');
is(finished($mp), $m1_out, 'in parts: the same failure, naming the same record');
is(errors_of($mp), errors_of($m1), 'the same rejected records');
is($node->safe_psql('postgres', 'SELECT count(*) FROM maxp'), '0', 'no row stays');
is(parts_of($mp), '0 0', 'the job was loaded by one worker in the end');

# ---- one bad record, max_errors 0: one worker's failure
my $b1 = enqueue('bad1', 'one_bad.csv', '{"parallel": false}');
my $bp = enqueue('badp', 'one_bad.csv', '{"parallel": true}');
my $b1_out = finished($b1);
like($b1_out, qr/^failed 0 1 0 .*line 1819: column "qty": invalid input syntax for type integer: "oops"$/,
	'one worker: the job fails at the bad record');
is(finished($bp), $b1_out, 'in parts: the same');
is(errors_of($bp), errors_of($b1), 'the same rejected record');
is($node->safe_psql('postgres', 'SELECT count(*) FROM badp'), '0', 'no row of any part stays');
is(prepared_left(), '0', 'no prepared transaction left');

# ---- a key in two parts: the parts wait on each other until ingest.parallel_lock_timeout,
# then one worker loads the file, rejecting the second occurrence as one worker does
my $d1 = enqueue('dup1', 'dup.csv', '{"max_errors": 10, "parallel": false}');
my $dp = enqueue('dupp', 'dup.csv', '{"max_errors": 10, "parallel": true}');
my $d1_out = finished($d1);
like($d1_out, qr/^succeeded 2999 1 3000 $/, 'one worker: the second key rejected');
is(finished($dp), $d1_out, 'in parts: the same');
is(errors_of($dp), errors_of($d1), 'the same rejected record');
is(same_rows('dup1', 'dupp'), '0', 'the same rows');
is(parts_of($dp), '0 0', 'loaded by one worker in the end');
ok($node->log_contains("ingest job $dp is loaded by one worker: .*waited longer than ingest.parallel_lock_timeout \\(1000 ms\\) for a lock"),
	'the log says why, though a trigger set lock_timeout to 0 in the part');

# ---- a transaction that sent a NOTIFY cannot be prepared: one worker loads the file
my $n = enqueue('notif', 'good.csv', '{"parallel": true}');
like(finished($n), qr/^succeeded 3000 0 3000 $/, 'a trigger that sends a NOTIFY: the job succeeds');
ok($node->log_contains("ingest job $n is loaded by one worker: .*cannot PREPARE a transaction that has executed LISTEN, UNLISTEN, or NOTIFY"),
	'by one worker, the log says why');
is(same_rows('one', 'notif'), '0', 'every row');

# ---- cancel: nothing stays; ingest.retry loads every record once
my $cc = enqueue('canc', 'good.csv', '{"parallel": true}');
ok($node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM ingest_private.job_parts WHERE job_id = $cc AND state = 'prepared'"),
	'the job to cancel has a prepared part');
is($node->safe_psql('postgres', "SET ROLE alice; SELECT ingest.cancel($cc)"), 't', 'ingest.cancel');
like(finished($cc), qr/^cancelled 0 0 /, 'the job is cancelled with nothing loaded');
is($node->safe_psql('postgres', 'SELECT count(*) FROM canc'), '0', 'no row stays');
is(prepared_left(), '0', 'its prepared parts are rolled back');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM ingest_private.job_parts WHERE job_id = $cc AND state IN ('running', 'queued', 'prepared')"),
	'0', 'no part is left running, queued or prepared');
is($node->safe_psql('postgres', "SET ROLE alice; SELECT ingest.retry($cc)"), 't', 'ingest.retry');
like(finished($cc), qr/^succeeded 3000 0 3000 $/, 'it succeeds with every record once');
is(same_rows('one', 'canc'), '0', 'every row');

# ---- ingest.cancel ends a load that waits for a lock (here a row lock another session
# holds: the gate)
{
	my $locker = $node->background_psql('postgres');
	$locker->query_safe('SELECT pg_advisory_lock(4242)');
	my $g = enqueue('gate', 'good.csv', '{"parallel": false}');
	ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND backend_type = 'ingest worker'"),
		'the job waits for the lock');
	is($node->safe_psql('postgres', "SET ROLE alice; SELECT ingest.cancel($g)"), 't', 'ingest.cancel');
	like(finished($g), qr/^cancelled 0 0 /, 'the job is cancelled while the lock is still held');
	$locker->quit;
}

# ---- code that catches every query cancel: the worker ends 5 s after the cancel (FATAL,
# which no handler catches), and the job is taken back and ends cancelled
$node->safe_psql('postgres', q{
	CREATE TABLE stubborn (id int PRIMARY KEY, name text, qty int);
	ALTER TABLE stubborn OWNER TO alice;
	CREATE FUNCTION stubborn() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		LOOP
			BEGIN PERFORM pg_sleep(0.5); EXCEPTION WHEN query_canceled THEN NULL; END;
		END LOOP;
	END $$;
	CREATE TRIGGER stubborn BEFORE INSERT ON stubborn FOR EACH ROW EXECUTE FUNCTION stubborn();
});
my $sb = enqueue('stubborn', 'good.csv', '{"parallel": false}');
ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM ingest.workers WHERE job_id = $sb"),
	'the stubborn job runs');
is($node->safe_psql('postgres', "SET ROLE alice; SELECT ingest.cancel($sb)"), 't', 'ingest.cancel');
like(finished($sb), qr/^cancelled 0 0 /, 'the job ends cancelled though its trigger catches every cancel');
ok($node->log_contains('terminating background worker "ingest worker" due to administrator command'),
	'its worker was ended');

# ---- the file grows after it was cut: its last part sees it, and the job fails with nothing loaded
write_csv('grow.csv');
my $gr = enqueue('grow', 'grow.csv', '{"parallel": true}');
ok($node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM ingest_private.job_parts WHERE job_id = $gr AND state = 'prepared'"),
	'the job of the growing file has a prepared part');
{
	open(my $fh, '>>', "$dir/grow.csv") or die;
	print $fh "3001,late,1\n";
	close $fh;
}
like(finished($gr), qr/^failed 0 0 0 file "[^"]*grow.csv" changed after it was cut into parts: it had \d+ bytes or more, it has \d+$/,
	'a file that grew while its parts load: the job fails, saying so');
is($node->safe_psql('postgres', 'SELECT count(*) FROM grow'), '0', 'no row of any part stays');
is(prepared_left(), '0', 'no prepared transaction left');

# ---- the server stops with parts prepared: they survive, and the next attempt commits
# every record once
my $cr = enqueue('crash', 'good.csv', '{"parallel": true}');
ok($node->poll_query_until('postgres',
	"SELECT count(*) FILTER (WHERE state = 'prepared') >= 2 AND count(*) FILTER (WHERE state <> 'prepared') > 0 "
	  . "FROM ingest_private.job_parts WHERE job_id = $cr"),
	'some parts prepared, others not');
$node->stop('immediate');
$node->start;
ok($node->log_contains('recovering prepared transaction'), 'the prepared parts survived the crash');
my $cr_out = finished($cr);
like($cr_out, qr/^succeeded 3000 0 3000 $/, 'after the crash the job succeeded with every record');
is($node->safe_psql('postgres', 'SELECT count(*) || \' \' || count(DISTINCT id) FROM crash'), '3000 3000',
	'3000 rows, none twice');
is(same_rows('one', 'crash'), '0', 'the file\'s rows');
like(parts_of($cr), qr/^(\d+) \1$/, 'in parts: the prepared ones committed, not loaded again');
is(prepared_left(), '0', 'no prepared transaction left');

# ---- tenants of one role: every part of an all-or-nothing job loads with its job's tenant
$node->safe_psql('postgres', qq{
	ALTER SYSTEM SET ingest.tenant_key = 'app.tenant';
	SELECT pg_reload_conf();
	CREATE TABLE tt (id int PRIMARY KEY, tenant text, qty int);
	ALTER TABLE tt OWNER TO alice;
	ALTER TABLE tt ENABLE ROW LEVEL SECURITY;
	ALTER TABLE tt FORCE ROW LEVEL SECURITY;
	CREATE POLICY own_tenant ON tt USING (tenant = current_setting('app.tenant'))
		WITH CHECK (tenant = current_setting('app.tenant'));
	COPY (SELECT i AS id, CASE WHEN i % 3 = 0 THEN 't2' ELSE 't1' END AS tenant, i AS qty
	        FROM generate_series(1, 3000) i) TO '$dir/tenants.csv' (FORMAT csv, HEADER);
});
my %tj;
for my $t ('t1', 't2')
{
	$tj{$t} = $node->safe_psql('postgres',
		"SET ROLE alice; SET app.tenant = '$t'; "
		  . "SELECT ingest.enqueue_file('tt', '$dir/tenants.csv', '{\"max_errors\": 3000, \"parallel\": true}')");
}
like(finished($tj{t1}), qr/^succeeded 2000 1000 3000 $/, 'tenant t1: its 2000 rows in, the 1000 of t2 rejected');
like(finished($tj{t2}), qr/^succeeded 1000 2000 3000 $/, 'tenant t2: its 1000 rows in, the 2000 of t1 rejected');
like(parts_of($tj{t1}), qr/^(\d+) \1$/, 'in parts');
is($node->safe_psql('postgres', "SELECT string_agg(tenant || ' ' || n, ', ' ORDER BY tenant) FROM "
	  . "(SELECT tenant, count(*) AS n FROM tt GROUP BY tenant) x"), 't1 2000, t2 1000', 'the rows of each tenant');
is($node->safe_psql('postgres',
	"SET ROLE alice; SET app.tenant = 't2'; SELECT count(*) FROM ingest.upload_jobs WHERE id = $tj{t1}"),
	'0', 'tenant t2 does not see t1\'s job');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET ingest.tenant_key; SELECT pg_reload_conf()');

# ---- a part's prepared transaction finished by something other than ingest (a superuser's
# ROLLBACK PREPARED) before the decision: the job does not succeed without that part's rows
my $vj = enqueue('vanish', 'good.csv', '{"parallel": true, "max_attempts": 1}');
ok($node->poll_query_until('postgres',
	"SELECT count(*) FILTER (WHERE state = 'prepared') > 0 AND count(*) FILTER (WHERE state IN ('queued', 'running')) > 0 "
	  . "FROM ingest_private.job_parts WHERE job_id = $vj"),
	'a part is prepared while others still load');
my $vgid = $node->safe_psql('postgres',
	"SELECT gid FROM ingest_private.job_parts WHERE job_id = $vj AND state = 'prepared' ORDER BY part LIMIT 1");
$node->safe_psql('postgres', "ROLLBACK PREPARED '$vgid'");
like(finished($vj), qr/^failed \d+ \d+ \d+ ingest job $vj: 1 of its parts is no longer prepared/,
	'the job fails, saying a part is no longer prepared');
is($node->safe_psql('postgres', 'SELECT count(*) FROM vanish'), '0', 'none of its rows stays');
is(prepared_left(), '0', 'no prepared transaction left');

# ---- DROP EXTENSION while parts are prepared: it waits for the job, which prepared parts do
# not hold up (they keep no lock on ingest's tables), and no prepared transaction stays
my $dx = enqueue('dropx', 'good.csv', '{"parallel": true}');
ok($node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM ingest_private.job_parts WHERE job_id = $dx AND state = 'prepared'"),
	'a part of the job is prepared');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_prepared_xacts x "
	  . "ON x.transaction = l.transactionid OR l.virtualtransaction LIKE '-1/%' "
	  . "WHERE c.relnamespace IN ('ingest'::regnamespace, 'ingest_private'::regnamespace) AND l.pid IS NULL"),
	'0', 'the prepared parts hold no lock on ingest\'s tables');
my ($drc, $dout, $derr) = $node->psql('postgres', "SET statement_timeout = '60s'; DROP EXTENSION ingest");
is($drc, 0, 'DROP EXTENSION completes') or diag $derr;
ok($node->poll_query_until('postgres', 'SELECT count(*) = 0 FROM pg_prepared_xacts'),
	'no prepared transaction stays');
my $dxrows = $node->safe_psql('postgres', 'SELECT count(*) FROM dropx');
ok($dxrows eq '0' || $dxrows eq '3000', "the job's rows are all there or none ($dxrows)");

$node->stop;
done_testing();
