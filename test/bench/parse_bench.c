/*
 * parse_bench.c
 *		Parse-only throughput of src/parser.c, outside the server.
 *
 * Reads a CSV file into memory, then parses it the way the loader does:
 * fed in read-sized chunks (256 kB, INGEST_READ_CHUNK), at most a batch of
 * records per csvp_feed call (10,000, ingest.batch_rows' default), every
 * field of every record read with csvp_field and csvp_field_quoted, then
 * csvp_clear. Prints rows, CPU seconds and rows/s of the parse (the file's
 * reading is not timed). With -c it also prints a checksum of everything
 * the parser returned (records, line numbers, errors, field texts, NULL and
 * quoted flags, the terminating NUL), which must not change when the parser
 * is made faster; the checksum is slow, so time runs without it.
 *
 *	cc -O2 -I src -o /tmp/parse_bench test/bench/parse_bench.c src/parser.c src/tokenize.c
 *	/tmp/parse_bench [-c] FILE [REPEAT [CHUNK_BYTES [BATCH_RECORDS]]]
 *
 * For instructions per row: valgrind --tool=callgrind /tmp/parse_bench FILE
 * (instructions of csvp_* and below, divided by the rows printed).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "parser.h"

static uint64_t
mix(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;

	/* FNV-1a, 64 bits */
	for (size_t i = 0; i < n; i++)
	{
		h ^= s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static bool checksum = false;

/* Read every field of the parser's complete records, as convert_record does. */
static uint64_t
consume(CsvpParser *p, uint64_t h, long *rows)
{
	int			n = csvp_nrecords(p);

	for (int i = 0; i < n; i++)
	{
		const CsvpRecord *r = csvp_record(p, i);
		int64_t		meta[4] = {r->line, r->error_line, r->nfields, r->error};

		if (checksum)
			h = mix(h, meta, sizeof(meta));
		for (int k = 0; k < r->nfields; k++)
		{
			size_t		len;
			bool		isnull;
			const char *f = csvp_field(p, r, k, &len, &isnull);
			unsigned char flags[3] = {isnull, csvp_field_quoted(p, r, k), (unsigned char) f[len]};

			if (!checksum)
			{
				/* touch the field as an input function would, cheaply */
				h += len + flags[0] + flags[1] + flags[2] + (unsigned char) f[0];
				continue;
			}
			h = mix(h, f, len);
			h = mix(h, flags, sizeof(flags));
			h = mix(h, &len, sizeof(len));
		}
		(*rows)++;
	}
	csvp_clear(p);
	return h;
}

int
main(int argc, char **argv)
{
	FILE	   *fp;
	char	   *data;
	long		size;
	int			repeat;
	size_t		chunk;
	int			batch;
	/* as options_csv sets them with ingest.max_record_size's default */
	CsvpOptions opts = {.delimiter = ',', .quote = '"', .max_record_size = 256 * 1024 * 1024,
	.max_field_size = 256 * 1024 * 1024, .max_fields = 1601};

	if (argc > 1 && strcmp(argv[1], "-c") == 0)
	{
		checksum = true;
		argv++;
		argc--;
	}

	repeat = argc > 2 ? atoi(argv[2]) : 1;
	chunk = argc > 3 ? (size_t) atol(argv[3]) : 256 * 1024;
	batch = argc > 4 ? atoi(argv[4]) : 10000;

	if (argc < 2 || repeat < 1 || chunk < 1 || batch < 1)
	{
		fprintf(stderr, "usage: %s [-c] FILE [REPEAT [CHUNK_BYTES [BATCH_RECORDS]]]\n", argv[0]);
		return 2;
	}
	if ((fp = fopen(argv[1], "rb")) == NULL || fseek(fp, 0, SEEK_END) != 0 ||
		(size = ftell(fp)) < 0 || fseek(fp, 0, SEEK_SET) != 0)
	{
		perror(argv[1]);
		return 2;
	}
	data = malloc((size_t) size + 1);
	if (data == NULL || fread(data, 1, (size_t) size, fp) != (size_t) size)
	{
		perror(argv[1]);
		return 2;
	}
	fclose(fp);

	for (int rep = 0; rep < repeat; rep++)
	{
		CsvpParser *p = csvp_create(&opts);
		uint64_t	h = 0xcbf29ce484222325ULL;
		long		rows = 0;
		clock_t		t0 = clock();
		double		cpu;

		if (p == NULL)
			return 3;
		for (size_t off = 0; off < (size_t) size;)
		{
			size_t		len = (size_t) size - off < chunk ? (size_t) size - off : chunk;
			size_t		done = 0;

			while (done < len)
			{
				size_t		n = csvp_feed(p, data + off + done, len - done, batch);

				if (n == (size_t) -1)
					return 3;
				done += n;
				if (csvp_nrecords(p) >= batch)
					h = consume(p, h, &rows);
			}
			off += len;
		}
		if (!csvp_finish(p))
			return 3;
		h = consume(p, h, &rows);
		cpu = (double) (clock() - t0) / CLOCKS_PER_SEC;
		printf("records %ld  lines %lld  bytes %ld  cpu %.3f s  %.0f records/s  %.1f MB/s  checksum %016llx\n",
			   rows, (long long) csvp_line(p), size, cpu, rows / cpu, size / cpu / 1e6,
			   (unsigned long long) h);
		csvp_destroy(p);
	}
	free(data);
	return 0;
}
