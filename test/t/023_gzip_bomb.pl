# A decompression bomb: a gzip file of a few MB that would inflate to 1 GB of CSV, with
# ingest.max_file_size at 64 MB. The worker stops at the limit (it never inflates more than
# one byte past it), the job fails saying why, nothing is loaded, and the worker's private
# memory (RssAnon, sampled every 20 ms)
# stays within 160 MB of what it was before the job: decompression streams through fixed
# buffers, and batches are bounded as for any file (022). The same for zstd. At enqueue, the
# header check decodes the bomb's head only: it names the bad header, and the backend's peak
# memory (VmHWM of /proc/self/status, read in the same session) grows by little.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IngestTest;

my $dir = PostgreSQL::Test::Utils::tempdir;
my $node = ingest_node('bomb',
	conf => "ingest.max_workers = 1\ningest.worker_idle_timeout = '5min'\n"
	  . "ingest.allowed_dirs = '$dir'\ningest.max_file_size = '64MB'\n");
$node->safe_psql('postgres', 'CREATE EXTENSION ingest; CREATE TABLE big (id int, blob text)');

# 1 GB of CSV (1,000,000 records of about 1 kB), compressed
my $line = ',' . ('x' x 1000) . "\n";
my $gz = "$dir/bomb.csv.gz";
open(my $out, '|-', "gzip -1 > '$gz'") or die "gzip: $!";
print $out "$_$line" for 1 .. 1_000_000;
close($out) or die "gzip failed: $?";
my $gz_size = -s $gz;
note "bomb: $gz_size bytes of gzip for 1 GB of CSV";
cmp_ok($gz_size, '<', 64 * 1024 * 1024, 'the compressed file is under the limit itself');

my $warm = $node->safe_psql('postgres',
	q{SELECT ingest.enqueue_data('big', convert_to(E'0,warm\n', 'UTF8'), '{"header": false}')});
ok(poll_until_finished($node, 'postgres', $warm), 'a small job warms the worker up');
my ($pid) = ingest_worker_pids($node, 'postgres');
ok(defined $pid, 'the worker stays');
my $before = rss_anon_kb($pid);

my $id = $node->safe_psql('postgres', "SELECT ingest.enqueue_file('big', '$gz', '{\"header\": false}')");
my $peak = peak_rss_anon_until_finished($node, 'postgres', $id, $pid, $before);
my $job = job_row($node, 'postgres', $id);
is($job->{state}, 'failed', 'the bomb fails');
like($job->{last_error}, qr/decompresses to more than ingest\.max_file_size \(67108864 bytes\)/,
	'and says it passed ingest.max_file_size');
is($node->safe_psql('postgres', 'SELECT count(*) FROM big WHERE id > 0'), '0', 'nothing of it is loaded');
my $grew = int(($peak - $before) / 1024);
note "worker RssAnon: $before kB at rest, $peak kB at most ($grew MB more)";
cmp_ok($grew, '<', 160, "the worker's private memory grew by $grew MB, under 160 MB");
is((ingest_worker_pids($node, 'postgres'))[0], $pid, 'in the same worker, which stays up');

# zstd: 1 GB of the same CSV in a few kB
my $zst = "$dir/bomb.csv.zst";
open($out, '|-', "zstd -q -1 -c > '$zst'") or die "zstd: $!";
print $out "$_$line" for 1 .. 1_000_000;
close($out) or die "zstd failed: $?";
note "bomb: " . (-s $zst) . " bytes of zstd for 1 GB of CSV";
$before = rss_anon_kb($pid);
$id = $node->safe_psql('postgres', "SELECT ingest.enqueue_file('big', '$zst', '{\"header\": false}')");
$peak = peak_rss_anon_until_finished($node, 'postgres', $id, $pid, $before);
$job = job_row($node, 'postgres', $id);
is($job->{state}, 'failed', 'the zstd bomb fails');
like($job->{last_error}, qr/bomb\.csv\.zst" decompresses to more than ingest\.max_file_size \(67108864 bytes\)/,
	'and says it passed ingest.max_file_size');
$grew = int(($peak - $before) / 1024);
note "worker RssAnon: $before kB at rest, $peak kB at most ($grew MB more)";
cmp_ok($grew, '<', 160, "the worker's private memory grew by $grew MB for zstd, under 160 MB");

# the early header check at enqueue reads the head of each bomb: the first line ("1,xxx...")
# is no header of big, and says so; the backend's peak memory barely moves
for my $bomb ($gz, $zst)
{
	my $res = $node->safe_psql('postgres', qq{
		SELECT (regexp_match(pg_read_file('/proc/self/status'), 'VmHWM:\\s+(\\d+)'))[1];
		DO \$\$ BEGIN PERFORM ingest.enqueue_file('big', '$bomb');
		   EXCEPTION WHEN others THEN RAISE NOTICE 'said: %', SQLERRM; END \$\$;
		SELECT (regexp_match(pg_read_file('/proc/self/status'), 'VmHWM:\\s+(\\d+)'))[1];
		SELECT count(*) FROM ingest.upload_jobs WHERE source = '$bomb' AND state = 'queued';});
	my ($hwm0, $hwm1, $queued) = split /\n/, $res;
	my ($name) = $bomb =~ m{([^/]+)$};
	my $stderr;
	$node->psql('postgres', "SELECT ingest.enqueue_file('big', '$bomb')", stderr => \$stderr);
	like($stderr, qr/column "1" named in the header does not exist in table public\.big/,
		"$name: the header is checked at enqueue, through the decompression");
	is($queued, '0', "$name: nothing is queued");
	my $hwm_grew = int(($hwm1 - $hwm0) / 1024);
	note "backend VmHWM: $hwm0 kB before, $hwm1 kB after the check";
	cmp_ok($hwm_grew, '<', 24, "$name: the backend's peak memory grew by $hwm_grew MB, under 24 MB");
}

done_testing();
