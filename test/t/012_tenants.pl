# Many tenants: the scheduler lets roles take turns, ingest.queue_position tells the
# order jobs really start in, the per-role quotas (ingest.max_queued_per_role,
# ingest.max_running_per_role, overridable with ALTER ROLE ... SET) hold, and the views
# ingest.stats and ingest.role_stats count what happened, for ingest_admin only.
#
# Jobs are made to wait where a test needs the queue to stay full: a statement trigger
# on the target takes a shared advisory lock that the test holds exclusively, so running
# jobs stay running until the test lets them go. No assertion depends on timing.
use strict;
use warnings;

use FindBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use IngestTest;

my $node = ingest_node('tenants', conf => "ingest.max_workers = 2\n"
	  . "ingest.max_running_per_role = 2\n"
	  . "ingest.worker_idle_timeout = '1s'\n");
$node->safe_psql('postgres', q{
	CREATE EXTENSION ingest;
	CREATE ROLE ta; CREATE ROLE tb; CREATE ROLE tc; CREATE ROLE tq; CREATE ROLE tx; CREATE ROLE ty;
	CREATE ROLE nobody; CREATE ROLE watcher IN ROLE ingest_admin;
	CREATE TABLE t (who text NOT NULL DEFAULT current_user, job int NOT NULL, n int NOT NULL);
	GRANT INSERT ON t TO ta, tb, tc, tq, tx, ty;
	-- how long each batch sleeps; the gate lock (4242) holds batches while the test keeps it
	CREATE TABLE ctl (sleep float8 NOT NULL);
	INSERT INTO ctl VALUES (0.05);
	GRANT SELECT ON ctl TO PUBLIC;
	CREATE FUNCTION gate() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		PERFORM pg_catalog.pg_advisory_xact_lock_shared(4242);
		PERFORM pg_catalog.pg_sleep((SELECT sleep FROM public.ctl));
		RETURN NULL;
	END $$;
	CREATE TRIGGER gate AFTER INSERT ON t FOR EACH STATEMENT EXECUTE FUNCTION gate();
});

# What the tests expect ingest.stats and ingest.role_stats to count at the end.
my (%succeeded, %failed, %rows);

# Enqueue $n jobs of $rows rows as $role (SET ROLE: the job's owner is current_user);
# returns their ids in the order they were enqueued.
sub enqueue_as
{
	my ($role, $n, $rows, $options) = @_;
	$options //= '{}';
	my $out = $node->safe_psql('postgres', qq{
		SET ROLE $role;
		SELECT ingest.enqueue_data('t',
		       convert_to('job,n' || E'\\n' ||
		                  (SELECT string_agg(j || ',' || i, E'\\n') FROM generate_series(1, $rows) i),
		                  'UTF8'),
		       '$options')
		  FROM generate_series(1, $n) j});
	return split /\n/, $out;
}

# Try to enqueue one job as $role; returns (exit code, stderr).
sub try_sql
{
	my ($role, $sql) = @_;
	$sql //= q{ingest.enqueue_data('t', convert_to(E'job,n\n1,1', 'UTF8'))};
	my ($ret, $out, $err) = $node->psql('postgres', "SET ROLE $role; SELECT $sql");
	return ($ret, $err);
}

sub reload_with
{
	my (%set) = @_;
	$node->safe_psql('postgres', join('', map { "ALTER SYSTEM SET $_ = $set{$_};\n" } sort keys %set));
	$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
}

# No ingest worker left (they leave after ingest.worker_idle_timeout, 1 s here).
sub no_workers
{
	return $node->poll_query_until('postgres', q{
		SELECT count(*) = 0 FROM pg_stat_activity
		 WHERE backend_type ILIKE '%ingest%' AND backend_type NOT ILIKE '%launcher%'});
}

sub states
{
	my (@ids) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT string_agg(DISTINCT state, ',') FROM ingest.upload_jobs WHERE id IN (${\ sql_list(@ids)})});
}

# The restricted YAML of contrib/prometheus/queries.yaml (no YAML module needed):
# { name => { query => text, master => 'true', metrics => [ { column, usage, description } ] } }
sub read_exporter_queries
{
	my ($file) = @_;
	my (%q, $name, $in_query);
	for my $line (split /\n/, slurp_file($file))
	{
		next if $line =~ /^\s*(#.*)?$/;
		if ($line =~ /^(\w+):\s*$/)
		{
			$name = $1;
			$q{$name} = { query => '', metrics => [] };
			$in_query = 0;
			next;
		}
		die "$file: a line outside a query: $line" unless defined $name;
		if ($in_query && $line =~ /^    (.*)$/)
		{
			$q{$name}{query} .= "$1\n";
			next;
		}
		$in_query = 0;
		if ($line =~ /^  query: \|\s*$/) { $in_query = 1; }
		elsif ($line =~ /^  master: (true|false)\s*$/) { $q{$name}{master} = $1; }
		elsif ($line =~ /^  metrics:\s*$/) { }
		elsif ($line =~ /^    - (\w+):\s*$/) { push @{ $q{$name}{metrics} }, { column => $1 }; }
		elsif ($line =~ /^        (usage|description): "([^"]*)"\s*$/ && @{ $q{$name}{metrics} })
		{
			$q{$name}{metrics}[-1]{$1} = $2;
		}
		else { die "$file: unexpected line: $line"; }
	}
	return \%q;
}

sub note_done
{
	my ($role, $n, $rows) = @_;
	$succeeded{$role} += $n;
	$rows{$role} += $n * $rows;
}

# A session that holds the gate lock while jobs pile up.
my $gate = $node->background_psql('postgres', timeout => 60);
sub close_gate { $gate->query_safe('SELECT pg_advisory_lock(4242)'); }
sub open_gate { $gate->query_safe('SELECT pg_advisory_unlock(4242)'); }

########################################################################################
# 1. Fairness: ta queues 40 jobs, tb one; tb's job is the next to start after the jobs
# already running (ingest.max_workers = 2, max_running_per_role = 2).
########################################################################################
close_gate();
my @ajobs = enqueue_as('ta', 40, 10);
is(scalar @ajobs, 40, 'ta enqueued 40 jobs');
ok( $node->poll_query_until('postgres', q{
		SELECT count(*) = 2 FROM ingest.upload_jobs WHERE owner = 'ta'::regrole AND state = 'running'}),
	"two of ta's jobs run (and wait at the gate)");
my ($bjob) = enqueue_as('tb', 1, 10);

is($node->safe_psql('postgres', "SET ROLE tb; SELECT ingest.queue_position($bjob)"),
	'0', "tb's job is next in the queue (queue_position as its owner)");
is( $node->safe_psql('postgres', qq{
		SELECT string_agg(ingest.queue_position(id)::text, ',' ORDER BY id)
		  FROM ingest.upload_jobs WHERE id IN ($ajobs[0], $ajobs[1], $ajobs[2], $ajobs[3], $ajobs[39])}),
	'0,0,1,2,38', "ta's running jobs are at 0, its queued ones after tb's");
my ($ret, $err) = try_sql('tb', "ingest.queue_position($ajobs[2])");
like($err, qr/ingest job $ajobs[2] does not exist/, "tb cannot ask for the position of ta's job");

# The counters while two jobs run and 39 wait.
is( $node->safe_psql('postgres', q{
		SELECT jobs_queued, jobs_uploading, jobs_running, workers_busy, workers_allowed,
		       oldest_queued_seconds > 0
		  FROM ingest.stats}),
	'39|0|2|2|2|t', 'ingest.stats: 39 queued, 2 running, 2 of 2 workers busy');
is( $node->safe_psql('postgres', q{
		SELECT string_agg(concat_ws(':', role, jobs_queued, jobs_running, max_queued, max_running), ' ' ORDER BY role)
		  FROM ingest.role_stats}),
	'ta:38:2:0:2 tb:1:0:0:2', 'ingest.role_stats: queued and running per role, with the quotas');

open_gate();
ok(poll_until_finished($node, 'postgres', @ajobs, $bjob), 'all 41 jobs finished');
is(states(@ajobs, $bjob), 'succeeded', 'all of them succeeded');
note_done('ta', 40, 10);
note_done('tb', 1, 10);
is( $node->safe_psql('postgres', qq{
		SELECT count(*) FROM ingest.upload_jobs
		 WHERE owner = 'ta'::regrole AND started_at < (SELECT started_at FROM ingest.upload_jobs WHERE id = $bjob)}),
	'2', "tb's job started after only the two of ta's jobs that were already running");
is($node->safe_psql('postgres', 'SELECT count(*) FROM t'), '410', 'all rows loaded');

########################################################################################
# 2. queue_position is the order jobs start in. Jobs are queued with no worker allowed
# (ingest.max_workers = 0), their positions read, then one worker runs them one by one.
########################################################################################
reload_with('ingest.max_workers' => 0);
ok(no_workers(), 'no worker left');

# tc has never run a job, tb's last job started before ta's last one: the turns go
# tc, tb, ta. Within a role: priority, then age.
my %job;
@job{qw(a1 a2 a3 a4)} = enqueue_as('ta', 4, 5);
@job{qw(b1 b2)} = enqueue_as('tb', 2, 5);
@job{qw(c1 c2)} = enqueue_as('tc', 2, 5);
($job{a5}) = enqueue_as('ta', 1, 5, '{"priority": 5}');
($job{b3}) = enqueue_as('tb', 1, 5, '{"priority": -1}');
($job{b4}) = enqueue_as('tb', 1, 5);
my %name_of = reverse %job;
my @ids = sort { $a <=> $b } values %job;
my $list = sql_list(@ids);

my %pos = map { split /\|/ } split /\n/, $node->safe_psql('postgres', qq{
	SELECT id, ingest.queue_position(id) FROM ingest.upload_jobs WHERE id IN ($list)});
my @by_position = map { $name_of{$_} } sort { $pos{$a} <=> $pos{$b} } @ids;
is("@by_position", 'c1 b1 a5 c2 b2 a1 b4 a2 b3 a3 a4',
	'positions: roles take turns (tc, tb, ta); a priority reorders only its own role');
is(join(',', sort { $a <=> $b } values %pos), join(',', 0 .. 10), 'positions are 0 .. 10, each once');
is($node->safe_psql('postgres', 'SELECT count(*) FROM ingest.upload_jobs WHERE started_at IS NULL'),
	'11', 'nothing started while ingest.max_workers = 0');

reload_with('ingest.max_workers' => 1);
ok(poll_until_finished($node, 'postgres', @ids), 'one worker ran the 11 jobs');
is(states(@ids), 'succeeded', 'all of them succeeded');
note_done('ta', 5, 5);
note_done('tb', 4, 5);
note_done('tc', 2, 5);
my @started = map { $name_of{$_} } split /\n/, $node->safe_psql('postgres', qq{
	SELECT id FROM ingest.upload_jobs WHERE id IN ($list) ORDER BY started_at});
is("@started", "@by_position", 'the jobs started exactly in the order of their positions');

########################################################################################
# 3. ingest.max_queued_per_role, set for one role with ALTER ROLE.
########################################################################################
reload_with('ingest.max_workers' => 0);
ok(no_workers(), 'no worker left');
$node->safe_psql('postgres', 'ALTER ROLE tq SET ingest.max_queued_per_role = 3');

my @q = map { enqueue_as('tq', 1, 3) } 1 .. 3;
is(scalar @q, 3, 'tq enqueued 3 jobs, one statement each');
($ret, $err) = try_sql('tq');
isnt($ret, 0, "tq's 4th enqueue fails");
like($err, qr/ERROR:  role "tq" already has 3 ingest jobs queued or uploading, the most ingest.max_queued_per_role allows/,
	'with a message naming the role, the count and the setting');
like($err, qr/HINT:  Wait for some of them to finish \(or cancel them\), or ask an administrator to raise the limit with ALTER ROLE \.\.\. SET ingest.max_queued_per_role\./,
	'and a hint');
my @other = enqueue_as('tb', 5, 3);
is(scalar @other, 5, 'tb, without a quota, enqueues 5 jobs meanwhile');
is( $node->safe_psql('postgres', q{
		SELECT concat_ws(':', jobs_queued, max_queued) FROM ingest.role_stats WHERE role = 'tq'}),
	'3:3', 'ingest.role_stats shows tq at its quota');

# A cancelled job frees a place; retrying it needs one.
is($node->safe_psql('postgres', "SET ROLE tq; SELECT ingest.cancel($q[0])"), 't', "tq cancels a queued job");

# Meanwhile a REPEATABLE READ transaction of tq took its snapshot with 2 jobs queued.
my $rr = $node->background_psql('postgres', on_error_stop => 0);
$rr->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
$rr->query_safe('SET ROLE tq');
is($rr->query_safe(q{SELECT count(*) FROM ingest.upload_jobs WHERE state = 'queued'}), '2',
	'a REPEATABLE READ transaction of tq sees 2 queued jobs');

my ($q4) = enqueue_as('tq', 1, 3);
ok(defined $q4 && $q4 =~ /^\d+$/, 'after the cancel, tq can enqueue again');
push @q, $q4;
($ret, $err) = try_sql('tq');
like($err, qr/already has 3 ingest jobs queued/, 'and is at its quota again');
($ret, $err) = try_sql('tq', "ingest.retry($q[0])");
like($err, qr/already has 3 ingest jobs queued/, 'ingest.retry of the cancelled job counts against the quota');

# The REPEATABLE READ transaction's snapshot is older than the third job: the quota must
# count the jobs committed since, not what its snapshot shows.
my $rr_out = $rr->query(q{SELECT ingest.enqueue_data('t', convert_to(E'job,n\n1,1', 'UTF8'))});
$rr->query('COMMIT');
$rr->quit;
is($node->safe_psql('postgres', q{
		SELECT count(*) FROM ingest.upload_jobs WHERE owner = 'tq'::regrole AND state = 'queued'}),
	'3', 'a REPEATABLE READ snapshot from before the last enqueue does not let tq past its quota');

# A job that starts no longer counts: it is running, not queued.
close_gate();
reload_with('ingest.max_workers' => 1);
ok( $node->poll_query_until('postgres', q{
		SELECT count(*) = 1 FROM ingest.upload_jobs WHERE owner = 'tq'::regrole AND state = 'running'}),
	"one of tq's jobs runs (tq has never run a job: its turn comes first)");
my ($q5) = enqueue_as('tq', 1, 3);
ok(defined $q5 && $q5 =~ /^\d+$/, 'with one job running and 2 queued, tq can enqueue one more');
push @q, $q5;
($ret, $err) = try_sql('tq');
like($err, qr/already has 3 ingest jobs queued/, 'but not two');
open_gate();
ok(poll_until_finished($node, 'postgres', @q[1 .. $#q], @other), "tq's and tb's jobs finished");
is(states(@q[1 .. $#q], @other), 'succeeded', 'all of them succeeded');
note_done('tq', 4, 3);
note_done('tb', 5, 3);

# Uploads in progress count too: begun (state 'uploading'), not yet finished.
my @u = map { $node->safe_psql('postgres', "SET ROLE tq; SELECT ingest.begin_upload('t')") } 1 .. 3;
is(scalar(grep { /^\d+$/ } @u), 3, 'tq begins 3 uploads');
is( $node->safe_psql('postgres', q{
		SELECT concat_ws(':', jobs_uploading, jobs_queued) FROM ingest.role_stats WHERE role = 'tq'}),
	'3:0', 'ingest.role_stats counts them as uploading');
is($node->safe_psql('postgres', 'SELECT jobs_uploading FROM ingest.stats'), '3', 'so does ingest.stats');
($ret, $err) = try_sql('tq');
like($err, qr/role "tq" already has 3 ingest jobs queued or uploading/,
	'with 3 uploads in progress, enqueue_data is refused');
($ret, $err) = try_sql('tq', "ingest.begin_upload('t')");
like($err, qr/role "tq" already has 3 ingest jobs queued or uploading/, 'and so is a 4th begin_upload');
# finishing one queues it: still 3 (queued or uploading) until it runs
$node->safe_psql('postgres', qq{
	SET ROLE tq;
	SELECT ingest.upload_chunk($u[0], 0, convert_to(E'job,n\n7,1\n7,2\n', 'UTF8'));
	SELECT ingest.finish_upload($u[0])});
is($node->safe_psql('postgres', "SET ROLE tq; SELECT ingest.cancel($u[1])"), 't', 'tq cancels an upload');
my ($q6) = enqueue_as('tq', 1, 3);
ok(defined $q6 && $q6 =~ /^\d+$/, 'which frees a place for an enqueue');
is($node->safe_psql('postgres', "SET ROLE tq; SELECT ingest.cancel($u[2])"), 't', 'tq cancels the last upload');
ok(poll_until_finished($node, 'postgres', $u[0], $q6), 'the finished upload and the new job ran');
is(states($u[0], $q6), 'succeeded', 'both succeeded');
note_done('tq', 1, 2);
note_done('tq', 1, 3);

########################################################################################
# 4. ingest.max_running_per_role: tx may run one job at a time, ty two (the default,
# half of ingest.max_workers = 4), then three.
########################################################################################
$node->safe_psql('postgres', 'ALTER ROLE tx SET ingest.max_running_per_role = 1');
close_gate();
reload_with('ingest.max_workers' => 4, 'ingest.max_running_per_role' => -1);
my @x = enqueue_as('tx', 5, 10);
my @y = enqueue_as('ty', 5, 10);

my $watch = $node->background_psql('postgres', timeout => 60);
my $sample_sql = q{
	SELECT count(*) FILTER (WHERE j.owner = 'tx'::regrole),
	       count(*) FILTER (WHERE j.owner = 'ty'::regrole),
	       (SELECT count(*) FROM ingest.upload_jobs WHERE owner = 'tx'::regrole AND state = 'running'),
	       (SELECT count(*) FROM ingest.upload_jobs WHERE owner = 'ty'::regrole AND state = 'running'),
	       (SELECT count(*) FROM ingest.workers)
	  FROM ingest.workers w JOIN ingest.upload_jobs j ON j.id = w.job_id};
my %most = (x => 0, y => 0, workers => 0);
my $samples = 0;

# Sample until $until returns true (given the sample) or $seconds pass.
sub sample
{
	my ($seconds, $until) = @_;
	my $deadline = time + $seconds;
	no warnings 'redefine';
	local *PostgreSQL::Test::BackgroundPsql::note = sub { };
	while (time < $deadline)
	{
		my ($wx, $wy, $rx, $ry, $w) = split /\|/, $watch->query_safe($sample_sql);
		$samples++;
		$most{x} = $wx if $wx > $most{x};
		$most{x} = $rx if $rx > $most{x};
		$most{y} = $wy if $wy > $most{y};
		$most{y} = $ry if $ry > $most{y};
		$most{workers} = $w if $w > $most{workers};
		return 1 if $until && $until->($rx, $ry, $w);
		usleep(10_000);
	}
	return 0;
}

ok(sample(60, sub { $_[0] == 1 && $_[1] == 2 && $_[2] == 4 }),
	'tx runs 1 job, ty 2, and a fourth worker has started');
# the idle worker looks for work every second: give it a few chances to break the limits
sample(3);
is($most{x}, 1, 'tx never ran more than 1 job while its others waited');
is($most{y}, 2, 'ty never ran more than its default 2');

$node->safe_psql('postgres', 'ALTER ROLE ty SET ingest.max_running_per_role = 3');
ok(sample(30, sub { $_[1] == 3 }), "after ALTER ROLE ty SET ingest.max_running_per_role = 3, ty runs 3 jobs");
open_gate();
ok(sample(120, sub { $_[0] + $_[1] == 0 && $node->safe_psql('postgres', q{
		SELECT count(*) = 0 FROM ingest.upload_jobs WHERE state IN ('queued', 'running')}) eq 't' }),
	'all jobs of tx and ty finished');
$watch->quit;
note "samples: $samples; most running at once: tx $most{x}, ty $most{y}; workers $most{workers}";
cmp_ok($samples, '>=', 50, 'the sampler looked often enough');
is($most{x}, 1, 'tx never ran more than 1 job at once');
is($most{y}, 3, 'ty ran up to 3 at once, on the workers tx could not use');
is(states(@x, @y), 'succeeded', 'all of them succeeded');
note_done('tx', 5, 10);
note_done('ty', 5, 10);

########################################################################################
# 5. The counters, and who may read them.
########################################################################################
# one failed job, for the failure counters
my ($bad) = $node->safe_psql('postgres', q{
	SET ROLE tc; SELECT ingest.enqueue_data('t', convert_to(E'job,n\n1,x', 'UTF8'))});
ok(poll_until_finished($node, 'postgres', $bad), 'the bad job finished');
is(states($bad), 'failed', 'and failed');
$failed{tc} = 1;

my ($total_ok, $total_rows) = (0, 0);
$total_ok += $_ for values %succeeded;
$total_rows += $_ for values %rows;
is($total_rows, $node->safe_psql('postgres', 'SELECT count(*) FROM t'), 'the table holds the rows counted here');
my $expect_stats = "0|0|0|$total_ok|1|$total_rows|0|0|4";
my $stats_sql = q{
	SELECT jobs_queued, jobs_uploading, jobs_running, jobs_succeeded_last_hour,
	       jobs_failed_last_hour, rows_loaded_last_hour, oldest_queued_seconds, workers_busy,
	       workers_allowed
	  FROM ingest.stats};
is($node->safe_psql('postgres', $stats_sql), $expect_stats, 'ingest.stats counts every job and row of this test');

my $expect_roles = join ' ', map {
	join ':', $_, $succeeded{$_} // 0, $failed{$_} // 0, $rows{$_} // 0,
	  ($_ eq 'tq' ? 3 : 0), ($_ eq 'tx' ? 1 : $_ eq 'ty' ? 3 : 2)
} sort keys %succeeded;
my $roles_sql = q{
	SELECT string_agg(concat_ws(':', role, jobs_succeeded_last_hour, jobs_failed_last_hour,
	                            rows_loaded_last_hour, max_queued, max_running), ' ' ORDER BY role)
	  FROM ingest.role_stats
	 WHERE jobs_queued = 0 AND jobs_uploading = 0 AND jobs_running = 0 AND oldest_queued_seconds = 0};
is($node->safe_psql('postgres', $roles_sql), $expect_roles,
	'ingest.role_stats counts each role\'s jobs and rows, with its quotas');

($ret, $err) = try_sql('nobody', '* FROM ingest.stats');
like($err, qr/permission denied for view stats/, 'a role outside ingest_admin cannot read ingest.stats');
($ret, $err) = try_sql('nobody', '* FROM ingest.role_stats');
like($err, qr/permission denied for view role_stats/, 'nor ingest.role_stats');
is($node->safe_psql('postgres', "SET ROLE watcher; $stats_sql"), $expect_stats,
	'a member of ingest_admin reads ingest.stats');
is($node->safe_psql('postgres', "SET ROLE watcher; $roles_sql"), $expect_roles,
	'and ingest.role_stats');

# contrib/prometheus/queries.yaml (postgres_exporter's custom queries) reads these views:
# its queries run for an ingest_admin member and return exactly the columns it maps.
my $exporter = read_exporter_queries("$FindBin::RealBin/../../contrib/prometheus/queries.yaml");
is(join(' ', sort keys %$exporter), 'ingest ingest_role', 'queries.yaml: two queries');
for my $name (sort keys %$exporter)
{
	my $q = $exporter->{$name};
	my @bad = grep { ($_->{usage} // '') !~ /^(GAUGE|COUNTER|LABEL)$/ || !$_->{description} } @{ $q->{metrics} };
	is(scalar @bad, 0, "queries.yaml: every metric of $name has a usage and a description");
	is( $node->safe_psql('postgres', qq{
			SET ROLE watcher;
			SELECT (SELECT string_agg(k, ' ') FROM json_object_keys(row_to_json(q)) k)
			  FROM ($q->{query}) q LIMIT 1}),
		join(' ', map { $_->{column} } @{ $q->{metrics} }),
		"queries.yaml: the query of $name runs and returns the columns it maps, in order");
}
is( $node->safe_psql('postgres', "SET ROLE watcher; $exporter->{ingest}{query}"),
	$expect_stats, 'queries.yaml: the ingest query reads the values of ingest.stats');

$gate->quit;
ok(!$node->log_contains(qr/terminated by signal|PANIC|was terminated/), 'no process crashed');
$node->stop;
done_testing();
