# More jobs than ingest.max_workers, in two databases: all of them succeed, and the number
# of ingest workers (ingest.workers, and pg_stat_activity) never exceeds the limit. Three
# rounds: workers come and go between databases, and no database may be forgotten.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use IngestTest;

my $node = ingest_node('maxw', conf => "ingest.max_workers = 2\n");
my @dbs = ('db1', 'db2');
for my $db (@dbs)
{
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, 'CREATE EXTENSION ingest; CREATE TABLE t (job int, n int, pad text)');
}

my $sample_sql = q{SELECT
	(SELECT count(*) FROM ingest.workers),
	-- workers running a job ('active'): a worker that has given its slot back to a
	-- successor (for another database, say) is idle while it exits, and may be seen
	-- beside the successor for an instant
	(SELECT count(*) FROM pg_stat_activity
	  WHERE backend_type ILIKE '%ingest%' AND backend_type NOT ILIKE '%launcher%'
	    AND state = 'active'),
	(SELECT count(*) FROM ingest.upload_jobs WHERE state = 'running'),
	(SELECT count(*) FROM ingest.upload_jobs
	  WHERE state IN ('succeeded', 'failed', 'cancelled'))};

my ($max_view, $max_pgsa, $samples) = (0, 0, 0);
my %max_running = map { $_ => 0 } @dbs;

for my $round (1 .. 3)
{
	# One session per database: it enqueues, and then looks again and again while the
	# jobs run.
	my %sess = map { $_ => $node->background_psql($_, timeout => 60) } @dbs;
	$_->set_query_timer_restart for values %sess;

	# 6 jobs per database, 50,000 rows each, enqueued in one open transaction per
	# database; both transactions then commit, so that all 12 jobs are waiting at once.
	my %ids;
	my %before;
	for my $db (@dbs)
	{
		$before{$db} = $sess{$db}->query_safe(
			q{SELECT count(*) FROM ingest.upload_jobs WHERE state IN ('succeeded', 'failed', 'cancelled')});
		my $out = $sess{$db}->query_safe(qq{
			BEGIN;
			SELECT ingest.enqueue_data('t',
			       convert_to('job,n,pad' || E'\\n' ||
			                  string_agg(($round * 10 + j) || ',' || i || ',' || md5(i::text), E'\\n' ORDER BY i),
			                  'UTF8'))
			  FROM generate_series(1, 6) j, generate_series(1, 50000) i
			 GROUP BY j ORDER BY j});
		$ids{$db} = [ grep { /^\d+$/ } split /\n/, $out ];
		is(scalar @{ $ids{$db} }, 6, "round $round: 6 jobs enqueued in $db");
	}
	$sess{$_}->query_safe('COMMIT') for @dbs;

	my $deadline = time + 120;
	my $done = 0;
	{
		# BackgroundPsql notes every query and result: hundreds of samples would bury
		# the output
		no warnings 'redefine';
		local *PostgreSQL::Test::BackgroundPsql::note = sub { };
		while (!$done && time < $deadline)
		{
			my $finished = 0;
			for my $db (@dbs)
			{
				my ($v, $p, $r, $f) = split /\|/, $sess{$db}->query_safe($sample_sql);
				$samples++;
				$max_view = $v if $v > $max_view;
				$max_pgsa = $p if $p > $max_pgsa;
				$max_running{$db} = $r if $r > $max_running{$db};
				$finished += $f - $before{$db};
			}
			$done = 1 if $finished == 12;
			usleep(2_000);
		}
	}
	ok($done, "round $round: all 12 jobs finished");
	if (!$done)
	{
		# say what was going on
		for my $db (@dbs)
		{
			diag "$db jobs (id:state:attempts): " . $sess{$db}->query_safe(q{
				SELECT string_agg(id || ':' || state || ':' || attempts, ' ' ORDER BY id)
				  FROM ingest.upload_jobs});
		}
		diag 'ingest.workers (pid:db:job): ' . $sess{db1}->query_safe(q{
			SELECT string_agg(pid || ':' || datname || ':' || coalesce(job_id::text, '-'), ' ')
			  FROM ingest.workers});
		diag 'ingest processes (pid:type:db:wait event): ' . $sess{db1}->query_safe(q{
			SELECT string_agg(pid || ':' || backend_type || ':' || coalesce(datname, '-') || ':'
			                  || coalesce(wait_event, '-'), ' ')
			  FROM pg_stat_activity WHERE backend_type ILIKE '%ingest%'});
	}
	$sess{$_}->quit for @dbs;

	for my $db (@dbs)
	{
		is( $node->safe_psql($db, qq{
				SELECT string_agg(DISTINCT state, ',') FROM ingest.upload_jobs
				 WHERE id IN (${\ sql_list(@{ $ids{$db} })})}),
			'succeeded', "round $round: all jobs of $db succeeded");
		is( $node->safe_psql($db, qq{
				SELECT count(*) || ' ' || count(DISTINCT job) FROM t
				 WHERE job BETWEEN ${\ ($round * 10 + 1)} AND ${\ ($round * 10 + 6)}}),
			'300000 6', "round $round: $db holds the rows of its own 6 jobs, once each");
	}
}

note "samples: $samples; most seen at once: ingest.workers $max_view, "
  . "pg_stat_activity $max_pgsa, running jobs in db1 $max_running{db1}, in db2 $max_running{db2}";
cmp_ok($samples, '>=', 50, 'the sampler looked often enough');
cmp_ok($max_view, '<=', 2, 'ingest.workers never showed more than ingest.max_workers workers');
cmp_ok($max_pgsa, '<=', 2, 'pg_stat_activity never showed more than ingest.max_workers workers running a job');
cmp_ok($max_running{$_}, '<=', 2, "never more than ingest.max_workers jobs running in $_")
  for @dbs;
cmp_ok($max_running{db1} + $max_running{db2}, '>=', 2, 'jobs were seen running');
is($max_view, 2, 'the limit was used: two workers at once');

# Idle workers go away after a while: none stays forever
ok( $node->poll_query_until('postgres', q{
		SELECT count(*) = 0 FROM pg_stat_activity
		 WHERE backend_type ILIKE '%ingest%' AND backend_type NOT ILIKE '%launcher%'}),
	'idle workers exit');

ok(!$node->log_contains(qr/terminated by signal|PANIC|was terminated/), 'no process crashed');
$node->stop;
done_testing();
