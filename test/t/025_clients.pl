# The example apps of test/clients/ (node/upload.js with node-postgres, python/upload.py with
# psycopg 3 and its pool) and the README's psycopg sketch, run as a user would run them:
# through PgBouncer in transaction mode, against the README's example schema (the
# walkthrough's invoices table, RLS by app.tenant, one role "authenticated" for every tenant,
# ingest.tenant_key = 'app.tenant'; the README's SQL blocks are run as written), with two
# tenants. Node runs as tenant acme, Python as globex; for each app:
#   - an upload in chunks, one of whose chunks loses its connection (a trigger on the chunk
#     table terminates the backend once): the chunk is sent again, the job id is printed,
#     progress is reported, LISTEN (on a direct connection) wakes the app, the job is the
#     shared role's and the tenant's, its rows land with that tenant, and the rows of the
#     other tenant and the bad ones are listed with their line numbers;
#   - the other tenant, through the same app, cannot wait on, list, cancel or retry the job;
#   - a cancel while the job waits for the table, then a retry (polling, no LISTEN): nothing
#     of the cancelled attempt stays, the retry loads the rows.
# Node.js, its pg module (test/lib/setup.sh: npm ci into the staged tree), psycopg, its pool
# and PgBouncer are required: without them this test fails rather than skips.
use strict;
use warnings;

use FindBin;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IngestTest;

my $clients = "$FindBin::RealBin/../clients";
my $have_node = system('node', '-e', "require('$clients/node/node_modules/pg')") == 0;
ok($have_node, 'node and its pg module are installed')
  or diag 'install Node.js and run npm ci in test/clients/node (test/lib/setup.sh does)';
my $have_py = system('python3', '-c', 'import psycopg, psycopg_pool') == 0;
ok($have_py, 'python3 has psycopg and psycopg_pool')
  or diag 'install python3-psycopg and python3-psycopg-pool (test/lib/setup.sh does)';
if (!$have_node || !$have_py)
{
	done_testing();
	exit 1;
}

# ---------------------------------------------------------------- the README's schema
my $readme = slurp_file("$FindBin::RealBin/../../README.md");
# the fenced block of language $lang that contains $text
sub readme_block
{
	my ($lang, $text) = @_;
	while ($readme =~ /^```$lang\n(.*?)^```$/msg)
	{
		my $b = $1;
		return $b if index($b, $text) >= 0;
	}
	BAIL_OUT("README.md has no $lang block with \"$text\"");
}
my $table_sql = readme_block('sql', 'CREATE TABLE invoices');
my $roles_sql = readme_block('sql', 'CREATE ROLE authenticated');
$roles_sql =~ s/ALTER DATABASE app /ALTER DATABASE postgres /;

my $node = ingest_node('clients', conf => "ingest.max_workers = 2\n");
$node->safe_psql('postgres', "CREATE EXTENSION ingest; CREATE ROLE web LOGIN;\n$table_sql\n$roles_sql");
is($node->safe_psql('postgres', q{SELECT pg_has_role('web', 'authenticated', 'MEMBER')
	  || ' ' || (SELECT count(*) FROM pg_policies WHERE tablename = 'invoices')}),
	'true 1', "the README's schema: web is a member of authenticated, invoices has its policy");

my ($bouncer, $bport) = start_pgbouncer($node, users => ['web']);
END { local $?; $bouncer->kill_kill if $bouncer && $bouncer->pumpable; }
my ($host, $port) = ($node->host, $node->port);

# A connection lost in the middle of one chunk: the first chunk 1 stored after this is
# called terminates its own backend (PgBouncer then drops the client's connection too).
$node->safe_psql('postgres', q{
	CREATE SEQUENCE public.chunk_drops;
	CREATE FUNCTION public.drop_chunk_connection() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		IF NEW.seq = 1 AND nextval('public.chunk_drops') = 1 THEN
			PERFORM pg_terminate_backend(pg_backend_pid());
		END IF;
		RETURN NEW;
	END $$;
	CREATE TRIGGER drop_chunk_connection BEFORE INSERT ON ingest_private.job_chunks
		FOR EACH ROW EXECUTE FUNCTION public.drop_chunk_connection();
});

my $dir = PostgreSQL::Test::Utils::tempdir;

# A file of $tenant, ids $base+1 .. $base+6: one row of $other (line 4) and one with a
# negative amount (line 6) among four good rows.
sub write_csv
{
	my ($name, $tenant, $other, $base) = @_;
	my $csv = "id,org,amount,issued\n";
	$csv .= sprintf("%d,%s,%d.50,2026-01-%02d\n", $base + $_, $tenant, $_, $_) for 1 .. 2;
	$csv .= sprintf("%d,%s,9.00,2026-01-03\n", $base + 3, $other);
	$csv .= sprintf("%d,%s,1.00,2026-01-04\n", $base + 4, $tenant);
	$csv .= sprintf("%d,%s,-5,2026-01-05\n", $base + 5, $tenant);
	$csv .= sprintf("%d,%s,2.25,2026-01-06\n", $base + 6, $tenant);
	append_to_file("$dir/$name", $csv);
	return "$dir/$name";
}

my %app = (
	node => {
		cmd => [ 'node', "$clients/node/upload.js", '--url', "postgresql://web\@127.0.0.1:$bport/postgres" ],
		listen => [ '--listen-url', "postgresql:///postgres?host=$host&port=$port&user=web" ],
		tenant => 'acme', other => 'globex', base => 100,
	},
	python => {
		cmd => [ 'python3', "$clients/python/upload.py", '--dsn', "host=127.0.0.1 port=$bport dbname=postgres user=web" ],
		listen => [ '--listen-dsn', "host=$host port=$port dbname=postgres user=web" ],
		tenant => 'globex', other => 'acme', base => 200,
	},
);

# Runs app $name as $tenant with @args; returns (exit code, stdout, stderr). With
# until => [ qr/.../, sub { ... } ], calls the sub once the app's output matches.
sub run_app
{
	my ($name, $tenant, @args) = @_;
	my ($until, $then) = ref $args[0] eq 'ARRAY' ? @{ shift @args } : ();
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start([ @{ $app{$name}{cmd} }, '--tenant', $tenant, '--poll', '0.2', @args ],
		'>', \$out, '2>', \$err, IPC::Run::timeout(300));
	if ($until)
	{
		$h->pump while $h->pumpable && $out !~ $until;
		$then->();
	}
	$h->finish;
	my $rc = $? >> 8;
	note "$name as $tenant: @args -> exit $rc\n$out$err";
	return ($rc, $out, $err);
}

# Holds a SHARE lock on invoices, which stops the workers' INSERT but none of the apps'
# calls, until the returned sub is called.
sub lock_invoices
{
	my ($in, $out) = ("BEGIN;\nLOCK TABLE invoices IN SHARE MODE;\nSELECT 'locked';\n", '');
	my $h = IPC::Run::start([ 'psql', '-X', '-At', '-d', $node->connstr('postgres') ],
		'<', \$in, '>', \$out, '2>', \$out, IPC::Run::timeout(180));
	$h->pump until $out =~ /locked/;
	return sub { $in .= "COMMIT;\n"; $h->finish; };
}

for my $name (qw(node python))
{
	my $a = $app{$name};
	my ($t, $o, $base) = @{$a}{qw(tenant other base)};
	$node->safe_psql('postgres', 'ALTER SEQUENCE public.chunk_drops RESTART');

	# --- an upload in 6 chunks, waited for with LISTEN: the job waits for the table until
	# the app has reported its progress once (and so waits for the NOTIFY: it polls once a
	# minute only)
	my $file = write_csv("$name.csv", $t, $o, $base);
	my $unlock = lock_invoices();
	my ($rc, $out, $err) = run_app($name, $t,
		[ qr/^job \d+: (queued|running), \d+% of \d+ bytes, 0 rows loaded$/m, $unlock ],
		@{ $a->{listen} }, '--poll', '60', '--chunk-size', '30',
		'upload', 'invoices', $file, '--options', '{"max_errors": 10}');
	is($rc, 0, "$name: the upload succeeded (exit 0)");
	my ($job) = $out =~ /^job (\d+): uploading /m;
	ok(defined $job, "$name: the job id was printed first") or $job = 0;
	like($out, qr/^job $job: sent chunk 6\/6$/m, "$name: the file went in 6 chunks");
	like($err, qr/^job $job: chunk 1 failed \(.*\); sending it again$/m,
		"$name: the chunk whose connection was lost was sent again");
	my $size = -s $file;
	like($out, qr/^job $job: (queued|running|succeeded), \d+% of $size bytes, \d+ rows loaded$/m,
		"$name: progress was reported");
	like($out, qr/^job $job: notified$/m, "$name: LISTEN (direct connection) told it the job ended");
	like($out, qr/^job $job: succeeded: 4 rows inserted, 2 rejected$/m, "$name: the outcome was printed");
	like($out, qr/^job $job: line 4: \[42501\] new row violates row-level security policy.*: \d+,$o,9\.00,2026-01-03$/m,
		"$name: the other tenant's row was listed as rejected at line 4");
	like($out, qr/^job $job: line 6: \[23514\] .*invoices_amount_check.*$/m,
		"$name: the negative amount was listed as rejected at line 6");
	is( $node->safe_psql('postgres', qq{
			SELECT owner::text, tenant, source_type, state, rows_inserted, rows_rejected
			  FROM ingest.upload_jobs WHERE id = $job}),
		"authenticated|$t|chunks|succeeded|4|2",
		"$name: the job is the shared role's and tenant ${t}'s, loaded from chunks");
	is( $node->safe_psql('postgres', qq{
			SELECT string_agg(org || ':' || id, ',' ORDER BY id) FROM invoices
			 WHERE id BETWEEN $base AND $base + 99}),
		join(',', map { "$t:" . ($base + $_) } 1, 2, 4, 6),
		"$name: the rows landed, with tenant $t");
	is($node->safe_psql('postgres', qq{SELECT count(*) FROM ingest_private.job_chunks WHERE job_id = $job}),
		'0', "$name: the chunk sent twice was stored once, then removed with the others");

	# --- the other tenant, through the same app and the same role
	for my $cmd (qw(wait errors cancel retry))
	{
		($rc, $out, $err) = run_app($name, $o, $cmd, $job);
		if ($cmd eq 'errors')
		{
			is("$rc|$out", '0|', "$name: tenant $o lists no rejected rows of ${t}'s job");
		}
		else
		{
			is($rc, 2, "$name: tenant $o cannot $cmd ${t}'s job (exit 2)");
			like($err, qr/does not exist|no such job/, "$name: ... it does not exist for $o");
		}
	}
	is($node->safe_psql('postgres', "SELECT state, attempts FROM ingest.upload_jobs WHERE id = $job"),
		'succeeded|1', "$name: the job is unchanged");

	# --- cancel while the job waits for the table, then retry
	$unlock = lock_invoices();
	my $file2 = write_csv("$name-2.csv", $t, $o, $base + 50);
	($rc, $out, $err) = run_app($name, $t, 'upload', 'invoices', $file2, '--options', '{"max_errors": 10}',
		'--no-wait');
	my ($job2) = $out =~ /^job (\d+): uploading /m;
	is($rc, 0, "$name: an upload with --no-wait returns at once");
	ok(defined $job2, "$name: ... with its job id") or $job2 = 0;
	ok($node->poll_query_until('postgres', "SELECT state = 'running' FROM ingest.upload_jobs WHERE id = $job2"),
		"$name: the job started, and waits for the table");
	($rc, $out) = run_app($name, $t, 'cancel', $job2);
	is("$rc|$out", "0|job $job2: cancelled\n", "$name: cancel while the job runs");
	$unlock->();
	ok($node->poll_query_until('postgres', "SELECT state = 'cancelled' FROM ingest.upload_jobs WHERE id = $job2"),
		"$name: the job ended cancelled");
	is($node->safe_psql('postgres', "SELECT count(*) FROM invoices WHERE id BETWEEN $base + 50 AND $base + 99"),
		'0', "$name: nothing of the cancelled job stayed");
	($rc, $out) = run_app($name, $t, 'retry', $job2);
	is($rc, 0, "$name: the retry succeeded (exit 0)");
	like($out, qr/^job $job2: queued again\n(.*\n)*job $job2: succeeded: 4 rows inserted, 2 rejected$/m,
		"$name: ... re-queued, polled through the pool until it succeeded");
	is( $node->safe_psql('postgres', qq{
			SELECT string_agg(org || ':' || id, ',' ORDER BY id) FROM invoices
			 WHERE id BETWEEN $base + 50 AND $base + 99}),
		join(',', map { "$t:" . ($base + 50 + $_) } 1, 2, 4, 6),
		"$name: the retry loaded the rows, with tenant $t");
}

# Each tenant, as the shared role, sees only its own jobs
for my $t (qw(acme globex))
{
	is( $node->safe_psql('postgres', qq{
			SET ROLE authenticated; SET app.tenant = '$t';
			SELECT count(*) || ' ' || count(*) FILTER (WHERE tenant = '$t') FROM ingest.upload_jobs}),
		'2 2', "tenant $t sees its 2 jobs and no other");
}

# ---------------------------------------------------------------- the README's sketch
my $sketch = readme_block('python', 'def as_tenant(');
append_to_file("$dir/readme_sketch.py", $sketch);
my $file3 = write_csv('sketch.csv', 'acme', 'globex', 300);
my ($out, $err) = ('', '');
IPC::Run::run([ 'python3', '-c', q{
import sys
sys.path.insert(0, sys.argv[1])
import readme_sketch as s
job = s.upload(sys.argv[2], "acme", "invoices", sys.argv[3], '{"max_errors": 10}')
print(job, s.wait(sys.argv[2], "acme", job))
}, $dir, "host=127.0.0.1 port=$bport dbname=postgres user=web", $file3 ],
	'>', \$out, '2>', \$err, IPC::Run::timeout(300));
note "README sketch: $out$err";
my ($job3, $state3) = $out =~ /^(\d+) (\w+)$/m;
is($state3, 'succeeded', "the README's psycopg sketch, run as written, uploads and waits");
is( $node->safe_psql('postgres', qq{
		SELECT owner::text, tenant, rows_inserted, rows_rejected FROM ingest.upload_jobs WHERE id = ${\($job3 // 0)}}),
	'authenticated|acme|4|2', "... its job is authenticated's, tenant acme's, with 4 rows and 2 rejected");

$bouncer->signal('TERM');
$bouncer->finish;
ok(!$node->log_contains(qr/server process .* was terminated by signal|PANIC/), 'no process crashed');
$node->stop;
done_testing();
