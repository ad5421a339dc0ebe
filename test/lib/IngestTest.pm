# IngestTest: small helpers shared by the TAP tests in test/t (PostgreSQL::Test::Cluster).
package IngestTest;

use strict;
use warnings;

use Exporter 'import';
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

our @EXPORT = qw(ingest_node enqueue_rows job_row poll_until_finished sql_list
  ingest_worker_pids postmaster_pid log_lines_since start_pgbouncer rss_anon_kb
  peak_rss_anon_until_finished);

# INGEST_PORTS=LO-HI (test/run-tests.sh passes on the caller's): every cluster and PgBouncer
# of the tests takes its port in that range, not anywhere in Cluster.pm's 10200-32767. Cluster.pm
# keeps its bounds private, so its get_free_port (which Cluster->new and start_pgbouncer call)
# is replaced: the first port of the range that this test has not handed out yet and that
# nothing listens on, over TCP or on a socket file in /tmp (make demo's server, say).
if (($ENV{INGEST_PORTS} // '') ne '')
{
	my ($lo, $hi) = $ENV{INGEST_PORTS} =~ /^(\d{1,5})-(\d{1,5})$/;
	die "INGEST_PORTS must be LO-HI with 1024 <= LO <= HI <= 65535 (got \"$ENV{INGEST_PORTS}\")\n"
	  unless defined $lo && $lo >= 1024 && $lo <= $hi && $hi <= 65535;
	($lo, $hi) = ($lo + 0, $hi + 0);    # "05450" .. "05459" would not count as numbers
	my %given;
	no warnings 'redefine';
	*PostgreSQL::Test::Cluster::get_free_port = sub {
		for my $port ($lo .. $hi)
		{
			next if $given{$port} || -e "/tmp/.s.PGSQL.$port";
			next unless PostgreSQL::Test::Cluster::can_bind('127.0.0.1', $port);
			$given{$port} = 1;
			return $port;
		}
		die "no free port left in INGEST_PORTS=$ENV{INGEST_PORTS}\n";
	};
}

# A started cluster. preload => 0 leaves shared_preload_libraries empty; conf => extra
# postgresql.conf lines; init => { ... } parameters of Cluster::init (allows_streaming => 1
# for a primary that a standby will follow).
sub ingest_node
{
	my ($name, %opts) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(%{ $opts{init} // {} });
	my $conf = "max_worker_processes = 16\n";
	$conf .= "shared_preload_libraries = 'ingest'\n"
	  if !defined $opts{preload} || $opts{preload};
	$conf .= $opts{conf} if defined $opts{conf};
	$node->append_conf('postgresql.conf', $conf);
	$node->start;
	return $node;
}

# Enqueue a generated CSV of $rows rows "job,n" (job = $tag, n = 1..$rows) into $table of
# database $db; returns the job id. $options is a jsonb literal text.
sub enqueue_rows
{
	my ($node, $db, $table, $tag, $rows, $options) = @_;
	$options //= '{}';
	return $node->safe_psql($db, qq{
		SELECT ingest.enqueue_data('$table',
		       convert_to('job,n' || E'\\n' || string_agg('$tag,' || i, E'\\n' ORDER BY i), 'UTF8'),
		       '$options')
		  FROM generate_series(1, $rows) i});
}

# The job's columns as a hash: state, attempts, rows_inserted, rows_rejected, last_error.
sub job_row
{
	my ($node, $db, $id) = @_;
	my $r = $node->safe_psql($db, qq{
		SELECT state, attempts, rows_inserted, rows_rejected, coalesce(last_error, '')
		  FROM ingest.upload_jobs WHERE id = $id});
	my @f = split /\|/, $r, 5;
	return { state => $f[0], attempts => $f[1], rows_inserted => $f[2],
		rows_rejected => $f[3], last_error => $f[4] };
}

# Poll (without calling ingest.wait) until all the jobs have finished; true if they did.
sub poll_until_finished
{
	my ($node, $db, @ids) = @_;
	my $list = sql_list(@ids);
	return $node->poll_query_until($db, qq{
		SELECT count(*) = ${\ scalar @ids} FROM ingest.upload_jobs
		 WHERE id IN ($list) AND state IN ('succeeded', 'failed', 'cancelled')});
}

sub sql_list { return join(', ', @_); }

# Pids of the ingest workers connected (to database $db, or to any), in ascending order.
sub ingest_worker_pids
{
	my ($node, $db) = @_;
	my $where = defined $db ? " AND datname = '$db'" : '';
	my $out = $node->safe_psql('postgres', qq{
		SELECT pid FROM pg_stat_activity WHERE backend_type = 'ingest worker'$where ORDER BY pid});
	return grep { /^\d+$/ } split /\n/, $out;
}

# The postmaster's pid, from postmaster.pid: unchanged unless the server was restarted.
sub postmaster_pid
{
	my ($node) = @_;
	my ($pid) = split /\n/, slurp_file($node->data_dir . '/postmaster.pid');
	return $pid;
}

# The server log's lines from byte offset $offset (0: the whole log) that match $re.
sub log_lines_since
{
	my ($node, $offset, $re) = @_;
	my $log = slurp_file($node->logfile, $offset // 0);
	return grep { /$re/ } split /\n/, $log;
}

# PgBouncer in transaction pooling mode in front of $node, for the databases @{$opts{dbs}}
# (default postgres) and the users @{$opts{users}} (trust). Returns (harness, port, dir) once
# it accepts connections; the caller kills the harness. pool => default_pool_size (10).
sub start_pgbouncer
{
	my ($node, %opts) = @_;
	my ($pgbouncer) = grep { -x $_ } map { "$_/pgbouncer" } split(/:/, $ENV{PATH} // ''), '/usr/sbin';
	die "pgbouncer is not installed (test/lib/setup.sh installs it)\n" unless defined $pgbouncer;
	my @dbs = @{ $opts{dbs} // ['postgres'] };
	my $dir = PostgreSQL::Test::Utils::tempdir;
	my $bport = PostgreSQL::Test::Cluster::get_free_port();
	my ($host, $port) = ($node->host, $node->port);
	my $dblines = join '', map { "$_ = host=$host port=$port dbname=$_\n" } @dbs;
	my $pool = $opts{pool} // 10;
	PostgreSQL::Test::Utils::append_to_file("$dir/userlist.txt",
		join('', map { qq{"$_" ""\n} } @{ $opts{users} }));
	PostgreSQL::Test::Utils::append_to_file("$dir/pgbouncer.ini", <<"INI");
[databases]
$dblines
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bport
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
default_pool_size = $pool
max_client_conn = 200
logfile = $dir/pgbouncer.log
INI
	my $h = IPC::Run::start([ $pgbouncer, "$dir/pgbouncer.ini" ],
		'>', "$dir/pgbouncer.stdout", '2>', "$dir/pgbouncer.stderr");
	my $conn = "host=127.0.0.1 port=$bport dbname=$dbs[0] user=$opts{users}[0]";
	for (1 .. 100)
	{
		my ($out, $err) = ('', '');
		IPC::Run::run([ 'psql', '-X', '-At', '-d', $conn, '-c', 'SELECT 1' ], '>', \$out, '2>', \$err);
		return ($h, $bport, $dir) if $out eq "1\n";
		usleep(100_000);
	}
	die "PgBouncer does not accept connections:\n" . slurp_file("$dir/pgbouncer.log");
}


# A process's private memory (RssAnon, kB), or undef once it is gone.
sub rss_anon_kb
{
	my ($pid) = @_;
	open(my $st, '<', "/proc/$pid/status") or return undef;
	while (<$st>) { return $1 if /^RssAnon:\s+(\d+) kB/; }
	return undef;
}

# The most private memory (kB) worker $pid had, sampled every 20 ms, while job $id ran (from
# $from kB, its size before the job); returns when the job has finished or the worker left.
sub peak_rss_anon_until_finished
{
	my ($node, $db, $id, $pid, $from) = @_;
	my $peak = $from;
	for (1 .. 30_000)
	{
		my $kb = rss_anon_kb($pid);
		last unless defined $kb;
		$peak = $kb if $kb > $peak;
		last if $node->safe_psql($db,
			"SELECT state IN ('succeeded', 'failed') FROM ingest.upload_jobs WHERE id = $id") eq 't';
		Time::HiRes::usleep(20_000);
	}
	return $peak;
}

1;
