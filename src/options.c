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

#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "options.h"

#define VALID_OPTIONS "header, columns, delimiter, quote, null, max_errors, commit_every"

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

static int64
nonnegative_integer(const char *key, JsonbValue *v)
{
	char	   *text;
	char	   *end;
	long long	n;

	if (v->type != jbvNumeric)
		wrong_type(key, "a non-negative integer");
	text = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
	errno = 0;
	n = strtoll(text, &end, 10);
	if (*end != '\0' || errno != 0 || n < 0)
		wrong_type(key, "a non-negative integer");
	return (int64) n;
}

/* A delimiter or quote: one single-byte character, not a line end. */
static char
single_char(const char *key, JsonbValue *v)
{
	char	   *s = string_value(key, v);

	if (strlen(s) != 1 || (unsigned char) s[0] >= 0x80)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ingest option \"%s\" must be a single one-byte character", key)));
	if (s[0] == '\r' || s[0] == '\n')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ingest option \"%s\" cannot be a newline or carriage return", key)));
	return s[0];
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

void
options_parse(Jsonb *jb, IngestOptions *opts)
{
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	v;
	char	   *key = NULL;

	opts->header = true;
	opts->columns = NIL;
	opts->delimiter = ',';
	opts->quote = '"';
	opts->null_string = NULL;
	opts->max_errors = 0;
	opts->commit_every = 0;

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
		{
			key = pnstrdup(v.val.string.val, v.val.string.len);
			continue;
		}
		if (tok != WJB_VALUE)
			continue;

		if (strcmp(key, "header") == 0)
		{
			if (v.type != jbvBool)
				wrong_type(key, "a boolean");
			opts->header = v.val.boolean;
		}
		else if (strcmp(key, "columns") == 0)
			opts->columns = column_list(key, &v);
		else if (strcmp(key, "delimiter") == 0)
			opts->delimiter = single_char(key, &v);
		else if (strcmp(key, "quote") == 0)
			opts->quote = single_char(key, &v);
		else if (strcmp(key, "null") == 0)
			opts->null_string = string_value(key, &v);
		else if (strcmp(key, "max_errors") == 0)
			opts->max_errors = nonnegative_integer(key, &v);
		else if (strcmp(key, "commit_every") == 0)
			opts->commit_every = nonnegative_integer(key, &v);
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown ingest option \"%s\"", key),
					 errhint("Valid options are: " VALID_OPTIONS ".")));
	}

	if (opts->delimiter == opts->quote)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ingest options \"delimiter\" and \"quote\" must differ")));
	if (opts->null_string != NULL &&
		(strchr(opts->null_string, opts->delimiter) != NULL ||
		 strchr(opts->null_string, opts->quote) != NULL))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ingest option \"null\" cannot contain the delimiter or quote character")));
}
