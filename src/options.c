/*
 * options.c
 *		The jsonb options of a job, validated into one struct.
 *
 * Called at enqueue, where a bad option must be an ERROR before anything is
 * queued, and again by the worker, which trusts nothing stored in a table.
 * Unknown keys are errors: a typo ("delimeter") silently ignored would load
 * a file wrongly.
 */
#include "postgres.h"

#include <limits.h>

#include "access/htup_details.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/datetime.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "encoding.h"
#include "settings.h"
#include "options.h"
#include "parser.h"

#define VALID_OPTIONS "header, columns, extra_columns, header_match, skip_lines, delimiter, " \
	"quote, null, strict_quotes, force_null, decimal, compression, encoding, max_errors, " \
	"commit_every, max_attempts, timeout, priority, keep_data, unlink, on_conflict, conflict_target, parallel"

static void
wrong_type(const char *key, const char *expected)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("ingest option \"%s\" must be %s", key, expected)));
}

static char *
string_value(const char *key, JsonbValue *v)
{
	if (v->type != jbvString)
		wrong_type(key, "a string");
	return pnstrdup(v->val.string.val, v->val.string.len);
}

static bool
boolean_value(const char *key, JsonbValue *v)
{
	if (v->type != jbvBool)
		wrong_type(key, "a boolean");
	return v->val.boolean;
}

/* A JSON integer within [min, max]; "expected" says what is wanted. */
static int64
integer_value(const char *key, JsonbValue *v, int64 min, int64 max, const char *expected)
{
	char	   *text;
	char	   *end;
	long long	n;

	if (v->type != jbvNumeric)
		wrong_type(key, expected);
	text = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
	errno = 0;
	n = strtoll(text, &end, 10);
	if (*end != '\0' || errno != 0 || n < min || n > max)
		wrong_type(key, expected);
	return (int64) n;
}

static int64
nonnegative_integer(const char *key, JsonbValue *v)
{
	return integer_value(key, v, 0, PG_INT64_MAX, "a non-negative integer");
}

static void
option_context(void *arg)
{
	errcontext("ingest option \"%s\"", (const char *) arg);
}

/* A duration: an interval string ('30 min') or a number of seconds; in ms. */
static int64
duration_ms(const char *key, JsonbValue *v)
{
	const char *expected = "an interval such as \"30 min\" or a number of seconds, not negative";
	double		secs;

	if (v->type == jbvNumeric)
		secs = DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(v->val.numeric)));
	else if (v->type == jbvString)
	{
		ErrorContextCallback ctx;
		Interval   *iv;

		/* interval_in's own error does not say which option it is about */
		ctx.callback = option_context;
		ctx.arg = (void *) key;
		ctx.previous = error_context_stack;
		error_context_stack = &ctx;
		iv = DatumGetIntervalP(DirectFunctionCall3(interval_in,
												   CStringGetDatum(string_value(key, v)),
												   ObjectIdGetDatum(InvalidOid),
												   Int32GetDatum(-1)));
		error_context_stack = ctx.previous;

		secs = iv->time / (double) USECS_PER_SEC +
			((double) iv->day + (double) iv->month * DAYS_PER_MONTH) * SECS_PER_DAY;
	}
	else
	{
		wrong_type(key, expected);
		secs = 0;				/* keep the compiler quiet */
	}
	if (secs < 0 || secs > (double) PG_INT32_MAX)
		wrong_type(key, expected);
	return (int64) (secs * 1000.0);
}

/*
 * A delimiter or quote: one single-byte character, not a line end. The check
 * is parser.c's, where the fuzzer runs it.
 */
static char
single_char(const char *key, JsonbValue *v)
{
	char	   *s = string_value(key, v);
	const char *problem = csvp_check_char(s);

	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ingest option \"%s\" %s", key, problem)));
	return s[0];
}

/*
 * "columns" as an object: header names to the table columns they load into,
 * {"Energy (kWh)": "kwh"}, kept as two lists in the object's order.
 */
static void
column_map(const char *key, JsonbValue *v, IngestOptions *opts)
{
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	elem;
	char	   *from = NULL;

	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &elem, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			if (elem.val.string.len == 0)
				wrong_type(key, "an array of column names or an object mapping header names to column names");
			from = pnstrdup(elem.val.string.val, elem.val.string.len);
		}
		else if (tok == WJB_VALUE)
		{
			if (elem.type != jbvString || elem.val.string.len == 0)
				wrong_type(key, "an array of column names or an object mapping header names to column names");
			opts->map_from = lappend(opts->map_from, from);
			opts->map_to = lappend(opts->map_to, pnstrdup(elem.val.string.val, elem.val.string.len));
		}
	}
	if (opts->map_from == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ingest option \"%s\" must name at least one column", key)));
}

/* One of the words of a choice, by its key; "words" lists them for the message. */
static int
choice_value(const char *key, JsonbValue *v, const char *const *words, const char *expected)
{
	if (v->type == jbvString)
		for (int i = 0; words[i] != NULL; i++)
			if (strlen(words[i]) == v->val.string.len &&
				strncmp(words[i], v->val.string.val, v->val.string.len) == 0)
				return i;
	wrong_type(key, expected);
	return -1;					/* not reached */
}

static List *
column_list(const char *key, JsonbValue *v)
{
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	elem;
	List	   *columns = NIL;

	if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data) ||
		JsonContainerIsScalar(v->val.binary.data))
		wrong_type(key, "an array of column names");

	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &elem, true)) != WJB_DONE)
	{
		if (tok != WJB_ELEM)
			continue;
		if (elem.type != jbvString || elem.val.string.len == 0)
			wrong_type(key, "an array of column names");
		columns = lappend(columns, pnstrdup(elem.val.string.val, elem.val.string.len));
	}
	if (columns == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ingest option \"%s\" must name at least one column", key)));
	return columns;
}

/* auto (gzip or zstd recognised by its magic bytes), gzip, zstd or none */
static IngestCompression
compression_value(const char *key, JsonbValue *v)
{
	char	   *s = string_value(key, v);

	if (pg_strcasecmp(s, "auto") == 0)
		return INGEST_COMPRESSION_AUTO;
	if (pg_strcasecmp(s, "gzip") == 0)
		return INGEST_COMPRESSION_GZIP;
	if (pg_strcasecmp(s, "zstd") == 0)
		return INGEST_COMPRESSION_ZSTD;
	if (pg_strcasecmp(s, "none") == 0)
		return INGEST_COMPRESSION_NONE;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("ingest option \"%s\" must be \"auto\", \"gzip\", \"zstd\" or \"none\", not \"%s\"", key, s)));
	return INGEST_COMPRESSION_AUTO;		/* keep the compiler quiet */
}

/* One option's value into opts, by its key. */
static void
set_option(IngestOptions *opts, const char *key, JsonbValue *v)
{
	if (strcmp(key, "header") == 0)
		opts->header = boolean_value(key, v);
	else if (strcmp(key, "columns") == 0)
	{
		if (v->type == jbvBinary && JsonContainerIsObject(v->val.binary.data))
			column_map(key, v, opts);
		else
			opts->columns = column_list(key, v);
	}
	else if (strcmp(key, "extra_columns") == 0)
		opts->extra_ignore = choice_value(key, v, (const char *const[]) {"error", "ignore", NULL},
										  "\"error\" or \"ignore\"") == 1;
	else if (strcmp(key, "header_match") == 0)
		opts->header_insensitive = choice_value(key, v, (const char *const[]) {"exact", "insensitive", NULL},
												"\"exact\" or \"insensitive\"") == 1;
	else if (strcmp(key, "decimal") == 0)
		opts->decimal_comma = choice_value(key, v, (const char *const[]) {".", ",", NULL},
										   "\".\" or \",\"") == 1;
	else if (strcmp(key, "skip_lines") == 0)
		opts->skip_lines = nonnegative_integer(key, v);
	else if (strcmp(key, "delimiter") == 0)
		opts->delimiter = single_char(key, v);
	else if (strcmp(key, "quote") == 0)
		opts->quote = single_char(key, v);
	else if (strcmp(key, "null") == 0)
		opts->null_string = string_value(key, v);
	else if (strcmp(key, "strict_quotes") == 0)
		opts->strict_quotes = boolean_value(key, v);
	else if (strcmp(key, "force_null") == 0)
		opts->force_null = column_list(key, v);
	else if (strcmp(key, "max_errors") == 0)
		opts->max_errors = nonnegative_integer(key, v);
	else if (strcmp(key, "commit_every") == 0)
		opts->commit_every = nonnegative_integer(key, v);
	else if (strcmp(key, "max_attempts") == 0)
		opts->max_attempts = (int) integer_value(key, v, 1, INGEST_MAX_ATTEMPTS_LIMIT,
												 "an integer from 1 to " CppAsString2(INGEST_MAX_ATTEMPTS_LIMIT));
	else if (strcmp(key, "timeout") == 0)
		opts->timeout_ms = duration_ms(key, v);
	else if (strcmp(key, "priority") == 0)
		opts->priority = (int) integer_value(key, v, PG_INT32_MIN, PG_INT32_MAX, "an integer");
	else if (strcmp(key, "keep_data") == 0)
		opts->keep_data = boolean_value(key, v);
	else if (strcmp(key, "unlink") == 0)
		opts->unlink = boolean_value(key, v);
	else if (strcmp(key, "compression") == 0)
		opts->compression = compression_value(key, v);
	else if (strcmp(key, "encoding") == 0)
		opts->encoding = encoding_parse(string_value(key, v));
	else if (strcmp(key, "on_conflict") == 0)
		opts->on_conflict = (IngestOnConflict) choice_value(key, v, (const char *const[]) {"error", "nothing", "update", NULL},
															 "\"error\", \"nothing\" or \"update\"");
	else if (strcmp(key, "conflict_target") == 0)
	{
		if (v->type == jbvString && v->val.string.len > 0)
			opts->conflict_constraint = string_value(key, v);
		else if (v->type == jbvBinary && JsonContainerIsArray(v->val.binary.data) &&
				 !JsonContainerIsScalar(v->val.binary.data))
			opts->conflict_columns = column_list(key, v);
		else
			wrong_type(key, "an array of column names or the name of a unique constraint");
	}
	else if (strcmp(key, "parallel") == 0)
		opts->parallel = boolean_value(key, v) ? INGEST_PARALLEL_ON : INGEST_PARALLEL_OFF;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown ingest option \"%s\"", key),
				 errhint("Valid options are: " VALID_OPTIONS ".")));
}

/*
 * The options taken together: delimiter and quote differ, the null string
 * contains neither. parser.c checks (so that the fuzzer runs the check) and
 * words the message.
 */
static void
check_together(const IngestOptions *opts)
{
	CsvpOptions csv_options;
	const char *problem;

	if (opts->map_from != NIL && !opts->header)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ingest option \"columns\" maps header names, but \"header\" is false"),
				 errhint("Without a header, list the target columns in file order: \"columns\": [\"a\", \"b\"].")));

	if ((opts->conflict_columns != NIL || opts->conflict_constraint != NULL) &&
		opts->on_conflict == INGEST_CONFLICT_ERROR)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ingest option \"conflict_target\" needs \"on_conflict\": \"nothing\" or \"update\""),
				 errhint("With \"on_conflict\": \"error\" (the default) a record whose key is already in the table is rejected, whatever the constraint.")));

	options_csv(opts, 0, &csv_options);
	problem = csvp_check_options(&csv_options);
	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s", problem)));
}

/*
 * The parser's options for a job's CSV: the format options, max_record_size
 * (bytes, 0: none) for a field and a record, and line numbers that count the
 * lines "skip_lines" passes over. The worker's parser and the early header
 * check (header.c) read a file alike because both take them from here.
 */
void
options_csv(const IngestOptions *opts, int max_record_size, CsvpOptions *csv)
{
	memset(csv, 0, sizeof(*csv));
	csv->delimiter = opts->delimiter;
	csv->quote = opts->quote;
	csv->null_string = opts->null_string;
	csv->strict_quotes = opts->strict_quotes;
	csv->max_field_size = (size_t) max_record_size;
	csv->max_record_size = (size_t) max_record_size;
	/* no table has more columns; one more tells "extra data" from a fit */
	csv->max_fields = MaxHeapAttributeNumber + 1;
	csv->first_line = 1 + opts->skip_lines;
}

/* Validate jb (NULL: no options) into opts, the defaults filled in. */
void
options_parse(Jsonb *jb, IngestOptions *opts)
{
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	v;
	char	   *key = NULL;

	memset(opts, 0, sizeof(*opts));
	opts->header = true;
	opts->delimiter = ',';
	opts->quote = '"';
	opts->max_attempts = -1;
	opts->timeout_ms = -1;
	opts->compression = INGEST_COMPRESSION_AUTO;
	opts->encoding = INGEST_ENCODING_DEFAULT;

	if (jb == NULL)
		return;
	if (!JB_ROOT_IS_OBJECT(jb))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ingest options must be a JSON object"),
				 errhint("For example '{\"header\": true, \"max_errors\": 10}'.")));

	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			key = pnstrdup(v.val.string.val, v.val.string.len);
		else if (tok == WJB_VALUE)
			set_option(opts, key, &v);
	}
	check_together(opts);
}
