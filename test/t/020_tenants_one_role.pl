# Tenants that share one database role, as hosted apps (Supabase, PostgREST) connect every
# end user: through PgBouncer in transaction mode, each call a transaction that sets the
# tenant first. Twice: in database "jwt" the tenant is a claim of request.jwt.claims
# (ingest.tenant_key = 'request.jwt.claims->app_metadata->>org_id'), in database "plain" it
# is app.tenant (SET LOCAL). For each, tenant B of role web:
#   - sees none of tenant A's jobs, rejected rows or chunks, and no role but ingest_admin
#     reads the captured settings (A's JWT claims);
#   - cannot send a chunk into A's upload nor finish it (the hijack), nor cancel, retry, wait
#     on, ask the place of, or purge A's jobs: each is "does not exist", word for word the
#     error of a job that does not exist;
#   - does not see A's running job in ingest.workers, from this database or another;
#   - waits behind at most the running job, never behind A's queue (turns per tenant), and
#     has a quota of its own (ingest.max_queued_per_role per tenant);
# a session without a tenant cannot enqueue; A's own rows land with A's tenant.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IngestTest;

my $node = ingest_node('tenants', conf => "ingest.max_workers = 1\n");
my %key = (jwt => 'request.jwt.claims->app_metadata->>org_id', plain => 'app.tenant');
$node->safe_psql('postgres', 'CREATE ROLE web LOGIN');
for my $db (sort keys %key)
{
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, qq{
		CREATE EXTENSION ingest;
		ALTER DATABASE $db SET ingest.tenant_key = '$key{$db}';
		-- the app's table: each tenant's rows, by the tenant ingest reads
		CREATE TABLE docs (tenant text NOT NULL DEFAULT ingest.current_tenant(), n int NOT NULL);
		ALTER TABLE docs ENABLE ROW LEVEL SECURITY;
		CREATE POLICY own ON docs USING (tenant = ingest.current_tenant())
		  WITH CHECK (tenant = ingest.current_tenant());
		GRANT SELECT, INSERT ON docs TO web;
		-- rows of slow wait at a gate while advisory lock 7 is held
		CREATE TABLE slow (n int);
		CREATE FUNCTION gate() RETURNS trigger LANGUAGE plpgsql AS \$\$
		BEGIN PERFORM pg_advisory_xact_lock_shared(7); RETURN NEW; END \$\$;
		CREATE TRIGGER gate BEFORE INSERT ON slow FOR EACH ROW EXECUTE FUNCTION gate();
		GRANT INSERT ON slow TO web;
	});
}
$node->safe_psql('postgres', 'CREATE ROLE ops LOGIN IN ROLE ingest_admin');

my ($bouncer, $bport) = start_pgbouncer($node, dbs => [ sort keys %key ], users => [ 'web', 'ops', 'other' ]);
END { local $?; $bouncer->kill_kill if $bouncer && $bouncer->pumpable; }

# The statement that makes a transaction tenant $t's, as the app would run it per request
sub tenant_sql
{
	my ($db, $t) = @_;
	return '' unless defined $t;
	return qq{SELECT set_config('request.jwt.claims',
	            '{"sub": "user-$t", "email": "$t\@example.com", "app_metadata": {"org_id": "$t"}}', true)
	          AS claims \\gset\n} if $db eq 'jwt';
	return "SET LOCAL app.tenant = '$t';\n";
}

# Run $sql as role $user (web by default) of tenant $t through PgBouncer, in one transaction;
# returns (ok, stdout, stderr).
sub as_tenant
{
	my ($db, $t, $sql, $user) = @_;
	$user //= 'web';
	my $script = "\\set ON_ERROR_STOP 1\nBEGIN;\n" . tenant_sql($db, $t) . "$sql;\nCOMMIT;\n";
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run(
		[ 'psql', '-X', '-At', '-q', '-d', "host=127.0.0.1 port=$bport dbname=$db user=$user" ],
		'<', \$script, '>', \$out, '2>', \$err);
	chomp $out;
	return ($ok, $out, $err);
}

sub value_of
{
	my ($db, $t, $sql) = @_;
	my ($ok, $out, $err) = as_tenant($db, $t, $sql);
	die "as tenant $t in $db: $sql\n$err" unless $ok;
	return $out;
}

# The error, with every number masked: what B is told about A's job must read as what
# anyone is told about a job that does not exist.
sub error_of
{
	my ($db, $t, $sql) = @_;
	my ($ok, $out, $err) = as_tenant($db, $t, $sql);
	return 'no error' if $ok;
	$err =~ s/\d+/N/g;
	$err =~ s/^psql:<stdin>:N: //mg;
	return $err;
}

for my $db (sort keys %key)
{
	note "database $db, ingest.tenant_key = $key{$db}";

	# A: a job with a rejected record, and an upload left open with one chunk
	my $ja = value_of($db, 'A', q{SELECT ingest.enqueue_data('docs',
		convert_to(E'n\n1\n2\nx\n', 'UTF8'), '{"max_errors": 5}')});
	ok(poll_until_finished($node, $db, $ja), "$db: A's job ran");
	is($node->safe_psql($db, "SELECT state || ' ' || rows_inserted || ' ' || rows_rejected || ' ' || tenant
		FROM ingest.upload_jobs WHERE id = $ja"), 'succeeded 2 1 A', "$db: A's job belongs to tenant A");
	my $ua = value_of($db, 'A', q{SELECT ingest.begin_upload('docs')});
	value_of($db, 'A', "SELECT ingest.upload_chunk($ua, 0, convert_to(E'n\\n10\\n', 'UTF8'))");

	is(value_of($db, 'A', 'SELECT count(*) FROM ingest.upload_jobs'), 2, "$db: A sees its 2 jobs");
	is(value_of($db, 'A', 'SELECT count(*) FROM ingest.job_errors'), 1, "$db: A sees its rejected row");
	is(value_of($db, 'A', 'SELECT count(*) FROM ingest.upload_chunks'), 1, "$db: A sees its chunk");
	is(value_of($db, 'B', 'SELECT count(*) FROM ingest.upload_jobs'), 0, "$db: B sees none of A's jobs");
	is(value_of($db, 'B', 'SELECT count(*) FROM ingest.job_errors'), 0, "$db: B sees none of A's rejected rows");
	is(value_of($db, 'B', 'SELECT count(*) FROM ingest.upload_chunks'), 0, "$db: B sees none of A's chunks");
	is(value_of($db, 'B', "SELECT count(*) FROM ingest.upload_jobs WHERE id IN ($ja, $ua)"), 0,
		"$db: not even by id");

	# what EXPLAIN ANALYZE counts does not depend on another tenant's values: B's condition
	# on A's rejected line ('x') and on a line nobody has give the same plan counts
	my $counts = sub {
		my ($sql) = @_;
		my $plan = value_of($db, 'B', "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, FORMAT JSON) $sql");
		return join ',', $plan =~ /"(?:Actual Rows|Rows Removed by Filter)": (\d+)/g;
	};
	is($counts->(q{SELECT 1 FROM ingest.job_errors WHERE raw_line = 'x'}),
		$counts->(q{SELECT 1 FROM ingest.job_errors WHERE raw_line = 'nobody has this'}),
		"$db: EXPLAIN ANALYZE tells B nothing of A's rejected lines");
	is($counts->(q{SELECT 1 FROM ingest.upload_chunks WHERE bytes = 5}),
		$counts->(q{SELECT 1 FROM ingest.upload_chunks WHERE bytes = 12345}),
		"$db: nor of A's chunk sizes");

	# the captured settings: ingest_admin only
	like(error_of($db, 'B', 'SELECT settings FROM ingest.upload_jobs'),
		qr/permission denied for view upload_jobs/, "$db: B cannot read settings");
	like(error_of($db, 'A', 'SELECT settings FROM ingest.upload_jobs'),
		qr/permission denied for view upload_jobs/, "$db: nor can A (secrets are for ingest_admin)");
	my $secret = $db eq 'jwt' ? 'A@example.com' : 'A';
	my $setting = $db eq 'jwt' ? 'request.jwt.claims' : 'app.tenant';
	my ($ok, $claims) = as_tenant($db, undef, "SELECT settings->>'$setting' FROM ingest.upload_jobs WHERE id = $ja", 'ops');
	like($claims, qr/\Q$secret\E/, "$db: an ingest_admin member reads them");

	# every action on A's jobs: exactly the error of a job that does not exist
	for my $call (
		"SELECT ingest.upload_chunk(%d, 1, convert_to(E'20\\n', 'UTF8'))",
		'SELECT ingest.finish_upload(%d)',
		'SELECT ingest.cancel(%d)',
		'SELECT ingest.retry(%d)',
		'SELECT ingest.queue_position(%d)',
		"SELECT ingest.wait(%d, '1 s')")
	{
		my $missing = error_of($db, 'B', sprintf($call, 987654321));
		like($missing, qr/ingest job N does not exist/, "$db: $call of a missing job: does not exist");
		for my $job ($ja, $ua)
		{
			is(error_of($db, 'B', sprintf($call, $job)), $missing,
				"$db: B's " . sprintf($call, $job) . ' reads as for a missing job');
		}
	}
	is(value_of($db, 'B', "SELECT ingest.purge('0 s')"), 0, "$db: B's purge deletes none of A's jobs");
	is($node->safe_psql($db, "SELECT count(*) FROM ingest.upload_jobs WHERE id IN ($ja, $ua)"), 2,
		"$db: A's jobs are all there");
	is($node->safe_psql($db, "SELECT string_agg(seq::text, ',') FROM ingest_private.job_chunks WHERE job_id = $ua"),
		'0', "$db: A's upload holds only A's chunk");

	# A finishes its upload: A's rows, tenant A
	value_of($db, 'A', "SELECT ingest.upload_chunk($ua, 1, convert_to(E'11\\n', 'UTF8'))");
	value_of($db, 'A', "SELECT ingest.finish_upload($ua)");
	ok(poll_until_finished($node, $db, $ua), "$db: A's upload ran");
	is($node->safe_psql($db, "SELECT string_agg(tenant || ':' || n, ',' ORDER BY n) FROM docs"),
		'A:1,A:2,A:10,A:11', "$db: the table holds A's rows, as A's");
	is(value_of($db, 'B', 'SELECT count(*) FROM docs'), 0, "$db: none of which B sees");

	# no tenant, no enqueue
	my $no = error_of($db, undef, q{SELECT ingest.enqueue_data('docs', convert_to(E'n\n3\n', 'UTF8'))});
	like($no, qr/this session has no tenant: ingest.tenant_key is "\Q$key{$db}\E"/,
		"$db: a session without a tenant cannot enqueue");
	like($no, qr/HINT:.*\Q$setting\E/, "$db: the hint names the setting");

	# turns and the running job: A's job holds the only worker at the gate, A queues 3 more, B 1
	my $gate = $node->background_psql($db);
	$gate->query_safe('SELECT pg_advisory_lock(7)');
	my $run = value_of($db, 'A', q{SELECT ingest.enqueue_data('slow', convert_to(E'n\n1\n', 'UTF8'))});
	ok($node->poll_query_until($db, "SELECT state = 'running' FROM ingest.upload_jobs WHERE id = $run"),
		"$db: A's first slow job runs");
	is(value_of($db, 'A', "SELECT count(job_id) FROM ingest.workers"), 1, "$db: A sees its job in ingest.workers");
	is(value_of($db, 'B', "SELECT count(job_id) FROM ingest.workers"), 0, "$db: B does not");
	# each database numbers its jobs from 1: in the other one the same id is another
	# tenant's job (the first round made the same jobs there), which says nothing of this one
	my $other = $db eq 'jwt' ? 'plain' : 'jwt';
	is(value_of($other, 'A', "SELECT count(job_id) FROM ingest.workers"), 0,
		"$db: A's running job is not shown in database $other, whoever has its id there");
	my @aq = map { value_of($db, 'A', q{SELECT ingest.enqueue_data('slow', convert_to(E'n\n1\n', 'UTF8'))}) } 1 .. 3;
	my $bq = value_of($db, 'B', q{SELECT ingest.enqueue_data('slow', convert_to(E'n\n2\n', 'UTF8'))});
	is(value_of($db, 'B', "SELECT ingest.queue_position($bq)"), 0,
		"$db: B's job is next, ahead of A's queue");
	is(value_of($db, 'A', "SELECT ingest.queue_position($aq[0])"), 1, "$db: A's next job comes after it");

	# quotas per tenant: A at 3 queued cannot queue a 4th, B can
	$node->safe_psql($db, 'ALTER ROLE web IN DATABASE ' . $db . ' SET ingest.max_queued_per_role = 3');
	like(error_of($db, 'A', q{SELECT ingest.enqueue_data('slow', convert_to(E'n\n1\n', 'UTF8'))}),
		qr/tenant "A" of role "web" already has N ingest jobs queued or uploading/,
		"$db: A is at its quota");
	my $b2 = value_of($db, 'B', q{SELECT ingest.enqueue_data('slow', convert_to(E'n\n2\n', 'UTF8'))});
	ok($b2 > 0, "$db: B, with one job queued, is not held by A's quota");
	$node->safe_psql($db, 'ALTER ROLE web IN DATABASE ' . $db . ' RESET ingest.max_queued_per_role');

	$gate->query_safe('SELECT pg_advisory_unlock(7)');
	$gate->quit;
	ok(poll_until_finished($node, $db, $run, @aq, $bq, $b2), "$db: every slow job finished");
	is( $node->safe_psql($db, qq{
			SELECT string_agg(coalesce(tenant, '-'), '' ORDER BY started_at) FROM ingest.upload_jobs
			 WHERE id IN ($run, @{[ join ',', @aq ]}, $bq, $b2)}),
		'ABABAA', "$db: tenants took turns (A's running job, then B, A, B, A, A)");
}

# A role's tenants share the role's turn: web floods the queue from six tenants never seen
# before (two jobs each, at the gate), role other queues one job, which is next.
{
	my $db = 'plain';
	$node->safe_psql('postgres', 'CREATE ROLE other LOGIN');
	$node->safe_psql($db, q{GRANT INSERT ON slow TO other; ALTER ROLE other IN DATABASE plain SET app.tenant = 'o'});
	my $gate = $node->background_psql($db);
	$gate->query_safe('SELECT pg_advisory_lock(7)');
	my $first = value_of($db, 'A', q{SELECT ingest.enqueue_data('slow', convert_to(E'n\n1\n', 'UTF8'))});
	ok($node->poll_query_until($db, "SELECT state = 'running' FROM ingest.upload_jobs WHERE id = $first"),
		'plain: a job of web holds the worker');
	my @flood = map { my $t = "hop$_"; map { value_of($db, $t,
		q{SELECT ingest.enqueue_data('slow', convert_to(E'n\n1\n', 'UTF8'))}) } 1 .. 2 } 1 .. 6;
	my ($ok, $o) = as_tenant($db, 'o',
		q{SELECT ingest.enqueue_data('slow', convert_to(E'n\n3\n', 'UTF8'))}, 'other');
	ok($ok, 'plain: role other queues a job');
	is($node->safe_psql($db, "SELECT ingest.queue_position($o)"), 0,
		"plain: other's job is next, ahead of web's 12 jobs from 6 new tenants");
	$gate->query_safe('SELECT pg_advisory_unlock(7)');
	$gate->quit;
	ok(poll_until_finished($node, $db, $first, @flood, $o), 'plain: all of them ran');
	is($node->safe_psql($db, qq{SELECT owner FROM ingest.upload_jobs WHERE id IN (@{[ join ',', @flood ]}, $o)
		ORDER BY started_at LIMIT 1}), 'other', "plain: other's job started first");

	# no statistics tell other tenants' values: a range no row has and the range of A's
	# rejected line are estimated alike
	$node->safe_psql($db, 'ANALYZE ingest_private.upload_jobs, ingest_private.job_errors');
	my $est = sub {
		my ($where) = @_;
		my $plan = value_of($db, 'B', "EXPLAIN (FORMAT JSON) SELECT 1 FROM ingest.job_errors WHERE $where");
		return $plan =~ /"Plan Rows": (\d+)/ ? $1 : -1;
	};
	is($est->(q{raw_line >= 'x' AND raw_line < 'x~'}), $est->(q{raw_line >= 'qq' AND raw_line < 'qq~'}),
		"plain: EXPLAIN estimates B's range over A's rejected line as any other range");
	is($node->safe_psql($db, q{SELECT count(*) FROM pg_stats WHERE schemaname = 'ingest_private'
		AND attname IN ('raw_line', 'message', 'tenant', 'last_error', 'source', 'settings')}), 0,
		'plain: no statistics are kept of those columns');
}

done_testing();
