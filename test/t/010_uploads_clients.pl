# Client-side files, driven with the real psql binary: (1) \lo_import then
# ingest.enqueue_lo(..., :LASTOID, '{"unlink": true}'), as the README shows; (2) an upload
# in chunks whose client dies mid-way (its last chunk in a transaction never committed)
# and is resumed from a new connection that reads ingest.upload_chunks to learn what
# arrived; (3) ingest.max_file_size checked by the worker on a large object that grew
# after it was enqueued. Every load must end with exactly the file's rows.
use strict;
use warnings;

use Digest::MD5 qw(md5_hex);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IngestTest;

my $node = ingest_node('uploads', conf => "ingest.max_file_size = '1MB'\n");
$node->safe_psql('postgres', q{
	CREATE EXTENSION ingest;
	CREATE ROLE app LOGIN;
	CREATE TABLE t_lo (id int PRIMARY KEY, name text NOT NULL, note text);
	CREATE TABLE t_chunks (LIKE t_lo INCLUDING ALL);
	CREATE TABLE t_grown (LIKE t_lo INCLUDING ALL);
	GRANT SELECT, INSERT ON t_lo, t_chunks, t_grown TO app;
});
my @as_app = (extra_params => [ '-U', 'app' ]);

# The file, on the client's side: 2,000 records with a two-byte character in each and a
# quoted field that spans two lines.
my $body = '';
$body .= qq{$_,name \xc3\xa9 $_,"line one\nline $_"\n} for 1 .. 2000;
my $file_bytes = "id,name,note\n" . $body;
my $dir = PostgreSQL::Test::Utils::tempdir;
my $file = "$dir/client file.csv";
open(my $fh, '>:raw', $file) or die "cannot write $file: $!";
print $fh $file_bytes;
close($fh);
my $size = length($file_bytes);

# the table's rows, written back as the file's records: equal only if every byte arrived
sub table_md5
{
	my ($table) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT md5(convert_to(string_agg(format('%s,%s,"%s"', id, name, note), E'\\n' ORDER BY id)
		                      || E'\\n', 'UTF8'))
		  FROM $table});
}

# ---- 1. psql's \lo_import, then enqueue_lo with :LASTOID, exactly as in the README
my ($rc, $out, $err) = $node->psql('postgres', qq{\\lo_import '$file'
SELECT ingest.enqueue_lo('t_lo', :LASTOID, '{"unlink": true}');
\\echo :LASTOID
}, @as_app);
is($rc, 0, 'psql ran \lo_import and ingest.enqueue_lo') or diag($err);
my ($job, $loid) = split /\n/, $out;
like($job, qr/^\d+$/, 'enqueue_lo returned a job id');
is($node->safe_psql('postgres', "SELECT ingest.wait($job)", @as_app), 'succeeded',
	'the large object was loaded');
my $j = job_row($node, 'postgres', $job);
is($j->{rows_inserted}, 2000, 'all 2,000 records inserted');
is(table_md5('t_lo'), md5_hex($body), 'the table holds exactly the file\'s records');
is($node->safe_psql('postgres', "SELECT source, bytes_total FROM ingest.upload_jobs WHERE id = $job"),
	"large object $loid|$size", 'the job names the large object and its size');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_largeobject_metadata WHERE oid = $loid"),
	0, '"unlink": true removed the large object after the load');

# ---- 2. an upload in chunks, interrupted and resumed from a new connection
# The client cuts the file into pieces of 7,000 bytes (records, a quoted field and a
# two-byte character cut in two at some boundaries) and psql sends each one as a hex
# string that it reads itself from the client-side piece.
my @chunks = unpack('(a7000)*', $file_bytes);
cmp_ok(scalar @chunks, '>', 6, scalar(@chunks) . ' chunks of 7,000 bytes');
for my $seq (0 .. $#chunks)
{
	open(my $cf, '>:raw', "$dir/chunk.$seq") or die "cannot write chunk $seq: $!";
	print $cf $chunks[$seq];
	close($cf);
}
sub chunk_sql
{
	my ($id, $seq) = @_;
	return "\\set c `od -An -v -tx1 '$dir/chunk.$seq' | tr -d ' \\n'`\n"
	  . "SELECT ingest.upload_chunk($id, $seq, decode(:'c', 'hex'))";
}
my $sent = 0;
$sent += length($chunks[$_]) for 0 .. 2;

my $s1 = $node->background_psql('postgres', @as_app);
my $id = $s1->query_safe(q{SELECT ingest.begin_upload('t_chunks')});
like($id, qr/^\d+$/, 'begin_upload returned a job id');
my $total;
$total = $s1->query_safe(chunk_sql($id, $_)) for 0 .. 2;
is($total, $sent, 'after chunks 0 to 2 the server reports their bytes');
my $pid = $s1->query_safe('SELECT pg_backend_pid()');
# chunk 3 goes out in a transaction that the broken connection never commits
$s1->query_safe('BEGIN');
$s1->query_safe(chunk_sql($id, 3));
$s1->{run}->kill_kill;
ok( $node->poll_query_until('postgres',
		"SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $pid)"),
	'the first connection is gone');
is($node->safe_psql('postgres', "SELECT state, bytes_total FROM ingest.upload_jobs WHERE id = $id"),
	"uploading|$sent", 'the upload waits, with the bytes of the committed chunks');

# a new connection asks what arrived and sends the rest, chunk 2 once more
my $have = $node->safe_psql('postgres',
	"SELECT string_agg(seq || ':' || bytes, ',' ORDER BY seq) FROM ingest.upload_chunks WHERE job_id = $id",
	@as_app);
is($have, join(',', map { "$_:" . length($chunks[$_]) } 0 .. 2),
	'ingest.upload_chunks shows chunks 0 to 2 with their sizes, not the lost chunk 3');
is($node->safe_psql('postgres', chunk_sql($id, 2), @as_app), $sent,
	'chunk 2 sent again changes nothing');
for my $seq (3 .. $#chunks)
{
	$total = $node->safe_psql('postgres', chunk_sql($id, $seq), @as_app);
}
is($total, $size, 'after the last chunk the server has the whole file');
is($node->safe_psql('postgres', "SELECT ingest.finish_upload($id, $size)", @as_app),
	$id, 'finish_upload with the file\'s size queues the job and returns its id');
is($node->safe_psql('postgres', "SELECT ingest.wait($id)", @as_app), 'succeeded',
	'the resumed upload was loaded');
$j = job_row($node, 'postgres', $id);
is($j->{rows_inserted}, 2000, 'all 2,000 records inserted');
is(table_md5('t_chunks'), md5_hex($body), 'the table holds exactly the file\'s records');
is($node->safe_psql('postgres', "SELECT count(*) FROM ingest_private.job_chunks WHERE job_id = $id"),
	0, 'the chunks were deleted after the success');

# ---- 3. two connections send chunks of one upload at once: the lock on the job row makes
# them take turns, so a chunk that both send is stored once and the total stays exact
my $sa = $node->background_psql('postgres', @as_app);
my $sb = $node->background_psql('postgres', @as_app);
my $rid = $sa->query_safe(q{SELECT ingest.begin_upload('t_chunks')});
my $pid_b = $sb->query_safe('SELECT pg_backend_pid()');
$sa->query_safe('BEGIN');
is($sa->query_safe(chunk_sql($rid, 0)), length($chunks[0]), 'A sends chunk 0 in an open transaction');
# B sends chunk 0 as well, without waiting for the reply here
$sb->{stdin} .= chunk_sql($rid, 0) . ";\n";
$sb->{run}->pump_nb;
ok( $node->poll_query_until('postgres',
		"SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $pid_b"),
	'B, sending chunk 0 too, waits for A');
$sa->query_safe('COMMIT');
is($sb->query_safe(chunk_sql($rid, 1)),
	length($chunks[0]) . "\n" . (length($chunks[0]) + length($chunks[1])),
	'after A commits, B\'s chunk 0 is a no-op and its chunk 1 is counted once');
is($node->safe_psql('postgres',
		"SELECT bytes_total, (SELECT count(*) FROM ingest.upload_chunks WHERE job_id = $rid) "
		  . "FROM ingest.upload_jobs WHERE id = $rid", @as_app),
	(length($chunks[0]) + length($chunks[1])) . '|2', 'the upload holds two chunks and their bytes');
$sa->quit;
$sb->quit;
$node->safe_psql('postgres', "SELECT ingest.cancel($rid)", @as_app);

# ---- 4. ingest.max_file_size (1 MB here) in the worker: a large object that grew past it
# after enqueue_lo had checked its size
($rc, $out, $err) = $node->psql('postgres', q{
	BEGIN;
	SELECT lo_from_bytea(0, convert_to(E'id,name,note\n1,a,b\n', 'UTF8')) AS lo \gset
	SELECT ingest.enqueue_lo('t_grown', :lo) AS job \gset
	SELECT lo_put(:lo, 1536 * 1024, '\x0a');
	COMMIT;
	\echo :job :lo
}, @as_app);
is($rc, 0, 'a small large object enqueued, then grown to 1.5 MB in the same transaction')
  or diag($err);
my ($gjob, $glo) = split / /, $out;
is($node->safe_psql('postgres', "SELECT ingest.wait($gjob)"), 'failed', 'the job fails');
$j = job_row($node, 'postgres', $gjob);
is($j->{last_error},
	"large object $glo is too large: 1572865 bytes, more than ingest.max_file_size (1048576 bytes)",
	'last_error names the large object, its size and the limit');
is($node->safe_psql('postgres', 'SELECT count(*) FROM t_grown'), 0, 'nothing was loaded');
($rc, $out, $err) = $node->psql('postgres', "SELECT ingest.enqueue_lo('t_grown', $glo)", @as_app);
like($err, qr/large object $glo is too large: 1572865 bytes, more than ingest.max_file_size/,
	'enqueue_lo refuses it now that it is too large');

# ---- 5. a worker removes uploads idle for longer than ingest.upload_ttl (when it starts,
# and once a minute while idle), chunks included, and logs it. Workers here leave after
# one idle second, so the job below starts a fresh worker once the upload is stale.
$node->safe_psql('postgres', q{
	ALTER SYSTEM SET ingest.upload_ttl = '1s';
	ALTER SYSTEM SET ingest.worker_idle_timeout = '1s';
	SELECT pg_reload_conf()});
my $idle = $node->safe_psql('postgres', q{SELECT ingest.begin_upload('t_chunks')}, @as_app);
$node->safe_psql('postgres', chunk_sql($idle, 0), @as_app);
ok( $node->poll_query_until('postgres', qq{
		SELECT clock_timestamp() - upload_activity_at > interval '1.5 s'
		       AND NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_type = 'ingest worker')
		  FROM ingest.upload_jobs WHERE id = $idle}),
	'the upload has been idle for longer than ingest.upload_ttl, and no worker is left');
my $log_offset = -s $node->logfile;
my $kick = $node->safe_psql('postgres',
	q{SELECT ingest.enqueue_data('t_grown', convert_to(E'id,name,note\n7,kick,x\n', 'UTF8'))}, @as_app);
is($node->safe_psql('postgres', "SELECT ingest.wait($kick)"), 'succeeded', 'a new worker ran a job');
is($node->safe_psql('postgres', "SELECT count(*) FROM ingest.upload_jobs WHERE id = $idle"),
	0, 'the idle upload was removed');
is($node->safe_psql('postgres', "SELECT count(*) FROM ingest_private.job_chunks WHERE job_id = $idle"),
	0, 'with its chunk');
ok( $node->wait_for_log(qr/LOG:  ingest: removed 1 upload\(s\) that received no chunk for longer than ingest.upload_ttl \(1 s\)/,
		$log_offset),
	'and said so in the server log (no client called begin_upload since)');
$node->safe_psql('postgres', q{
	ALTER SYSTEM RESET ingest.upload_ttl;
	ALTER SYSTEM RESET ingest.worker_idle_timeout;
	SELECT pg_reload_conf()});

$node->stop;
done_testing();
