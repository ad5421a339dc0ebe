# One file, several workers (the option "parallel"). A file cut into parts by a low
# ingest.parallel_min_bytes is loaded by the job's worker and the idle workers that help
# it, with the table's contents, the counters and the rejected records (their physical
# line numbers and record numbers) of a load by one worker. A part that fails fails the
# job; a worker killed mid-load leaves its parts to be taken back, and only what no part
# committed is loaded again; a cancel stops every worker of the job; a second role's job
# still gets a worker while a parallel job runs, as helpers count against
# ingest.max_running_per_role; idle workers bound to another owner make room for helpers. Without max_prepared_transactions, a job without commit_every
# is loaded by one worker; no prepared transaction anywhere.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IngestTest;

my $dir = PostgreSQL::Test::Utils::tempdir;
chmod 0755, $dir;
my $node = ingest_node('parallel', conf => qq{
max_prepared_transactions = 0
ingest.max_workers = 3
ingest.max_running_per_role = 3
ingest.batch_rows = 50
ingest.parallel_min_bytes = 8000
ingest.allowed_dirs = '$dir'
ingest.worker_idle_timeout = '2min'
restart_after_crash = on
});

# The file: 3000 records of about 30 bytes (90 kB: 11 parts of 8 kB), with quoted fields
# holding line ends (a CR, an LF, a CRLF) and commas, CRLF line ends here and there, blank
# lines, and bad records (a qty that is no integer, a key seen twice).
sub write_csv
{
	my ($path, $bad_lines) = @_;
	open(my $fh, '>', $path) or die "$path: $!";
	binmode $fh;
	print $fh "id,name,qty\n";
	for my $i (1 .. 3000)
	{
		my $name = "name $i";
		$name = "\"line one\nline two $i\"" if $i % 97 == 0;
		$name = "\"a, b\r\nc $i\"" if $i % 131 == 0;
		$name = "\"cr\rhere $i\"" if $i % 173 == 0;
		my $qty = $i % 1000;
		$qty = 'x' if $bad_lines && $i % 250 == 0;
		my $id = $i;
		$id = $i - 1 if $bad_lines && $i % 777 == 0;    # a duplicate key
		my $end = $i % 11 == 0 ? "\r\n" : "\n";
		print $fh "$id,$name,$qty$end";
		print $fh "\n" if $i % 400 == 0;
	}
	close $fh;
	chmod 0644, $path;
}
write_csv("$dir/bad.csv", 1);
write_csv("$dir/good.csv", 0);
# one bad record, in a middle part
{
	open(my $in, '<', "$dir/good.csv") or die;
	binmode $in;
	local $/;
	my $text = <$in>;
	close $in;
	$text =~ s/\n1800,name 1800,800\n/\n1800,name 1800,oops\n/ or die 'no record 1800';
	open(my $out, '>', "$dir/one_bad.csv") or die;
	binmode $out;
	print $out $text;
	close $out;
	chmod 0644, "$dir/one_bad.csv";
	# the bad record in the first part; and a header strict_quotes cannot read
	$text =~ s/\n1800,name 1800,oops\n/\n1800,name 1800,800\n/ or die 'no record 1800';
	my $early = $text;
	$early =~ s/\n100,name 100,100\n/\n100,name 100,oops\n/ or die 'no record 100';
	my $badhead = $text;
	$badhead =~ s/^id,name,qty\n/id,na"me,qty\n/ or die 'no header';
	for ([ 'early_bad.csv', $early ], [ 'bad_header.csv', $badhead ])
	{
		open(my $o, '>', "$dir/$_->[0]") or die;
		binmode $o;
		print $o $_->[1];
		close $o;
		chmod 0644, "$dir/$_->[0]";
	}
}

$node->safe_psql('postgres', q{
	CREATE EXTENSION ingest;
	CREATE ROLE alice NOLOGIN IN ROLE pg_read_server_files;
	CREATE ROLE bob NOLOGIN;
	GRANT USAGE ON SCHEMA public TO alice, bob;
	CREATE FUNCTION mk(name text) RETURNS void LANGUAGE plpgsql AS $$
	BEGIN
		EXECUTE format('CREATE TABLE %I (id int PRIMARY KEY, name text, qty int, loaded_by int DEFAULT pg_backend_pid())', name);
		EXECUTE format('ALTER TABLE %I OWNER TO alice', name);
	END $$;
	SELECT mk(t) FROM unnest(ARRAY['one', 'par', 'one_g', 'par_g', 'crash', 'canc', 'fail1', 'failp',
	                               'early', 'head1', 'headp']) t;
	-- a slow table: each row takes a little time, so that a load lasts
	CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN PERFORM pg_sleep(0.002); RETURN NEW; END $$;
	CREATE TRIGGER slow BEFORE INSERT ON crash FOR EACH ROW EXECUTE FUNCTION slow();
	CREATE TRIGGER slow BEFORE INSERT ON canc FOR EACH ROW EXECUTE FUNCTION slow();
	CREATE TRIGGER slow BEFORE INSERT ON par_g FOR EACH ROW EXECUTE FUNCTION slow();
	CREATE TABLE bobs (id int PRIMARY KEY, name text, qty int);
	ALTER TABLE bobs OWNER TO bob;
});

sub enqueue
{
	my ($role, $table, $file, $options) = @_;
	return $node->safe_psql('postgres',
		"SET ROLE $role; SELECT ingest.enqueue_file('$table', '$dir/$file', '$options')");
}

sub finished
{
	my ($id) = @_;
	ok(poll_until_finished($node, 'postgres', $id), "job $id finished");
	return $node->safe_psql('postgres',
		"SELECT state || ' ' || rows_inserted || ' ' || rows_rejected || ' ' || records_done || ' ' || bytes_done "
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

# ---- without commit_every and with max_prepared_transactions 0 (this node): "parallel": true
# is refused, saying why; a large file without the option is loaded by one worker
my ($rc, $out, $err) = $node->psql('postgres',
	"SET ROLE alice; SELECT ingest.enqueue_file('one', '$dir/good.csv', '{\"parallel\": true}')");
like($err, qr/ingest option "parallel" is true, but this source cannot be loaded in parts: without "commit_every" the parts are committed together by two-phase commit, and max_prepared_transactions is 0/,
	'"parallel": true without commit_every is refused when max_prepared_transactions is 0');
my $whole = enqueue('alice', 'one', 'good.csv', '{}');
like(finished($whole), qr/^succeeded 3000 0 3000 /, 'without the option the large file is loaded');
is(parts_of($whole), '0 0', 'by one worker: no part');
$node->safe_psql('postgres', 'TRUNCATE one');

# ---- the same file by one worker and by several
my $opts = '{"commit_every": 100, "max_errors": 1000';
my $one = enqueue('alice', 'one', 'bad.csv', $opts . ', "parallel": false}');
my $one_out = finished($one);
my $par = enqueue('alice', 'par', 'bad.csv', $opts . ', "parallel": true}');
my $par_out = finished($par);
like($one_out, qr/^succeeded 2985 15 3000 \d+ $/, 'one worker: 2985 rows, 15 rejected');
is($par_out, $one_out, 'in parts: the same state and counters (bytes included)');
is(parts_of($one), '0 0', 'the one-worker job has no parts');
like(parts_of($par), qr/^(\d+) \1$/, 'the parallel job\'s parts are all done');
cmp_ok((split / /, parts_of($par))[0], '>=', 3, 'and there are at least 3 of them');
is(same_rows('one', 'par'), '0', 'the same rows in the table');
is(errors_of($par), errors_of($one), 'the same rejected records, lines and record numbers');
note errors_of($par);

# a good file, into a slow table, with helpers: rows from several workers
my $g1 = enqueue('alice', 'one_g', 'good.csv', '{"commit_every": 100, "parallel": false}');
my $g2 = enqueue('alice', 'par_g', 'good.csv', '{"commit_every": 100}');
is(finished($g2), finished($g1), 'without the option a file of 2 x parallel_min_bytes is split: the same outcome');
is(same_rows('one_g', 'par_g'), '0', 'and the same rows');
cmp_ok($node->safe_psql('postgres', 'SELECT count(DISTINCT loaded_by) FROM par_g'), '>=', 2,
	'loaded by more than one worker');
is($node->safe_psql('postgres', 'SELECT count(DISTINCT loaded_by) FROM one_g'), '1',
	'"parallel": false: by one');

# ---- a part fails (max_errors 0): the job fails as with one worker, naming the record
my $f1 = enqueue('alice', 'fail1', 'one_bad.csv', '{"commit_every": 100, "parallel": false}');
my $f1_out = finished($f1);
my $fp = enqueue('alice', 'failp', 'one_bad.csv', '{"commit_every": 100, "parallel": true}');
my $fp_out = finished($fp);
like($f1_out, qr/^failed .* line 1846: column "qty": invalid input syntax for type integer: "oops"$/,
	'one worker: the job fails at the bad record');
note "one worker: $f1_out\nin parts: $fp_out";
is((split / /, $fp_out, 2)[0], 'failed', 'in parts: the job fails too');
is((split /: /, $fp_out, 2)[1], (split /: /, $f1_out, 2)[1], 'with the same message, line and all');
is(errors_of($fp), errors_of($f1), 'and the same rejected record');
like(parts_of($fp), qr/^\d+ \d+$/, 'its parts stay for a retry');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM ingest_private.job_parts WHERE job_id = $fp AND state IN ('running', 'queued')"), '0',
	'none of them running or left for a helper to claim');

# A part that fails stops the job: no part is claimed after it. With the job's worker alone
# (max_running_per_role 1) the parts run in order: the first fails at its record 100, before
# its first commit, and no other part runs.
$node->safe_psql('postgres', 'ALTER SYSTEM SET ingest.max_running_per_role = 1; SELECT pg_reload_conf()');
my $fe = enqueue('alice', 'early', 'early_bad.csv', '{"commit_every": 100, "parallel": true}');
like(finished($fe), qr/^failed 0 1 0 \d+ file "[^"]*early_bad.csv", line 102: column "qty": invalid input syntax for type integer: "oops"$/,
	'a failure in the first part: the job fails with nothing loaded and one record rejected');
is($node->safe_psql('postgres', 'SELECT count(*) FROM early'), '0', 'no row in the table');
is($node->safe_psql('postgres', "SELECT count(*) FROM ingest.job_errors WHERE job_id = $fe"), '1',
	'one rejected record kept');
like(parts_of($fe), qr/^\d+ 0$/, 'no part was loaded after it');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET ingest.max_running_per_role; SELECT pg_reload_conf()');

# A header the load cannot read fails the job before any part exists, as it fails a load by
# one worker before any row (with the columns option, parts after the first skip no header).
my $hopts = '{"commit_every": 100, "strict_quotes": true, "columns": ["id", "name", "qty"]';
my $h1 = enqueue('alice', 'head1', 'bad_header.csv', $hopts . ', "parallel": false}');
my $hp = enqueue('alice', 'headp', 'bad_header.csv', $hopts . ', "parallel": true}');
my $h1_out = finished($h1);
like($h1_out, qr/^failed 0 0 0 /, 'one worker: a header it cannot read fails the job, nothing loaded');
is(finished($hp), $h1_out, 'in parts: the same outcome');
is($node->safe_psql('postgres', 'SELECT count(*) FROM headp'), '0', 'no row in the table');
is(parts_of($hp), '0 0', 'and no part was made');

# ---- a worker is killed mid-load: the parts are taken back, nothing is loaded twice
my $cr = enqueue('alice', 'crash', 'good.csv', '{"commit_every": 50, "parallel": true}');
ok($node->poll_query_until('postgres',
	"SELECT count(*) >= 2 FROM ingest.workers WHERE job_id = $cr AND rows > 0"),
	'the job is loaded by two workers');
my $victim = $node->safe_psql('postgres',
	"SELECT pid FROM ingest.workers WHERE job_id = $cr AND rows > 0 ORDER BY pid DESC LIMIT 1");
my $before = $node->safe_psql('postgres', "SELECT records_done FROM ingest.upload_jobs WHERE id = $cr");
note "killing worker $victim of job $cr at $before records";
kill 'KILL', $victim;
my $cr_out = finished($cr);
like($cr_out, qr/^succeeded 3000 0 3000 \d+ $/, 'after the crash the job succeeded with every record once');
is($node->safe_psql('postgres', 'SELECT count(*) || \' \' || count(DISTINCT id) FROM crash'), '3000 3000',
	'3000 rows in the table, no duplicate');
is(same_rows('one_g', 'crash'), '0', 'the file\'s rows');
cmp_ok($node->safe_psql('postgres', "SELECT worker_deaths FROM ingest.upload_jobs WHERE id = $cr"), '>=', 1,
	'the death was counted');

# ---- cancel: every worker of the job stops
my $cc = enqueue('alice', 'canc', 'good.csv', '{"commit_every": 50, "parallel": true}');
ok($node->poll_query_until('postgres',
	"SELECT records_done >= 100 FROM ingest.upload_jobs WHERE id = $cc"), 'the job to cancel is under way');
is($node->safe_psql('postgres', "SET ROLE alice; SELECT ingest.cancel($cc)"), 't', 'ingest.cancel');
like(finished($cc), qr/^cancelled /, 'the job is cancelled');
is($node->safe_psql('postgres',
	"SELECT (SELECT count(*) FROM canc) = rows_inserted FROM ingest.upload_jobs WHERE id = $cc"), 't',
	'rows_inserted counts the rows the parts committed');
ok($node->poll_query_until('postgres', "SELECT count(*) = 0 FROM ingest.workers WHERE job_id = $cc"),
	'no worker runs it any more');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM ingest_private.job_parts WHERE job_id = $cc AND state IN ('running', 'queued')"), '0',
	'none of its parts is running or left for a helper to claim');
# ingest.retry loads what is left: every record once
is($node->safe_psql('postgres', "SET ROLE alice; SELECT ingest.retry($cc)"), 't', 'ingest.retry of the cancelled job');
like(finished($cc), qr/^succeeded 3000 0 3000 /, 'it succeeds with every record once');
is($node->safe_psql('postgres', 'SELECT count(*) FROM canc'), '3000', '3000 rows in the table');

# ---- helpers count against ingest.max_running_per_role: another role gets a worker
$node->safe_psql('postgres', "ALTER SYSTEM SET ingest.max_running_per_role = 1; SELECT pg_reload_conf()");
$node->safe_psql('postgres', 'TRUNCATE par_g');
my $slow = enqueue('alice', 'par_g', 'good.csv', '{"commit_every": 100, "parallel": true}');
ok($node->poll_query_until('postgres',
	"SELECT records_done >= 100 FROM ingest.upload_jobs WHERE id = $slow"), 'alice\'s parallel job is under way');
my $b = $node->safe_psql('postgres',
	"SET ROLE bob; SELECT ingest.enqueue_data('bobs', convert_to(E'id,name,qty\\n1,b,1\\n', 'UTF8'))");
like(finished($b), qr/^succeeded 1 0 /, 'bob\'s job ran');
is($node->safe_psql('postgres', "SELECT state FROM ingest.upload_jobs WHERE id = $slow"), 'running',
	'while alice\'s was still running');
like(finished($slow), qr/^succeeded 3000 0 3000 /, 'alice\'s job succeeded');
is($node->safe_psql('postgres', 'SELECT count(DISTINCT loaded_by) FROM par_g'), '1',
	'with max_running_per_role 1, by its own worker alone');

# ---- tenants of one role: every part loads with its job's tenant, and a worker that
# helped one tenant's job never loads the other's
$node->safe_psql('postgres', q{
	ALTER SYSTEM RESET ingest.max_running_per_role;
	ALTER SYSTEM SET ingest.tenant_key = 'app.tenant';
	SELECT pg_reload_conf();
	CREATE TABLE tt (id int PRIMARY KEY, tenant text, qty int, loaded_by int DEFAULT pg_backend_pid());
	ALTER TABLE tt OWNER TO alice;
	ALTER TABLE tt ENABLE ROW LEVEL SECURITY;
	ALTER TABLE tt FORCE ROW LEVEL SECURITY;
	CREATE POLICY own_tenant ON tt USING (tenant = current_setting('app.tenant'))
		WITH CHECK (tenant = current_setting('app.tenant'));
	CREATE TRIGGER slow BEFORE INSERT ON tt FOR EACH ROW EXECUTE FUNCTION slow();
});
$node->safe_psql('postgres', qq{
	COPY (SELECT i AS id, CASE WHEN i % 3 = 0 THEN 't2' ELSE 't1' END AS tenant, i AS qty
	        FROM generate_series(1, 3000) i) TO '$dir/tenants.csv' (FORMAT csv, HEADER)});
my %tj;
for my $t ('t1', 't2')
{
	$tj{$t} = $node->safe_psql('postgres',
		"SET ROLE alice; SET app.tenant = '$t'; "
		  . "SELECT ingest.enqueue_file('tt', '$dir/tenants.csv', '{\"commit_every\": 50, \"max_errors\": 3000, \"parallel\": true}')");
}
like(finished($tj{t1}), qr/^succeeded 2000 1000 3000 /, 'tenant t1: its 2000 rows in, the 1000 of t2 rejected');
like(finished($tj{t2}), qr/^succeeded 1000 2000 3000 /, 'tenant t2: its 1000 rows in, the 2000 of t1 rejected');
is($node->safe_psql('postgres', "SELECT string_agg(tenant || ' ' || n, ', ' ORDER BY tenant) FROM "
	  . "(SELECT tenant, count(*) AS n FROM tt GROUP BY tenant) x"), 't1 2000, t2 1000', 'the rows of each tenant');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM (SELECT loaded_by FROM tt WHERE tenant = 't1' "
	  . "INTERSECT SELECT loaded_by FROM tt WHERE tenant = 't2') x"), '0',
	'no worker loaded rows of both tenants');
note 'workers that loaded the tenants\' rows: '
  . $node->safe_psql('postgres', 'SELECT count(DISTINCT loaded_by) FROM tt');
is($node->safe_psql('postgres', "SELECT count(DISTINCT sqlstate) || ' ' || min(sqlstate) FROM ingest_private.job_errors "
	  . "WHERE job_id IN ($tj{t1}, $tj{t2})"), '1 42501', 'the other tenant\'s records rejected by the policy');

# ---- idle workers bound to another owner make room for a parallel job's helpers: two
# jobs of bob's wait for their keys while alice's parallel job starts in the third slot;
# when they end, their workers (bound to bob) find only alice's parts waiting
$node->safe_psql('postgres', q{
	ALTER SYSTEM SET ingest.max_running_per_role = 3;
	ALTER SYSTEM RESET ingest.tenant_key;
	SELECT pg_reload_conf();
	CREATE TABLE bobs_wait (id int PRIMARY KEY);
	ALTER TABLE bobs_wait OWNER TO bob;
	TRUNCATE par_g;
});
my $locker = $node->background_psql('postgres');
$locker->query_safe('BEGIN; INSERT INTO bobs_wait VALUES (1), (2)');    # the keys they insert
my @bobs = split /\n/, $node->safe_psql('postgres',
	"SET ROLE bob; SELECT ingest.enqueue_data('bobs_wait', convert_to('id' || E'\\n' || g || E'\\n', 'UTF8')) "
	  . "FROM generate_series(1, 2) g");
my $bob_list = join(',', @bobs);
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 2 FROM ingest.upload_jobs WHERE state = 'running' AND id IN ($bob_list)"),
	'bob\'s two jobs run side by side');
my @bob_workers = split /\n/, $node->safe_psql('postgres',
	"SELECT worker_pid FROM ingest.upload_jobs WHERE id IN ($bob_list) ORDER BY 1");
my $helped = enqueue('alice', 'par_g', 'good.csv', '{"commit_every": 100, "parallel": true}');
ok($node->poll_query_until('postgres',
	"SELECT records_done >= 100 AND EXISTS (SELECT FROM ingest_private.job_parts WHERE job_id = $helped AND state = 'queued') "
	  . "FROM ingest.upload_jobs WHERE id = $helped"),
	'alice\'s parallel job is under way in the third slot, parts waiting');
$locker->query_safe('ROLLBACK');
$locker->quit;
for my $id (@bobs)
{
	like(finished($id), qr/^succeeded 1 0 1 /, "bob's job $id succeeded");
}
like(finished($helped), qr/^succeeded 3000 0 3000 /, 'alice\'s parallel job succeeded');
cmp_ok($node->safe_psql('postgres', 'SELECT count(DISTINCT loaded_by) FROM par_g'), '>=', 2,
	'helped by a worker that started when bob\'s were idle in every other slot');
my %now = map { $_ => 1 } ingest_worker_pids($node, 'postgres');
is(scalar(grep { $now{$_} } @bob_workers), 0, 'bob\'s idle workers made room');

is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts'), '0',
	'no prepared transaction is left');
$node->stop;
done_testing();
