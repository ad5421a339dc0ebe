# Soak: thousands of small jobs and a few large ones through the same two workers (they
# stay: ingest.worker_idle_timeout is long). After a warm-up phase and again at the end,
# after more of the same kind of work, each worker's (and the launcher's) resident memory,
# open file descriptors and memory contexts are measured: they must stay flat, and the
# number of backends must not grow. Every job succeeds with exactly its rows.
#
# VmRSS also counts the shared buffers a process has touched (RssShmem): the pages that
# the second phase adds to the tables come on top, about 12 MB for the worker that runs the
# large job. RssAnon (private memory, what a leak grows) is checked on its own too.
#
# A process keeps a descriptor open for each relation file it has touched (fd.c's cache),
# including the files of other relations whose dirty buffers it had to evict; and a VACUUM
# creates free space and visibility map files that inserts then open. So shared_buffers
# holds all the data (no process evicts anything), autovacuum is off, and the warm-up runs
# a VACUUM of the tables half-way: the files to open are the same in both phases.
#
# Warm-up: 2 large jobs (200,000 rows, run side by side, one per worker) and 1,000 small
# ones (5 rows), with a VACUUM after the first 500. Then: 1 large job and 2,000 small ones. The small jobs are enqueued 100
# per statement, in turn from three sessions, while the workers run.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IngestTest;

my $node = ingest_node('soak', conf => q{
ingest.max_workers = 2
ingest.max_running_per_role = 2
ingest.worker_idle_timeout = '10min'
shared_buffers = 128MB
autovacuum = off
log_statement = none
});
$node->safe_psql('postgres', 'CREATE EXTENSION ingest; CREATE TABLE t (job int, n int)');

my @sessions = map { $node->background_psql('postgres', timeout => 120) } 1 .. 3;
my $next_small = 1;
my $turn = 0;

# Enqueue $count small jobs (tags $next_small ..), 100 per statement, sessions in turn.
sub enqueue_small
{
	my ($count) = @_;
	no warnings 'redefine';
	local *PostgreSQL::Test::BackgroundPsql::note = sub { };
	while ($count > 0)
	{
		my $n = $count < 100 ? $count : 100;
		my ($from, $to) = ($next_small, $next_small + $n - 1);
		my $got = $sessions[ $turn++ % 3 ]->query_safe(qq{
			SELECT count(ingest.enqueue_data('t', convert_to('job,n' || E'\\n' ||
			         (SELECT string_agg(g || ',' || i, E'\\n') FROM generate_series(1, 5) i), 'UTF8')))
			  FROM generate_series($from, $to) g});
		die "enqueued $got jobs, not $n" unless $got == $n;
		$next_small += $n;
		$count -= $n;
	}
}

# Two large jobs in one transaction: two workers take them side by side.
sub enqueue_large
{
	my (@tags) = @_;
	my $list = sql_list(@tags);
	return split /\n/, $node->safe_psql('postgres', qq{
		SELECT ingest.enqueue_data('t',
		       convert_to('job,n' || E'\\n' || string_agg(j || ',' || i, E'\\n' ORDER BY i), 'UTF8'))
		  FROM unnest(ARRAY[$list]) j, generate_series(1, 200000) i GROUP BY j ORDER BY j});
}

sub all_finished
{
	return $node->poll_query_until('postgres', q{
		SELECT count(*) = 0 FROM ingest.upload_jobs WHERE state IN ('queued', 'running')});
}

# Per process: VmRSS, RssAnon (private memory: what a leak grows), RssShmem (shared
# buffers it has touched), open fds, and its memory contexts' grand total and the bytes
# used in them (in all and per context name) as logged by pg_log_backend_memory_contexts.
sub measure
{
	my ($label, @pids) = @_;
	my %m;
	for my $pid (@pids)
	{
		my $status = slurp_file("/proc/$pid/status");
		for my $k ('VmRSS', 'RssAnon', 'RssShmem')
		{
			($m{$pid}{$k}) = $status =~ /^$k:\s+(\d+) kB/m;
		}
		opendir(my $dh, "/proc/$pid/fd") or die "cannot read /proc/$pid/fd: $!";
		my @fds = grep { !/^\./ } readdir $dh;
		closedir $dh;
		$m{$pid}{fds} = scalar @fds;
		$m{$pid}{files} = { map { (readlink("/proc/$pid/fd/$_") // '?') => 1 } @fds };

		my $offset = -s $node->logfile;
		$node->safe_psql('postgres', "SELECT pg_log_backend_memory_contexts($pid)");
		$node->wait_for_log(qr/\[$pid\] .*Grand total: \d+ bytes/, $offset);
		my $log = slurp_file($node->logfile, $offset);
		my ($total, $used) = ($log =~ /\[$pid\] .*Grand total: (\d+) bytes in .* (\d+) used/);
		$m{$pid}{contexts} = $total;
		$m{$pid}{used} = $used;
		# per context name, to say which one grew when the total did
		while ($log =~ /\[$pid\] .*level: \d+; (.+?): \d+ total in .* (\d+) used/g)
		{
			$m{$pid}{by_context}{$1} += $2;
		}
		note sprintf("%s: pid %d: VmRSS %d kB, RssAnon %d kB, RssShmem %d kB, %d fds, contexts %d bytes (%d used)",
			$label, $pid, @{ $m{$pid} }{qw(VmRSS RssAnon RssShmem fds contexts used)});
	}
	$m{backends} = $node->safe_psql('postgres', 'SELECT count(*) FROM pg_stat_activity');
	note "$label: $m{backends} rows in pg_stat_activity";
	return \%m;
}

my $launcher = $node->safe_psql('postgres',
	q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'ingest launcher'});

# ---------------------------------------------------------------- warm-up
my @large = enqueue_large(100001, 100002);
enqueue_small(500);
ok(all_finished(), 'warm-up: the first jobs finished');
$node->safe_psql('postgres',
	'VACUUM t, ingest_private.upload_jobs, ingest_private.job_data, ingest_private.job_errors, ingest_private.job_chunks');
enqueue_small(500);
ok(all_finished(), 'warm-up: all jobs finished');
my @workers = ingest_worker_pids($node, 'postgres');
is(scalar @workers, 2, 'two workers');
is( $node->safe_psql('postgres',
		'SELECT count(DISTINCT worker_pid) FROM ingest.upload_jobs WHERE id IN (' . sql_list(@large) . ')'),
	2, 'each of them ran a large job in the warm-up');
my $before = measure('after warm-up', @workers, $launcher);

# ---------------------------------------------------------------- more of the same
push @large, enqueue_large(100003);
enqueue_small(2000);
ok(all_finished(), 'all jobs finished');
my @still = ingest_worker_pids($node, 'postgres');
is("@still", "@workers", 'the same two workers did all the work');
my $after = measure('at the end', @workers, $launcher);

for my $pid (@workers, $launcher)
{
	my $what = $pid == $launcher ? "launcher" : "worker $pid";
	my ($b, $a) = ($before->{$pid}, $after->{$pid});
	cmp_ok($a->{RssAnon} - $b->{RssAnon}, '<', 20 * 1024, "$what: private memory grew less than 20 MB");
	cmp_ok($a->{VmRSS} - $b->{VmRSS}, '<', 20 * 1024, "$what: VmRSS grew less than 20 MB");
	cmp_ok($a->{fds} - $b->{fds}, '<=', 2, "$what: open fds grew by 2 at most ($b->{fds} -> $a->{fds})")
	  or diag "newly open: " . join(' ', grep { !$b->{files}{$_} } sort keys %{ $a->{files} });
	# What the contexts hold, not what they have allocated: a context grows by
	# doubling blocks, so one more small allocation can add a block of 512 kB.
	cmp_ok($a->{used} - $b->{used}, '<', 64 * 1024,
		"$what: memory used in contexts grew less than 64 kB ($b->{used} -> $a->{used} bytes)")
	  or diag join("\n", map { "  $_: " . ($b->{by_context}{$_} // 0) . " -> " . ($a->{by_context}{$_} // 0) }
		  grep { ($a->{by_context}{$_} // 0) != ($b->{by_context}{$_} // 0) }
		  sort keys %{ { %{ $a->{by_context} }, %{ $b->{by_context} } } });
}
cmp_ok($after->{backends}, '<=', $before->{backends}, 'the number of backends did not grow');

# every job succeeded with exactly its rows
$_->quit for @sessions;
is( $node->safe_psql('postgres', q{
		SELECT count(*) FILTER (WHERE state = 'succeeded' AND rows_inserted = 5) || ' '
		       || count(*) FILTER (WHERE state = 'succeeded' AND rows_inserted = 200000) || ' '
		       || count(*)
		  FROM ingest.upload_jobs}),
	'3000 3 3003', '3,000 small and 3 large jobs, all succeeded with their row counts');
is( $node->safe_psql('postgres', q{
		SELECT count(*) || ' ' || count(DISTINCT (job, n)) || ' ' || count(DISTINCT job)
		  FROM t WHERE job <= 3000}),
	'15000 15000 3000', 'the small jobs loaded their 5 rows each, once');
is( $node->safe_psql('postgres', q{
		SELECT string_agg(job || ':' || c || ':' || d, ' ' ORDER BY job)
		  FROM (SELECT job, count(*) c, count(DISTINCT n) d FROM t WHERE job > 3000 GROUP BY job) s}),
	'100001:200000:200000 100002:200000:200000 100003:200000:200000',
	'the large jobs loaded their 200,000 rows each, once');
ok(!$node->log_contains(qr/terminated by signal|was terminated|PANIC|exited with exit code 1/),
	'no process crashed or failed');
$node->stop;
done_testing();
