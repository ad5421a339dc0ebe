# Targets with foreign partitions (postgres_fdw shards, here a loopback to another database of
# the same server):
#   - PostgreSQL applies no RLS WITH CHECK to rows routed to a foreign partition, so a target
#     that has one is refused while RLS applies to the owner: at enqueue, and when the job
#     starts (a partition attached after the enqueue);
#   - without RLS such a target loads; with the shard's batch_size > 1 one duplicate key is
#     rejected alone (found by halving), not with the 50-odd good rows sent with it;
#   - a shard that cannot be reached (SQLSTATE class 08) is a transient failure, retried, not
#     a bad record.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IngestTest;

my $node = ingest_node('fdw', conf => "ingest.max_workers = 1\n");
my $port = $node->port;
my $host = $node->host;
$node->safe_psql('postgres', q{
	CREATE DATABASE shard;
	CREATE ROLE web NOLOGIN;
	CREATE ROLE shard_user LOGIN;
});
$node->safe_psql('shard', q{
	CREATE TABLE remote_b (tenant text, id int PRIMARY KEY);
	CREATE TABLE remote_n (tenant text, id int PRIMARY KEY);
	GRANT ALL ON remote_b, remote_n TO shard_user;
	INSERT INTO remote_n VALUES ('b', 1030);
});
$node->safe_psql('postgres', qq{
	CREATE EXTENSION ingest;
	CREATE EXTENSION postgres_fdw;
	CREATE SERVER shard FOREIGN DATA WRAPPER postgres_fdw
	  OPTIONS (host '$host', port '$port', dbname 'shard', batch_size '100');
	CREATE SERVER nowhere FOREIGN DATA WRAPPER postgres_fdw
	  OPTIONS (host '$host', port '1', dbname 'shard');
	CREATE USER MAPPING FOR web SERVER shard OPTIONS (user 'shard_user', password_required 'false');
	CREATE USER MAPPING FOR web SERVER nowhere OPTIONS (user 'shard_user', password_required 'false');

	-- with RLS: a local partition for tenant a, a shard for tenant b
	CREATE TABLE m (tenant text NOT NULL DEFAULT current_setting('app.tenant'), id int)
	  PARTITION BY LIST (tenant);
	CREATE TABLE m_a PARTITION OF m FOR VALUES IN ('a');
	CREATE FOREIGN TABLE m_b PARTITION OF m FOR VALUES IN ('b')
	  SERVER shard OPTIONS (table_name 'remote_b');
	ALTER TABLE m ENABLE ROW LEVEL SECURITY;
	CREATE POLICY own ON m USING (tenant = current_setting('app.tenant'))
	  WITH CHECK (tenant = current_setting('app.tenant'));
	GRANT SELECT, INSERT ON m TO web;

	-- the same, its shard attached later
	CREATE TABLE m2 (tenant text NOT NULL DEFAULT current_setting('app.tenant'), id int)
	  PARTITION BY LIST (tenant);
	CREATE TABLE m2_a PARTITION OF m2 FOR VALUES IN ('a');
	ALTER TABLE m2 ENABLE ROW LEVEL SECURITY;
	CREATE POLICY own ON m2 USING (tenant = current_setting('app.tenant'))
	  WITH CHECK (tenant = current_setting('app.tenant'));
	GRANT SELECT, INSERT ON m2 TO web;

	-- without RLS
	CREATE TABLE n (tenant text NOT NULL, id int) PARTITION BY LIST (tenant);
	CREATE TABLE n_a PARTITION OF n FOR VALUES IN ('a');
	CREATE FOREIGN TABLE n_b PARTITION OF n FOR VALUES IN ('b')
	  SERVER shard OPTIONS (table_name 'remote_n');
	GRANT SELECT, INSERT ON n TO web;

	CREATE TABLE d (tenant text NOT NULL, id int) PARTITION BY LIST (tenant);
	CREATE FOREIGN TABLE d_b PARTITION OF d FOR VALUES IN ('b')
	  SERVER nowhere OPTIONS (table_name 'remote_n');
	GRANT SELECT, INSERT ON d TO web;
});

# ---- refused with RLS, at enqueue
my ($ret, $out, $err) = $node->psql('postgres', q{SET ROLE web; SET app.tenant = 'a';
	SELECT ingest.enqueue_data('m', convert_to(E'tenant,id\na,1\nb,2\n', 'UTF8'))});
isnt($ret, 0, 'a target with a foreign partition and RLS is refused at enqueue');
like($err, qr/cannot load into "m": its partition "m_b" is a foreign table, and row-level security does not check rows routed to a foreign partition/,
	'saying why');
is($node->safe_psql('shard', 'SELECT count(*) FROM remote_b'), 0, 'nothing reached the shard');

# ---- and when the job starts, for a shard attached after the enqueue
$node->safe_psql('postgres', q{ALTER SYSTEM SET ingest.max_workers = 0; SELECT pg_reload_conf()});
my $j = $node->safe_psql('postgres', q{SET ROLE web; SET app.tenant = 'a';
	SELECT ingest.enqueue_data('m2', convert_to(E'tenant,id\na,1\nb,2\n', 'UTF8'))});
$node->safe_psql('postgres', q{CREATE FOREIGN TABLE m2_b PARTITION OF m2 FOR VALUES IN ('b')
	SERVER shard OPTIONS (table_name 'remote_b')});
$node->safe_psql('postgres', q{ALTER SYSTEM RESET ingest.max_workers; SELECT pg_reload_conf()});
$node->safe_psql('postgres', 'SELECT ingest._wake_workers()');
ok(poll_until_finished($node, 'postgres', $j), 'the job enqueued before the shard was attached ran');
my $r = job_row($node, 'postgres', $j);
is($r->{state}, 'failed', 'and failed');
like($r->{last_error}, qr/partition "m2_b" is a foreign table/, 'saying why');
is($node->safe_psql('postgres', 'SELECT count(*) FROM m2_a'), 0, 'loading nothing');
is($node->safe_psql('shard', 'SELECT count(*) FROM remote_b'), 0, 'nothing reached the shard');

# ---- without RLS: loads; the duplicate is the only rejected row
my $csv = join('', "tenant,id\n", map { "b,$_\n" } 1001 .. 1060);
$j = $node->safe_psql('postgres', qq{SET ROLE web;
	SELECT ingest.enqueue_data('n', convert_to('$csv', 'UTF8'), '{"max_errors": 10}')});
ok(poll_until_finished($node, 'postgres', $j), 'a load into a shard without RLS ran');
$r = job_row($node, 'postgres', $j);
is("$r->{state} $r->{rows_inserted} $r->{rows_rejected}", 'succeeded 59 1',
	'59 rows in, only the duplicate rejected (batch_size 100 sends them together)');
is($node->safe_psql('postgres', "SELECT line_number || ' ' || sqlstate FROM ingest.job_errors WHERE job_id = $j"),
	'31 23505', 'the rejected row is the duplicate key, at its line');
is($node->safe_psql('shard', 'SELECT count(*) FROM remote_n'), 60, 'the shard holds 59 + the row that was there');

# ---- on_conflict: postgres_fdw takes no ON CONFLICT with a conflict target, refused at enqueue
($ret, $out, $err) = $node->psql('postgres', q{SET ROLE web;
	SELECT ingest.enqueue_data('n', convert_to(E'tenant,id\nb,1\n', 'UTF8'), '{"on_conflict": "nothing", "conflict_target": ["tenant", "id"]}')});
isnt($ret, 0, 'on_conflict into a target with a foreign partition is refused at enqueue');
like($err, qr/"on_conflict": "nothing" cannot load into public\.n: it has foreign partitions/, 'saying why');

# ---- a shard that cannot be reached: transient, retried, no row blamed
$j = $node->safe_psql('postgres', q{SET ROLE web;
	SELECT ingest.enqueue_data('d', convert_to(E'tenant,id\nb,1\nb,2\n', 'UTF8'), '{"max_errors": 10, "max_attempts": 2}')});
ok(poll_until_finished($node, 'postgres', $j), 'the load into an unreachable shard ended');
$r = job_row($node, 'postgres', $j);
is($r->{state}, 'failed', 'failed');
is($r->{attempts}, 2, 'after being retried');
is($r->{rows_rejected}, 0, 'with no record blamed');
like($r->{last_error}, qr/\(attempt 2 of 2\)/, 'last_error says it was the last attempt');

done_testing();
