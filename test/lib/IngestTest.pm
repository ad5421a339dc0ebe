# IngestTest: small helpers shared by the TAP tests in test/t (PostgreSQL::Test::Cluster).
package IngestTest;

use strict;
use warnings;

use Exporter 'import';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

our @EXPORT = qw(ingest_node enqueue_rows job_row poll_until_finished sql_list
  ingest_worker_pids postmaster_pid log_lines_since);

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

1;
