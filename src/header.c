/*
 * header.c
 *		A file's header: its names, checked against the target table as soon
 *		as the first bytes are known.
 *
 * The worker resolves the header when it reads it (loadbatch.c). An app
 * would rather tell its user while they are still on the upload page, so
 * the same resolution runs early, as the submitting role, on the first bytes
 * the server has: the data given to enqueue_data, the start of a file or a
 * large object at enqueue, chunk 0 of an upload when it arrives. Early means
 * what a later check would say, sooner; the worker checks again (grants and
 * columns may change while a job waits). The first bytes are decoded as the
 * worker decodes them (decode.c), compressed or in another encoding; when
 * they do not hold the whole header, the early check says nothing.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/memutils.h"

#include "convert.h"
#include "decode.h"
#include "header.h"
#include "settings.h"
#include "target.h"

/* A header record the parser could not read is an error; where names the source. */
void
header_check_readable(const CsvpRecord *header, const char *where)
{
	if (header->error != CSVP_OK)
		ereport(ERROR,
				(errcode(ERRCODE_BAD_COPY_FILE_FORMAT),
				 errmsg("%s, line " INT64_FORMAT ": could not read the header: %s",
						where, header->line, csvp_error_message(header->error))));
}

/* The header's names, checked to be names; where names the source in messages. */
List *
header_names(CsvpParser *parser, const CsvpRecord *header, const char *where)
{
	List	   *names = NIL;

	header_check_readable(header, where);
	for (int i = 0; i < header->nfields; i++)
	{
		size_t		len;
		bool		isnull;
		const char *f = csvp_field(parser, header, i, &len, &isnull);
		char	   *bad_text;

		if (isnull || len == 0)
			ereport(ERROR,
					(errcode(ERRCODE_BAD_COPY_FILE_FORMAT),
					 errmsg("%s, line " INT64_FORMAT ": header field %d is empty",
							where, header->line, i + 1),
					 errhint("Name every column in the header, or set \"header\": false and list the columns with \"columns\".")));
		bad_text = convert_invalid_text(f, len);
		if (bad_text != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
					 errmsg("%s, line " INT64_FORMAT ": header field %d: %s",
							where, header->line, i + 1, bad_text)));
		names = lappend(names, pnstrdup(f, len));
	}
	return names;
}

static void
free_parser(void *arg)
{
	csvp_destroy((CsvpParser *) arg);
}

HeaderReader *
header_reader_create(const IngestOptions *opts, MemoryContext cxt)
{
	HeaderReader *hr = MemoryContextAllocZero(cxt, sizeof(HeaderReader));
	CsvpOptions popts;

	options_csv(opts, ingest_max_record_size, &popts);
	hr->parser = csvp_create(&popts);
	if (hr->parser == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	hr->cb.func = free_parser;
	hr->cb.arg = hr->parser;
	MemoryContextRegisterResetCallback(cxt, &hr->cb);
	hr->skip_left = opts->skip_lines;
	return hr;
}

/* The next bytes of the file: its header record once it is complete, else NULL. */
const CsvpRecord *
header_reader_feed(HeaderReader *hr, const char *buf, size_t len)
{
	size_t		off = 0;

	if (hr->skip_left > 0 || hr->after_cr)
		off = csvp_skip_lines(buf, len, &hr->skip_left, &hr->after_cr);
	if (off < len && csvp_feed(hr->parser, buf + off, len - off, 1) == (size_t) -1)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	return csvp_nrecords(hr->parser) > 0 ? csvp_record(hr->parser, 0) : NULL;
}

/* The file ended: its header record (one without a line end), or NULL. */
const CsvpRecord *
header_reader_finish(HeaderReader *hr)
{
	if (csvp_nrecords(hr->parser) == 0 && !csvp_finish(hr->parser))
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	return csvp_nrecords(hr->parser) > 0 ? csvp_record(hr->parser, 0) : NULL;
}

/* The header's names resolved against target, as the current role. */
static void
resolve_header(Oid target, const IngestOptions *opts, HeaderReader *hr,
			   const CsvpRecord *header, const char *where)
{
	Relation	rel = target_open(target, AccessShareLock);
	IngestColumns cols;

	target_resolve(rel, header_names(hr->parser, header, where),
				   TARGET_NAMES_HEADER, opts, GetUserId(), &cols, CurrentMemoryContext);
	relation_close(rel, AccessShareLock);
}

/*
 * Check the header in the first bytes of a source against target, as the
 * current role. The bytes go through the worker's decoding (decode.c:
 * gzip or zstd, UTF-16, the file's encoding) as a head, whose end is not
 * the source's, up to EARLY_HEADER_BYTES of text, in small steps: a
 * decompression bomb's head inflates no further than that. An error in the
 * bytes decoded (corrupt compressed data, say) is raised here, as the worker
 * would; what lies past them is the worker's to find. Says nothing when no
 * header is to be resolved or the text does not hold it all.
 */
void
header_check_early(Oid target, const IngestOptions *opts, const SourceHead *head)
{
	MemoryContext cxt;
	MemoryContext old;
	IngestDecoder *decoder;
	HeaderReader *hr;
	size_t		len = 0;

	if (!opts->header || opts->columns != NIL)
		return;
	cxt = AllocSetContextCreate(CurrentMemoryContext, "ingest early header check",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	decoder = decode_open_head(head->bytes, head->len, head->complete, head->where, opts, cxt);
	hr = header_reader_create(opts, cxt);
	for (;;)
	{
		const char *p;
		size_t		n = decode_read(decoder, &p);
		const CsvpRecord *header;

		CHECK_FOR_INTERRUPTS();
		n = Min(n, EARLY_HEADER_BYTES - len);
		len += n;
		header = header_reader_feed(hr, p, n);
		if (header == NULL && n == 0 && head->complete)
			header = header_reader_finish(hr);
		if (header != NULL)
		{
			resolve_header(target, opts, hr, header, head->where);
			break;
		}
		if (n == 0 || len == EARLY_HEADER_BYTES)
			break;
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
}
