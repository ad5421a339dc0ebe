# A batch is cut by bytes as well as by rows: a file of 160 records of 1 MB each, loaded with
# the default ingest.batch_rows (10,000, which would have been one 160 MB batch), keeps the
# worker's private memory (RssAnon, sampled every 20 ms) within 160 MB of what it was before
# the job, and loads every byte.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IngestTest;

my $dir = PostgreSQL::Test::Utils::tempdir;
my $node = ingest_node('memory',
	conf => "ingest.max_workers = 1\ningest.worker_idle_timeout = '5min'\ningest.allowed_dirs = '$dir'\n");
$node->safe_psql('postgres', 'CREATE EXTENSION ingest; CREATE TABLE big (id int, blob text)');

my $records = 160;
my $blob = 'x' x (1024 * 1024);
open(my $fh, '>', "$dir/big.csv") or die "$dir/big.csv: $!";
print $fh "id,blob\n";
print $fh "$_,$blob\n" for 1 .. $records;
close $fh;

# a warm worker first (a small job), then its memory at rest
my $warm = $node->safe_psql('postgres', q{SELECT ingest.enqueue_data('big', convert_to(E'id,blob\n0,warm\n', 'UTF8'))});
ok(poll_until_finished($node, 'postgres', $warm), 'a small job warms the worker up');
my ($pid) = ingest_worker_pids($node, 'postgres');
ok(defined $pid, 'the worker stays');
my $before = rss_anon_kb($pid);

my $id = $node->safe_psql('postgres', "SELECT ingest.enqueue_file('big', '$dir/big.csv')");
my $peak = peak_rss_anon_until_finished($node, 'postgres', $id, $pid, $before);
is(job_row($node, 'postgres', $id)->{state}, 'succeeded', 'the 160 MB file loaded');
is($node->safe_psql('postgres', 'SELECT count(*), sum(length(blob)) FROM big WHERE id > 0'),
	"$records|" . ($records * length $blob), 'every record, every byte');
my $grew = int(($peak - $before) / 1024);
note "worker RssAnon: $before kB at rest, $peak kB at most ($grew MB more)";
cmp_ok($grew, '<', 160, "the worker's private memory grew by $grew MB, under 160 MB");
is((ingest_worker_pids($node, 'postgres'))[0], $pid, 'in the same worker');

done_testing();
