# Drop folders scheduled with the real pg_cron (Debian's postgresql-15-cron / -17-cron),
# preloaded beside ingest. A non-superuser ETL role owns the schedules: one per tenant calls
# ingest.enqueue_dir (the tenant set in the command, or by ALTER ROLE ... SET), a third calls
# ingest.purge. Files dropped into the folders (written under a temporary name then renamed,
# or written in place slowly) are loaded exactly once each, as the ETL role, with the table's
# RLS policy on the tenant applying. Two sessions calling enqueue_dir on one directory at once
# never enqueue a file twice. pg_cron 1.5 and later run the schedules every 5 seconds; 1.4
# (Debian 12) runs them each minute, and the test then takes about four minutes.
use strict;
use warnings;

use File::Path qw(make_path);
use IO::Compress::Gzip qw(gzip $GzipError);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

use lib 'test/lib';
use IngestTest;

my $base = PostgreSQL::Test::Utils::tempdir;
my $drop = "$base/drop";
make_path("$drop/acme", "$drop/globex", "$drop/conc");

my $node = PostgreSQL::Test::Cluster->new('cron');
$node->init;
# pg_cron runs each job in a new session, connecting through libpq to cron.host: here the
# test's socket directory.
$node->append_conf('postgresql.conf', qq{
max_worker_processes = 16
shared_preload_libraries = 'pg_cron,ingest'
cron.database_name = 'postgres'
cron.host = '${\ $node->host}'
ingest.allowed_dirs = '$drop'
ingest.tenant_key = 'app.tenant'
});
$node->start;

# The ETL role: LOGIN (pg_cron logs in as the job's owner), pg_read_server_files (for
# enqueue_dir), USAGE on schema cron (to schedule), INSERT and SELECT on the table. Its
# default tenant is globex; a settle time of 20 s makes "written slowly" safe on a busy host.
$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_cron;
	CREATE EXTENSION ingest;
	CREATE ROLE etl LOGIN IN ROLE pg_read_server_files;
	GRANT USAGE ON SCHEMA cron TO etl;
	ALTER ROLE etl SET app.tenant = 'globex';
	ALTER ROLE etl SET ingest.dir_settle_time = '20s';
	CREATE TABLE readings (tenant text NOT NULL, id int NOT NULL, value numeric,
	                       loaded_by text DEFAULT current_user);
	ALTER TABLE readings ENABLE ROW LEVEL SECURITY;
	CREATE POLICY tenant_rows ON readings
	    USING (tenant = current_setting('app.tenant'))
	    WITH CHECK (tenant = current_setting('app.tenant'));
	GRANT SELECT, INSERT ON readings TO etl;
});
my $cron_version = $node->safe_psql('postgres', "SELECT extversion FROM pg_extension WHERE extname = 'pg_cron'");
my ($cmaj, $cmin) = $cron_version =~ /^(\d+)\.(\d+)/;
my $every = ($cmaj > 1 || $cmin >= 5) ? '5 seconds' : '* * * * *';
note "pg_cron $cron_version: schedules run '$every'";

# A file as the folders get them: complete, with a modification time a minute ago (a
# rename keeps it; age => seconds for another), or gzip-compressed.
sub put_file
{
	my ($path, $text, %o) = @_;
	if ($o{gzip})
	{
		gzip(\$text => $path) or die "gzip failed: $GzipError";
	}
	else
	{
		append_to_file($path, $text);
	}
	my $t = time - ($o{age} // 60);
	utime($t, $t, $path) or die "utime $path: $!";
}

sub etl_psql
{
	my ($sql) = @_;
	return $node->safe_psql('postgres', $sql, extra_params => [ '-U', 'etl' ]);
}

# ---------------------------------------------------------------- two sessions at once
# Session 1 enqueues a directory's files and holds its transaction open; session 2, calling
# enqueue_dir on the same directory, waits for it. Committed: session 2 finds every file
# enqueued and enqueues none. Rolled back: session 2 enqueues them. Never twice.
my $conc = "$drop/conc";
put_file("$conc/c1.csv", "tenant,id,value\nacme,101,1\n");
put_file("$conc/c2.csv", "tenant,id,value\nacme,102,2\n");
my $call = qq{SELECT count(*) FROM ingest.enqueue_dir('readings', '$conc')};
for my $end ('COMMIT', 'ROLLBACK')
{
	my $s1 = $node->background_psql('postgres', extra_params => [ '-U', 'etl' ]);
	my $s2 = $node->background_psql('postgres', extra_params => [ '-U', 'etl' ]);
	$s1->query_safe("SET app.tenant = 'acme'");
	$s2->query_safe("SET app.tenant = 'acme'");
	is($s1->query_safe("BEGIN; $call"), '2', "$end: session 1 enqueues the two new files");
	$s2->query_until(qr/sent/, "\\echo sent\n$call;\n");
	ok( $node->poll_query_until('postgres', q{
			SELECT count(*) = 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted}),
		"$end: session 2 waits for session 1's directory lock");
	$s1->query_safe($end);
	my $got = $s2->query_safe("SELECT 'done'");
	is($got, ($end eq 'COMMIT' ? "0" : "2") . "\ndone",
		"$end: session 2 then enqueues " . ($end eq 'COMMIT' ? 'none' : 'both'));
	$s1->quit;
	$s2->quit;
	if ($end eq 'COMMIT')
	{
		# the same files, put back with a new identity once loaded, for the ROLLBACK round
		ok( $node->poll_query_until('postgres', q{
				SELECT count(*) = 0 FROM ingest.upload_jobs WHERE state IN ('queued', 'running')}),
			'the jobs of the first round finished');
		unlink("$conc/c1.csv", "$conc/c2.csv");
		put_file("$conc/c1.csv", "tenant,id,value\nacme,103,3\n", age => 120);
		put_file("$conc/c2.csv", "tenant,id,value\nacme,104,4\n", age => 120);
	}
}
ok( $node->poll_query_until('postgres', q{
		SELECT count(*) = 0 FROM ingest.upload_jobs WHERE state IN ('queued', 'running')}),
	'the two sessions\' jobs finished');
is( $node->safe_psql('postgres', q{
		SELECT string_agg(id || ':' || n, ' ' ORDER BY id)
		  FROM (SELECT id, count(*) AS n FROM readings WHERE id > 100 GROUP BY id) r}),
	'101:1 102:1 103:1 104:1', 'each file of the two sessions was loaded once');
is( $node->safe_psql('postgres', qq{
		SELECT count(*) || ' ' || count(DISTINCT job_id) FROM ingest.dir_files WHERE dir = '$conc'}),
	'2 2', 'the directory has two remembered files (the first two were forgotten when replaced)');

# Acting for another tenant (its default, globex), the ETL role sees none of acme's jobs
# and so none of their file names; the remembered files are for ingest_admin only.
is( $node->safe_psql('postgres', q{SELECT count(*) FROM ingest.upload_jobs WHERE tenant = 'acme'}),
	'4', 'acme has four jobs of the ETL role');
is(etl_psql('SELECT count(*) FROM ingest.upload_jobs'), '0',
	'the ETL role acting for globex sees none of them');
my ($rc, $out, $err) = $node->psql('postgres', 'SELECT count(*) FROM ingest.dir_files',
	extra_params => [ '-U', 'etl' ]);
like($err, qr/permission denied for view dir_files/, 'the ETL role cannot read ingest.dir_files');

# ---------------------------------------------------------------- the folders
my $acme   = "$drop/acme";
my $globex = "$drop/globex";
# acme: written under a hidden temporary name, renamed before the first run
put_file("$acme/.a1.csv.part", "tenant,id,value\nacme,1,1.5\nacme,2,2.5\nacme,3,3.5\n");
rename("$acme/.a1.csv.part", "$acme/a1.csv") or die "rename: $!";
# acme: written under a temporary name that the pattern does not match; renamed later
put_file("$acme/c.csv.tmp", "tenant,id,value\nacme,30,30\nacme,31,31\n");
# acme: a partial file never renamed
put_file("$acme/never.csv.tmp", "tenant,id,value\nacme,99,99\n");
# globex: compressed files; one holds a row of another tenant, which the policy rejects
put_file("$globex/g1.csv.gz", "tenant,id,value\nglobex,1,10\nglobex,2,20\n", gzip => 1);
put_file("$globex/g2.csv.gz", "tenant,id,value\nglobex,3,30\nacme,666,0\n", gzip => 1);
# globex: not matched by '*.csv.gz'
put_file("$globex/g3.csv", "tenant,id,value\nglobex,77,0\n");
# acme: written in place, slowly: a line every 0.3 s until a run has passed it over
my $slow = "$acme/slow.csv";
my $slow_rows = 0;
append_to_file($slow, "tenant,id,value\n");
sub slow_line { $slow_rows++; append_to_file($slow, "acme,${\ (1000 + $slow_rows)},$slow_rows\n"); }
slow_line();
my $t0 = $node->safe_psql('postgres', 'SELECT now()');

# The schedules, owned by the ETL role: acme's tenant set in the command, globex's by the
# role's default; purge of acme's finished jobs (0 seconds: at once, to see it act).
my %job;
$job{acme} = etl_psql(qq{SELECT cron.schedule('drop-acme', '$every',
	\$\$SET app.tenant = 'acme'; SELECT count(*) FROM ingest.enqueue_dir('readings', '$acme', '*.csv', '{"max_errors": 10}')\$\$)});
$job{globex} = etl_psql(qq{SELECT cron.schedule('drop-globex', '$every',
	\$\$SELECT count(*) FROM ingest.enqueue_dir('readings', '$globex', '*.csv.gz', '{"max_errors": 10}')\$\$)});
$job{purge} = etl_psql(qq{SELECT cron.schedule('purge-acme', '$every',
	\$\$SET app.tenant = 'acme'; SELECT ingest.purge('0 seconds')\$\$)});
is( $node->safe_psql('postgres', 'SELECT string_agg(DISTINCT username, \',\') FROM cron.job'),
	'etl', 'the schedules are the ETL role\'s');

# A run of job $j that started after $after and has ended: its status, or '' after a timeout.
sub run_after
{
	my ($j, $after) = @_;
	my $q = qq{SELECT status FROM cron.job_run_details WHERE jobid = $j AND start_time > '$after'
	           AND status IN ('succeeded', 'failed') ORDER BY start_time LIMIT 1};
	for (1 .. 1500)
	{
		my $s = $node->safe_psql('postgres', $q);
		return $s if $s ne '';
		usleep(200_000);
	}
	return '';
}

# Keep writing slow.csv until an acme run that started after the writing began has ended.
my $status = '';
for (1 .. 1000)
{
	slow_line();
	$status = $node->safe_psql('postgres', qq{
		SELECT status FROM cron.job_run_details WHERE jobid = $job{acme} AND start_time > '$t0'
		   AND status IN ('succeeded', 'failed') LIMIT 1});
	last if $status ne '';
	usleep(300_000);
}
is($status, 'succeeded', 'an acme run ran while slow.csv was being written');
is( $node->safe_psql('postgres', qq{
		SELECT string_agg(name, ',' ORDER BY name) FROM ingest.dir_files WHERE dir = '$acme'}),
	'a1.csv', 'it enqueued the renamed file, not the file being written nor the .tmp ones');
slow_line() for 1 .. 3;
note "slow.csv: $slow_rows rows";
rename("$acme/c.csv.tmp", "$acme/c.csv") or die "rename: $!";

ok( $node->poll_query_until('postgres', qq{
		SELECT (SELECT string_agg(name, ',' ORDER BY name) FROM ingest.dir_files WHERE dir = '$acme')
		       = 'a1.csv,c.csv,slow.csv'
		   AND (SELECT string_agg(name, ',' ORDER BY name) FROM ingest.dir_files WHERE dir = '$globex')
		       = 'g1.csv.gz,g2.csv.gz'
		   AND NOT EXISTS (SELECT 1 FROM ingest.upload_jobs WHERE state IN ('queued', 'running'))}),
	'later runs enqueued slow.csv once it settled, and the renamed c.csv; every job ended');

# What landed, as the ETL role and with each row's tenant: every row of each file once, the
# whole of slow.csv, and no row of another tenant.
is( $node->safe_psql('postgres', q{
		SELECT tenant || ' ' || count(*) || ' ' || count(DISTINCT id) || ' ' || string_agg(DISTINCT loaded_by, ',')
		  FROM readings WHERE id < 100 OR id > 1000 GROUP BY tenant ORDER BY tenant}),
	"acme ${\ (5 + $slow_rows)} ${\ (5 + $slow_rows)} etl\nglobex 3 3 etl",
	'acme: a1.csv, c.csv and all of slow.csv; globex: its good rows; each once, loaded as etl');
is( $node->safe_psql('postgres', "SELECT max(id) - 1000 FROM readings WHERE id > 1000"),
	$slow_rows, 'slow.csv was loaded whole, not as it was while being written');
is($node->safe_psql('postgres', "SELECT count(*) FROM readings WHERE id IN (77, 99, 666)"),
	'0', 'nothing of never.csv.tmp, g3.csv, or the row of another tenant');
is( $node->safe_psql('postgres', q{
		SELECT string_agg(owner || ' ' || state || ' ' || rows_inserted || ' ' || rows_rejected, ', ' ORDER BY id)
		  FROM ingest.upload_jobs WHERE tenant = 'globex'}),
	'etl succeeded 2 0, etl succeeded 1 1', 'globex\'s jobs: the ETL role\'s, with the policy\'s rejection');
is( $node->safe_psql('postgres', q{
		SELECT string_agg(e.sqlstate || ' ' || e.raw_line, ',') FROM ingest.job_errors e
		  JOIN ingest.upload_jobs j ON j.id = e.job_id WHERE j.tenant = 'globex'}),
	'42501 acme,666,0', 'the row of another tenant was rejected by the policy');
is( $node->safe_psql('postgres', qq{
		SELECT string_agg(DISTINCT owner::text || ' ' || tenant, ',') FROM ingest.dir_files WHERE dir = '$acme'}),
	'etl acme', 'acme\'s files were enqueued by the ETL role for tenant acme');

# The purge schedule removes acme's finished jobs (not globex's); later runs still do not
# enqueue their files again.
ok( $node->poll_query_until('postgres', q{
		SELECT count(*) = 0 FROM ingest.upload_jobs WHERE tenant = 'acme'}),
	'the purge schedule removed acme\'s finished jobs');
my $t1 = $node->safe_psql('postgres', 'SELECT now()');
is(run_after($job{acme}, $t1),   'succeeded', 'an acme run after the purge');
is(run_after($job{globex}, $t1), 'succeeded', 'a globex run after the purge');
ok( $node->poll_query_until('postgres', q{
		SELECT NOT EXISTS (SELECT 1 FROM ingest.upload_jobs WHERE state IN ('queued', 'running'))}),
	'nothing left running');
is( $node->safe_psql('postgres', q{
		SELECT count(*) || ' ' || count(DISTINCT (tenant, id)) FROM readings WHERE id < 100 OR id > 1000}),
	(8 + $slow_rows) . ' ' . (8 + $slow_rows), 'no file was loaded again after its job was purged');
is($node->safe_psql('postgres', q{SELECT count(*) FROM ingest.upload_jobs WHERE tenant = 'globex'}),
	'2', 'globex\'s jobs were not purged by acme\'s schedule');
is( $node->safe_psql('postgres', qq{
		SELECT jobid || ':' || string_agg(DISTINCT status || '/' || username, ',')
		  FROM cron.job_run_details WHERE jobid IN ($job{acme}, $job{globex}, $job{purge})
		 GROUP BY jobid ORDER BY jobid}),
	"$job{acme}:succeeded/etl\n$job{globex}:succeeded/etl\n$job{purge}:succeeded/etl",
	'every run of the three schedules succeeded, as etl');

etl_psql(qq{SELECT cron.unschedule(jobid) FROM cron.job});

# ---------------------------------------------------------------- preload order
# Both orders of shared_preload_libraries start both launchers.
for my $libs ('pg_cron,ingest', 'ingest,pg_cron')
{
	$node->append_conf('postgresql.conf', "shared_preload_libraries = '$libs'\n");
	$node->restart;
	ok( $node->poll_query_until('postgres', q{
			SELECT string_agg(k, ',' ORDER BY k) = 'ingest,pg_cron'
			  FROM (SELECT DISTINCT CASE WHEN backend_type LIKE 'pg_cron%' THEN 'pg_cron' ELSE 'ingest' END AS k
			          FROM pg_stat_activity
			         WHERE backend_type LIKE 'pg_cron%' OR backend_type = 'ingest launcher') b}),
		"shared_preload_libraries = '$libs': pg_cron's and ingest's launchers run");
}

$node->stop;
done_testing();
