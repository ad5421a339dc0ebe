/*
 * split_bench.c
 *		The cost of finding a file's cut points (src/split.c), outside the server:
 *		the scan a load by several workers makes before its parts start.
 *
 * Reads a CSV file into memory, then scans it as a worker would read it
 * (256 kB at a time) for PARTS - 1 cut points, equal shares of the file.
 * Prints the points (offset, first line, records before) and the CPU seconds
 * and MB/s of the scan (the file's reading is not timed).
 *
 *	cc -O2 -I src -o /tmp/split_bench test/bench/split_bench.c src/split.c src/parser.c src/tokenize.c
 *	/tmp/split_bench FILE [PARTS [REPEAT]]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "split.h"

#define CHUNK	(256 * 1024)

int
main(int argc, char **argv)
{
	FILE	   *f;
	char	   *buf;
	long		len;
	int			parts = argc > 2 ? atoi(argv[2]) : 4;
	int			repeat = argc > 3 ? atoi(argv[3]) : 3;
	CsvpOptions opts;

	if (argc < 2 || parts < 2 || repeat < 1)
	{
		fprintf(stderr, "usage: %s FILE [PARTS [REPEAT]]\n", argv[0]);
		return 2;
	}
	f = fopen(argv[1], "rb");
	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0)
	{
		perror(argv[1]);
		return 1;
	}
	rewind(f);
	buf = malloc((size_t) len + 1);
	if (buf == NULL || fread(buf, 1, (size_t) len, f) != (size_t) len)
	{
		perror(argv[1]);
		return 1;
	}
	fclose(f);

	memset(&opts, 0, sizeof(opts));
	opts.delimiter = ',';
	opts.quote = '"';
	opts.max_field_size = 256 * 1024 * 1024;
	opts.max_record_size = 256 * 1024 * 1024;
	opts.max_fields = 1601;
	opts.first_line = 1;

	for (int r = 0; r < repeat; r++)
	{
		struct timespec t0,
					t1;
		CsvsSplitter *s;
		const CsvsPoint *points;
		int			npoints;
		double		secs;

		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
		s = csvs_create(&opts, 0, (uint64_t) len / (uint64_t) parts + 1, parts);
		for (long off = 0; off < len; off += CHUNK)
			if (!csvs_feed(s, buf + off, (size_t) (len - off < CHUNK ? len - off : CHUNK)))
			{
				fprintf(stderr, "out of memory\n");
				return 1;
			}
		if (!csvs_finish(s, &points, &npoints))
			return 1;
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
		secs = (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9;
		if (r == 0)
			for (int i = 0; i < npoints; i++)
				printf("point %d: offset %llu, line %lld, %lld records before\n", i,
					   (unsigned long long) points[i].offset, (long long) points[i].line,
					   (long long) points[i].record);
		printf("scan of %ld bytes for %d parts: %.3f CPU s, %.0f MB/s\n",
			   len, parts, secs, (double) len / secs / 1e6);
		csvs_destroy(s);
	}
	free(buf);
	return 0;
}
