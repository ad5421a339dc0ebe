# 100 clients upload through PgBouncer in transaction pooling mode (pool of 10 server
# connections, a server with max_connections = 30): every upload in chunks succeeds with
# exactly its rows and the settings set in the transaction that began it, while the server
# never runs more backends than the pool plus ingest.max_workers plus a few.
#
# The clients are test/clients/pgbouncer_upload.py (python3 with psycopg 3, Debian's
# python3-psycopg); it prints the p50 and p99 latency of each kind of call, reported here
# as notes, not asserted. PgBouncer and psycopg are required (test/lib/setup.sh installs
# them): without them this test fails rather than skips.
use strict;
use warnings;

use FindBin;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use IngestTest;

my $pool_size = 10;
my $max_workers = 4;
my $clients = 100;
my $backend_limit = $pool_size + $max_workers + 5;	# + sampler, launcher, autovacuum
# chunks: begin_upload / upload_chunk / finish_upload; data: one enqueue_data call
my $mode = 'chunks';

my ($pgbouncer) = grep { -x $_ } map { "$_/pgbouncer" } split(/:/, $ENV{PATH} // ''), '/usr/sbin';
ok(defined $pgbouncer, 'pgbouncer is installed')
  or diag 'install Debian\'s pgbouncer (test/lib/setup.sh does)';
my $has_psycopg = system('python3', '-c', 'import psycopg') == 0;
ok($has_psycopg, 'python3 has psycopg')
  or diag 'install Debian\'s python3-psycopg (test/lib/setup.sh does)';
if (!defined $pgbouncer || !$has_psycopg)
{
	done_testing();
	exit 1;
}

my $node = ingest_node('bouncer', conf => "ingest.max_workers = $max_workers\n"
	  . "max_connections = 30\n");
$node->safe_psql('postgres', q{
	CREATE EXTENSION ingest;
	CREATE ROLE app LOGIN;
	-- one role for every client: let its jobs use all the workers
	ALTER ROLE app SET ingest.max_running_per_role = 4;
	CREATE TABLE uploads (
		client  int NOT NULL,
		n       int NOT NULL,
		payload text NOT NULL,
		-- the setting the client set in the transaction of begin_upload
		tag     text DEFAULT current_setting('app.client', true));
	GRANT INSERT ON uploads TO app;
});

# PgBouncer, in front of the node's socket
my ($bouncer, $bport, $dir) = start_pgbouncer($node, users => ['app'], pool => $pool_size);
END { local $?; $bouncer->kill_kill if $bouncer && $bouncer->pumpable; }
my ($host, $port) = ($node->host, $node->port);
my $bouncer_conn = "host=127.0.0.1 port=$bport dbname=postgres user=app";
pass('PgBouncer accepts connections');

my $driver = "$FindBin::RealBin/../clients/pgbouncer_upload.py";
my ($json, $log);
my $rc = IPC::Run::run(
	[
		'python3', $driver,
		'--bouncer' => $bouncer_conn,
		'--direct' => "host=$host port=$port dbname=postgres",
		'--user' => 'app',
		'--clients' => $clients,
		'--backend-limit' => $backend_limit,
		'--mode' => $mode,
	],
	'>', \$json, '2>', \$log, IPC::Run::timeout(900));
note "driver output:\n$log";
ok($rc, 'the driver exited 0');

my $r = eval { decode_json((split /\n/, $json)[-1] // '') } // {};
is($r->{jobs_succeeded_exact}, $clients, "all $clients clients' jobs succeeded with exactly their rows");
is_deeply($r->{failures}, [], 'no client failed');
is($r->{sampler_error}, undef, 'the sampler ran without error');
cmp_ok($r->{samples} // 0, '>=', 20, 'the sampler looked often enough');
cmp_ok($r->{most}{pool_backends} // 99, '<=', $pool_size,
	"the clients' role never had more than $pool_size server connections");
cmp_ok($r->{most}{backends} // 99, '<=', $backend_limit,
	"never more than $backend_limit backends (pool + ingest.max_workers + 5)");
cmp_ok($r->{most}{ingest_workers} // 99, '<=', $max_workers, 'never more than ingest.max_workers workers');
cmp_ok($r->{most}{ingest_workers} // 0, '>=', 1, 'workers were seen loading');
cmp_ok($r->{chunks_sent} // 0, '>=', 5 * $clients, 'every upload came in several chunks')
  if $mode eq 'chunks';

# What the server holds, against what the driver says it sent
my $values = join ', ', map { "($r->{jobs}{$_}, $_, $r->{rows}{$_})" } sort { $a <=> $b } keys %{ $r->{jobs} // {} };
$values ||= '(0, 0, 0)';
my $source_type = $mode eq 'chunks' ? 'chunks' : 'data';
is( $node->safe_psql('postgres', qq{
		SELECT count(*) FROM (VALUES $values) s (job, client, rows)
		  JOIN ingest.upload_jobs j ON j.id = s.job
		 WHERE j.state = 'succeeded' AND j.source_type = '$source_type' AND j.owner = 'app'::regrole
		   AND j.rows_inserted = s.rows AND j.rows_rejected = 0}),
	$clients, "ingest.upload_jobs: $clients $source_type jobs of app succeeded, each with the rows its client sent");
my $rows = $r->{rows_sent} // -1;
is( $node->safe_psql('postgres', q{
		SELECT count(DISTINCT client) || ' ' || count(*) || ' ' || count(*) FILTER (WHERE tag = client::text)
		  FROM uploads}),
	"$clients $rows $rows",
	"the table holds every row once, each tagged with the setting of its client's begin transaction");
is( $node->safe_psql('postgres', q{
		SELECT count(*) FROM (SELECT client, n FROM uploads GROUP BY 1, 2 HAVING count(*) > 1) d}),
	'0', 'no row was loaded twice');
if ($mode eq 'chunks')
{
	is($node->safe_psql('postgres', 'SELECT count(*) FROM ingest_private.job_chunks'), '0',
		'the chunks of the loaded uploads were removed');
}

for my $kind (sort keys %{ $r->{latency_ms} // {} })
{
	my $l = $r->{latency_ms}{$kind};
	note sprintf('latency of %s through PgBouncer: p50 %.1f ms, p99 %.1f ms (%d calls)',
		$kind, $l->{p50}, $l->{p99}, $l->{n});
}
note "most at once: $r->{most}{backends} backends, $r->{most}{client_backends} client backends, "
  . "$r->{most}{pool_backends} of app, $r->{most}{ingest_workers} ingest workers; $r->{elapsed_s} s"
  if $r->{most};

$bouncer->signal('TERM');
$bouncer->finish;
ok(!$node->log_contains(qr/terminated by signal|PANIC|was terminated/), 'no process crashed');
$node->stop;
done_testing();
