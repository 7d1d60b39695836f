/* import.c: "scanqa import lps|inspections FILE --org NAME [--dry-run]": the warehouse
 * system's CSV export into an organization, all or nothing.
 *
 * The file (RFC 4180 CSV, UTF-8, a header line naming the columns in any order;
 * FILE "-" is standard input) is checked here record by record (UTF-8, field count,
 * a closed quote), each good record goes by COPY into a temporary staging table with
 * its line number and the id it gets if it is new, and set-based SQL then looks
 * each row up (one probe of a unique index), checks every row, reports every problem
 * (line, column, reason) and, only when there is none, updates the stored rows that
 * change and inserts the new ones, one statement each:
 *   lps          by (organization, barcode): barcode (required), product_id,
 *                batch_number, quantity (0 to 99999999999.999, at most 3 decimals)
 *   inspections  by (organization, inspection_number): inspection_number (required),
 *                lp_barcode (an LP of the organization; required for a new
 *                inspection), status (pending or in_progress; default pending)
 * Values are trimmed of spaces; an empty cell, or a column the header leaves out,
 * keeps the stored value (a new row gets the default). A completed inspection is
 * never changed: each such row is reported as skipped. Header names are matched
 * case-insensitively with spaces and hyphens read as "_" ("LP Barcode").
 *
 * Row level security: the owner's connection is subject to the same org_isolation
 * policies as the daemon (FORCE ROW LEVEL SECURITY), with scanqa.org_id set for the
 * transaction, so no row of another organization can be read or written. Imports of
 * one organization take turns (an advisory lock). One quality_audit_log row records
 * the file, the counts and the OS user. Speed (README "Operator commands: import and
 * export"): the per-row work is PostgreSQL's own (heap, index entries, the foreign
 * key of an inspection to its LP); migration 009 took the other triggers off it.
 *
 * Exit status: 0 applied (or, with --dry-run, would be), 1 not applied (bad rows
 * listed on stderr, or a database failure), 2 bad arguments or unreadable FILE.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "admin.h"
#include "log.h"
#include "validate.h"

#define MAX_COLUMNS 8
#define COPY_CHUNK (256 * 1024)

/* One kind of file: its columns (the first one required) and its SQL. Every
 * statement but stage takes $1, the organization's id; import_rows is the staging
 * table trimmed, with the ids the rows resolve to. */
struct import_kind {
	const char *name;
	const char *const columns[MAX_COLUMNS];
	int n_required;
	const char *stage;        /* CREATE TEMP TABLE import_stage (line, columns...) */
	const char *rows;         /* CREATE TEMP TABLE import_rows (the resolved rows) */
	const char *resolve;      /* INSERT INTO import_rows: trimmed, ids looked up */
	const char *check;        /* rows of (line, column, reason), in line order */
	const char *update;       /* UPDATE of the stored rows that change */
	const char *insert;       /* INSERT of the new rows */
	const char *skipped;      /* rows of (line, key) left as they were, or NULL */
};

/* The staging rows trimmed, in a subquery the planner keeps apart (OFFSET 0), so
 * that a join condition on them holds no function: a condition with one that is
 * not leakproof (btrim) cannot reach into an index of a table under row level
 * security, and each look-up below would hash the organization's every row instead
 * of probing its unique index once. */
#define TRIMMED(cols) "(SELECT line, new_id, " cols " FROM import_stage OFFSET 0) s"
#define T(col) "nullif(btrim(" col "), '') AS " col

/* Control characters never belong in a barcode or a number (as the API's barcode rule). */
#define CONTROL_CHARS "'[\\x01-\\x1f\\x7f]'"

#define QUANTITY "'^[0-9]{1,11}(\\.[0-9]{0,3})?$'"

/* Each check statement keeps only the rows with a problem (its WHERE) before it
 * spells each problem out (its VALUES list), so a good row costs one test of each
 * rule and nothing more. */

/* Lines whose key repeats an earlier line's: (key, first_line), hashed. */
#define REPEATS(key) \
	"(SELECT " key ", min(line) AS first_line FROM import_rows" \
	"   WHERE " key " IS NOT NULL GROUP BY " key " HAVING count(*) > 1)"

static const struct import_kind kinds[] = {
	{
		"lps", { "barcode", "product_id", "batch_number", "quantity", NULL }, 1,
		"CREATE TEMP TABLE import_stage (line bigint, new_id uuid, barcode text,"
		" product_id text, batch_number text, quantity text)",

		"CREATE TEMP TABLE import_rows (line bigint, new_id uuid, barcode text,"
		" product_id text, batch_number text, quantity text, existing uuid) ON COMMIT DROP",

		"INSERT INTO import_rows"
		" SELECT s.*, (SELECT l.id FROM license_plates l"
		"               WHERE l.org_id = $1::uuid AND l.barcode = s.barcode)"
		"   FROM " TRIMMED(T("barcode") ", " T("product_id") ", " T("batch_number") ", " T("quantity")),

		"SELECT s.line, v.col, v.reason"
		"  FROM (SELECT r.*, d.first_line FROM import_rows r"
		"          LEFT JOIN " REPEATS("barcode") " d"
		"            ON d.barcode = r.barcode AND d.first_line < r.line"
		"         WHERE r.barcode IS NULL OR length(r.barcode) > 256"
		"            OR r.barcode ~ " CONTROL_CHARS " OR d.first_line IS NOT NULL"
		"            OR r.quantity !~ " QUANTITY ") s"
		" CROSS JOIN LATERAL (VALUES"
		"   ('barcode', CASE WHEN s.barcode IS NULL THEN 'is empty'"
		"     WHEN length(s.barcode) > 256 THEN 'is longer than 256 characters'"
		"     WHEN s.barcode ~ " CONTROL_CHARS " THEN 'contains a control character'"
		"     WHEN s.first_line IS NOT NULL THEN 'repeats the barcode of line ' || s.first_line END),"
		"   ('quantity', CASE WHEN s.quantity !~ " QUANTITY
		"     THEN 'must be a number from 0 to 99999999999.999 with at most 3 decimals, not \"'"
		"          || left(s.quantity, 40) || '\"' END)"
		" ) v (col, reason)"
		" WHERE v.reason IS NOT NULL AND $1::uuid IS NOT NULL"
		" ORDER BY s.line, v.col",

		"UPDATE license_plates l"
		"   SET product_id = coalesce(r.product_id, l.product_id),"
		"       batch_number = coalesce(r.batch_number, l.batch_number),"
		"       quantity = coalesce(r.quantity::numeric, l.quantity),"
		"       updated_at = now()"
		"  FROM import_rows r"
		" WHERE r.existing IS NOT NULL AND l.id = r.existing AND l.org_id = $1::uuid"
		"   AND (coalesce(r.product_id, l.product_id), coalesce(r.batch_number, l.batch_number),"
		"        coalesce(r.quantity::numeric, l.quantity))"
		"       IS DISTINCT FROM (l.product_id, l.batch_number, l.quantity)",

		"INSERT INTO license_plates (id, org_id, barcode, product_id, batch_number, quantity)"
		" SELECT r.new_id, $1::uuid, r.barcode, r.product_id, r.batch_number,"
		"        coalesce(r.quantity::numeric, 0)"
		"   FROM import_rows r WHERE r.existing IS NULL",

		NULL,
	},
	{
		"inspections", { "inspection_number", "lp_barcode", "status", NULL }, 1,
		"CREATE TEMP TABLE import_stage (line bigint, new_id uuid, inspection_number text,"
		" lp_barcode text, status text)",

		"CREATE TEMP TABLE import_rows (line bigint, new_id uuid, inspection_number text,"
		" lp_barcode text, status text, lp_id uuid, existing uuid) ON COMMIT DROP",

		"INSERT INTO import_rows"
		" SELECT s.line, s.new_id, s.inspection_number, s.lp_barcode, lower(s.status),"
		"        (SELECT l.id FROM license_plates l"
		"          WHERE l.org_id = $1::uuid AND l.barcode = s.lp_barcode),"
		"        (SELECT i.id FROM quality_inspections i"
		"          WHERE i.org_id = $1::uuid AND i.inspection_number = s.inspection_number)"
		"   FROM " TRIMMED(T("inspection_number") ", " T("lp_barcode") ", " T("status")),

		"SELECT s.line, v.col, v.reason"
		"  FROM (SELECT r.*, d.first_line FROM import_rows r"
		"          LEFT JOIN " REPEATS("inspection_number") " d"
		"            ON d.inspection_number = r.inspection_number AND d.first_line < r.line"
		"         WHERE r.inspection_number IS NULL OR length(r.inspection_number) > 256"
		"            OR r.inspection_number ~ " CONTROL_CHARS " OR d.first_line IS NOT NULL"
		"            OR (r.lp_barcode IS NULL AND r.existing IS NULL)"
		"            OR (r.lp_barcode IS NOT NULL AND r.lp_id IS NULL)"
		"            OR r.status NOT IN ('pending', 'in_progress')) s"
		" CROSS JOIN LATERAL (VALUES"
		"   ('inspection_number', CASE WHEN s.inspection_number IS NULL THEN 'is empty'"
		"     WHEN length(s.inspection_number) > 256 THEN 'is longer than 256 characters'"
		"     WHEN s.inspection_number ~ " CONTROL_CHARS " THEN 'contains a control character'"
		"     WHEN s.first_line IS NOT NULL THEN 'repeats the inspection number of line ' || s.first_line END),"
		"   ('lp_barcode', CASE"
		"     WHEN s.lp_barcode IS NULL AND s.existing IS NULL"
		"       THEN 'is empty: a new inspection needs the barcode of its license plate'"
		"     WHEN s.lp_barcode IS NOT NULL AND s.lp_id IS NULL"
		"       THEN 'no license plate of this organization has barcode \"' || left(s.lp_barcode, 60) || '\"' END),"
		"   ('status', CASE WHEN s.status = 'completed'"
		"       THEN 'completed cannot be imported: an inspection is completed on a scanner'"
		"     WHEN s.status NOT IN ('pending', 'in_progress')"
		"       THEN 'must be pending or in_progress, not \"' || left(s.status, 40) || '\"' END)"
		" ) v (col, reason)"
		" WHERE v.reason IS NOT NULL AND $1::uuid IS NOT NULL"
		" ORDER BY s.line, v.col",

		/* changed_at = now() here spares the touch trigger its call (009). The
		 * status test is re-evaluated on the newest version of a row that a
		 * scanner completes meanwhile, so a completed inspection is never changed. */
		"UPDATE quality_inspections i"
		"   SET lp_id = coalesce(r.lp_id, i.lp_id), status = coalesce(r.status, i.status),"
		"       changed_at = now()"
		"  FROM import_rows r"
		" WHERE r.existing IS NOT NULL AND i.id = r.existing AND i.org_id = $1::uuid"
		"   AND i.status <> 'completed'"
		"   AND (coalesce(r.lp_id, i.lp_id), coalesce(r.status, i.status))"
		"       IS DISTINCT FROM (i.lp_id, i.status)",

		"INSERT INTO quality_inspections (id, org_id, lp_id, inspection_number, status)"
		" SELECT r.new_id, $1::uuid, r.lp_id, r.inspection_number, coalesce(r.status, 'pending')"
		"   FROM import_rows r WHERE r.existing IS NULL",

		/* One probe of the primary key per stored inspection the file names (a
		 * join could scan every inspection for the completed ones instead). */
		"SELECT r.line, r.inspection_number FROM import_rows r"
		" WHERE r.existing IS NOT NULL"
		"   AND (SELECT i.status FROM quality_inspections i"
		"         WHERE i.id = r.existing AND i.org_id = $1::uuid) = 'completed'"
		" ORDER BY r.line",
	},
};

/* ---- problems ------------------------------------------------------------------- */

struct problem {
	long line;
	char *text;    /* "column: reason" or a reason about the whole line */
};

struct problems {
	struct problem *v;
	size_t n, cap;
	bool oom;
};

static void problem_add(struct problems *ps, long line, const char *column, const char *reason)
{
	char *text;

	if (ps->n == ps->cap) {
		size_t ncap = ps->cap ? ps->cap * 2 : 64;
		struct problem *grown = realloc(ps->v, ncap * sizeof *grown);

		if (grown == NULL) {
			ps->oom = true;
			return;
		}
		ps->v = grown;
		ps->cap = ncap;
	}
	if (column && column[0])
		text = malloc(strlen(column) + strlen(reason) + 3);
	else
		text = strdup(reason);
	if (text == NULL) {
		ps->oom = true;
		return;
	}
	if (column && column[0])
		sprintf(text, "%s: %s", column, reason);
	ps->v[ps->n].line = line;
	ps->v[ps->n].text = text;
	ps->n++;
}

static int cmp_problem(const void *a, const void *b)
{
	const struct problem *x = a, *y = b;

	return x->line < y->line ? -1 : x->line > y->line;
}

static void problems_free(struct problems *ps)
{
	for (size_t i = 0; i < ps->n; i++)
		free(ps->v[i].text);
	free(ps->v);
}

/* ---- reading the CSV -------------------------------------------------------------- */

struct buf {
	char *p;
	size_t len, cap;
};

static bool buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t ncap = b->cap ? b->cap : 4096;
		char *grown;

		while (ncap < b->len + n + 1)
			ncap *= 2;
		if ((grown = realloc(b->p, ncap)) == NULL)
			return false;
		b->p = grown;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return true;
}

/* Fields of one CSV record (RFC 4180, quotes toggling as PostgreSQL's COPY reads
 * them): their number, and with names != NULL the unquoted fields themselves,
 * written into names (up to max, each strdup'ed). */
static int split_fields(const char *rec, size_t len, char **names, int max)
{
	struct buf field = { NULL, 0, 0 };
	bool quoted = false;
	int n = 0;

	for (size_t i = 0; i <= len; i++) {
		char ch = i < len ? rec[i] : ',';

		if (ch == '"') {
			if (quoted && i + 1 < len && rec[i + 1] == '"' && names) {
				buf_add(&field, "\"", 1);
				i++;
				continue;
			}
			quoted = !quoted;
		} else if (ch == ',' && !quoted) {
			if (names && n < max)
				names[n] = strdup(field.p ? field.p : "");
			field.len = 0;
			if (field.p)
				field.p[0] = '\0';
			n++;
		} else if (names) {
			buf_add(&field, &ch, 1);
		}
	}
	free(field.p);
	return n;
}

/* A header name as matched: trimmed, lower case, spaces and hyphens as '_'. */
static void normalise(char *s)
{
	char *start = s, *end;

	while (*start == ' ' || *start == '\t')
		start++;
	memmove(s, start, strlen(start) + 1);
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	for (; *s; s++) {
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
		else if (*s == ' ' || *s == '-')
			*s = '_';
	}
}

struct reader {
	FILE *in;
	char chunk[65536];
	size_t pos, len;
	long line;          /* physical line the next byte is on */
	bool eof;
};

/* Reads the next record into rec (without its line ending); *start is the line it
 * starts on. Returns 1 for a record, 0 at the end, -1 on a read error, -2 when the
 * file ends inside a quoted field. */
static int next_record(struct reader *rd, struct buf *rec, long *start)
{
	bool quoted = false;

	rec->len = 0;
	*start = rd->line;
	for (;;) {
		if (rd->pos == rd->len) {
			if (rd->eof)
				break;
			rd->len = fread(rd->chunk, 1, sizeof rd->chunk, rd->in);
			rd->pos = 0;
			if (rd->len == 0) {
				if (ferror(rd->in))
					return -1;
				rd->eof = true;
				break;
			}
		}
		/* Copy up to the next quote or newline in one go. */
		size_t i = rd->pos;

		while (i < rd->len && rd->chunk[i] != '"' && rd->chunk[i] != '\n')
			i++;
		if (!buf_add(rec, rd->chunk + rd->pos, i - rd->pos))
			return -1;
		rd->pos = i;
		if (i == rd->len)
			continue;
		char ch = rd->chunk[rd->pos++];

		if (ch == '"') {
			quoted = !quoted;
			if (!buf_add(rec, "\"", 1))
				return -1;
			continue;
		}
		rd->line++;
		if (!quoted) {
			if (rec->len > 0 && rec->p[rec->len - 1] == '\r')
				rec->p[--rec->len] = '\0';
			return 1;
		}
		if (!buf_add(rec, "\n", 1))
			return -1;
	}
	if (quoted)
		return -2;
	if (rec->len > 0 && rec->p[rec->len - 1] == '\r')
		rec->p[--rec->len] = '\0';
	return rec->len > 0 ? 1 : 0;
}

/* ---- the import -------------------------------------------------------------------- */

struct import_args {
	const char *file;
	const char *org;
	bool dry_run;
};

static int usage(void)
{
	fputs("usage: scanqa import lps|inspections FILE --org NAME [--dry-run]\n"
	      "  FILE is CSV with a header line; \"-\" reads standard input (see scanqa(8)).\n", stderr);
	return ADMIN_USAGE;
}

/* Reads the header: maps each file column to its staging column. Problems go to ps. */
static void read_header(const struct import_kind *k, const char *rec, size_t len,
			struct buf *column_list, int *n_fields, struct problems *ps)
{
	char *names[64] = { NULL };
	bool seen[MAX_COLUMNS] = { false };
	int n = split_fields(rec, len, names, 64);

	*n_fields = n;
	if (buf_add(column_list, "line, new_id", 12) == false)
		ps->oom = true;
	for (int f = 0; f < n && f < 64; f++) {
		int c;

		normalise(names[f]);
		for (c = 0; k->columns[c] != NULL; c++)
			if (strcmp(k->columns[c], names[f]) == 0)
				break;
		if (k->columns[c] == NULL) {
			char reason[300];

			snprintf(reason, sizeof reason, "unknown column \"%.200s\" (%s takes %s, %s%s%s%s%s)",
				 names[f], k->name, k->columns[0], k->columns[1],
				 k->columns[2] ? ", " : "", k->columns[2] ? k->columns[2] : "",
				 k->columns[3] ? ", " : "", k->columns[3] ? k->columns[3] : "");
			problem_add(ps, 1, "header", reason);
		} else if (seen[c]) {
			problem_add(ps, 1, names[f], "appears twice in the header");
		} else {
			seen[c] = true;
			buf_add(column_list, ", ", 2);
			buf_add(column_list, names[f], strlen(names[f]));
		}
	}
	if (n > 64)
		problem_add(ps, 1, "header", "has more than 64 columns");
	for (int c = 0; c < k->n_required; c++)
		if (!seen[c])
			problem_add(ps, 1, k->columns[c], "the header lacks this required column");
	for (int f = 0; f < n && f < 64; f++)
		free(names[f]);
}

/* ---- ids of new rows ----------------------------------------------------------------- */

/* The ids the file's new rows get: RFC 9562 version 7 UUIDs, the milliseconds at
 * which the import started, then the record's line number as a counter (26 bits,
 * around the version and variant bits), then 48 random bits. One import's rows
 * get ascending ids, so the indexes that lead with the id (the primary key and
 * (id, org_id)) are appended to, instead of written at a random place per row as
 * gen_random_uuid() would; ids of imports that start in the same millisecond still
 * differ in their random bits. */
struct id_maker {
	unsigned long long ms;
	unsigned char rnd[4096];
	size_t pos;
};

static bool id_maker_init(struct id_maker *m)
{
	struct timespec now;

	if (clock_gettime(CLOCK_REALTIME, &now) != 0)
		return false;
	m->ms = (unsigned long long)now.tv_sec * 1000 + (unsigned long long)now.tv_nsec / 1000000;
	m->pos = sizeof m->rnd;
	return true;
}

/* Writes the id of the record on line into out (36 characters and a NUL).
 * Returns false when OpenSSL has no random bytes to give. */
static bool new_id(struct id_maker *m, long line, char out[37])
{
	static const char hex[] = "0123456789abcdef";
	unsigned long counter = (unsigned long)line & 0x3ffffff;
	unsigned char b[16];
	int o = 0;

	if (m->pos + 6 > sizeof m->rnd) {
		if (RAND_bytes(m->rnd, sizeof m->rnd) != 1) {
			log_error("import: RAND_bytes failed: no random bits for the ids");
			return false;
		}
		m->pos = 0;
	}
	for (int i = 0; i < 6; i++)
		b[i] = (unsigned char)(m->ms >> (40 - 8 * i));
	b[6] = (unsigned char)(0x70 | ((counter >> 22) & 0x0f));
	b[7] = (unsigned char)(counter >> 14);
	b[8] = (unsigned char)(0x80 | ((counter >> 8) & 0x3f));
	b[9] = (unsigned char)counter;
	memcpy(b + 10, m->rnd + m->pos, 6);
	m->pos += 6;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 15];
	}
	out[o] = '\0';
	return true;
}

/* Streams the data records to COPY: "LINE,record\n" for each well-formed one; the
 * others become problems. Returns the number of records sent, or -1 when the COPY
 * broke (logged). */
static long copy_records(PGconn *conn, struct reader *rd, int n_fields, struct problems *ps)
{
	struct buf rec = { NULL, 0, 0 }, out = { NULL, 0, 0 };
	struct id_maker ids;
	long sent = 0, start;
	int got = 0;

	if (!id_maker_init(&ids))
		ps->oom = true;
	while (!ps->oom && (got = next_record(rd, &rec, &start)) == 1) {
		char reason[96];
		char prefix[72], id[37];
		int n;

		if (rec.len == 0)
			continue; /* a blank line */
		if (!utf8_valid(rec.p, rec.len) || memchr(rec.p, '\0', rec.len) != NULL) {
			problem_add(ps, start, "", "is not valid UTF-8 text");
			continue;
		}
		if ((n = split_fields(rec.p, rec.len, NULL, 0)) != n_fields) {
			snprintf(reason, sizeof reason, "has %d field(s), the header has %d", n, n_fields);
			problem_add(ps, start, "", reason);
			continue;
		}
		if (!new_id(&ids, start, id)) {
			ps->oom = true; /* no random bytes: abandon, as for memory */
			break;
		}
		n = snprintf(prefix, sizeof prefix, "%ld,%s,", start, id);
		if (!buf_add(&out, prefix, (size_t)n) || !buf_add(&out, rec.p, rec.len) ||
		    !buf_add(&out, "\n", 1)) {
			ps->oom = true;
			break;
		}
		sent++;
		if (out.len >= COPY_CHUNK) {
			if (PQputCopyData(conn, out.p, (int)out.len) != 1)
				break;
			out.len = 0;
		}
	}
	if (got == -1)
		log_error("import: cannot read the file: %s", errno ? strerror(errno) : "out of memory");
	else if (got == -2)
		problem_add(ps, start, "", "opens a quoted field that the file never closes");
	if (out.len > 0 && got != -1 && PQputCopyData(conn, out.p, (int)out.len) != 1)
		got = -1;
	free(rec.p);
	free(out.p);
	if (PQputCopyEnd(conn, got == -1 || ps->oom ? "import aborted" : NULL) != 1)
		return -1;

	PGresult *r = PQgetResult(conn);
	bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;

	if (!ok && got != -1)
		log_error("import: COPY into the staging table failed: %s", PQresultErrorMessage(r));
	PQclear(r);
	while ((r = PQgetResult(conn)) != NULL)
		PQclear(r);
	return ok && got != -1 && !ps->oom ? sent : -1;
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static bool run(PGconn *conn, const struct import_kind *k, const struct import_args *a,
		FILE *in, bool *applied)
{
	const char *cmd = "import";
	struct problems ps = { NULL, 0, 0, false };
	struct reader *rd = calloc(1, sizeof *rd);
	struct buf rec = { NULL, 0, 0 }, sql = { NULL, 0, 0 }, columns = { NULL, 0, 0 };
	struct timespec t0;
	char org_id[64] = "";
	const char *p[3] = { org_id, k->name, NULL };
	PGresult *r = NULL;
	long sent = 0, start;
	int n_fields = 0, got;
	bool ok = false;

	*applied = false;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (rd == NULL)
		goto out;
	rd->in = in;
	rd->line = 1;
	/* Two transactions. The first only fills the staging table (a temporary table:
	 * no WAL, no row level security), however long the file takes to arrive. The
	 * second resolves, checks and writes, so that its now(), which becomes the
	 * rows' changed_at, is at most that work's length before its commit (the
	 * open-inspections listing of 005 relies on 60 seconds). */
	if (!admin_exec(conn, cmd, "BEGIN") ||
	    !admin_find_org(conn, cmd, a->org, false, org_id, NULL) ||
	    !admin_exec(conn, cmd, k->stage))
		goto out;

	got = next_record(rd, &rec, &start);
	if (got != 1) {
		log_error("import: %s", got == 0 ? "the file is empty: it needs a header line"
				       : got == -2 ? "the header opens a quoted field it never closes"
				       : "cannot read the file");
		goto out;
	}
	/* Spreadsheets write a byte order mark before UTF-8 text. */
	if (rec.len >= 3 && memcmp(rec.p, "\xEF\xBB\xBF", 3) == 0) {
		memmove(rec.p, rec.p + 3, rec.len - 2);
		rec.len -= 3;
	}
	read_header(k, rec.p, rec.len, &columns, &n_fields, &ps);
	if (ps.n > 0)
		goto report;
	if (!buf_add(&sql, "COPY import_stage (", 19) || !buf_add(&sql, columns.p, columns.len) ||
	    !buf_add(&sql, ") FROM STDIN WITH (FORMAT csv)", 30))
		goto out;
	r = PQexec(conn, sql.p);
	if (PQresultStatus(r) != PGRES_COPY_IN) {
		log_error("import: COPY failed: %s", PQerrorMessage(conn));
		goto out;
	}
	PQclear(r);
	r = NULL;
	if ((sent = copy_records(conn, rd, n_fields, &ps)) < 0)
		goto out;

	if (!admin_exec(conn, cmd, "COMMIT"))
		goto out;

	/* Memory for the hash table of repeated keys; no JIT compilation, which costs
	 * more than it saves on statements run once. */
	if (!admin_exec(conn, cmd, "BEGIN") ||
	    !admin_exec(conn, cmd, "SET LOCAL work_mem = '256MB'") ||
	    !admin_exec(conn, cmd, "SET LOCAL jit = off") ||
	    !admin_set_org(conn, cmd, org_id))
		goto out;
	if ((r = admin_query(conn, cmd, "waiting for another import of the organization",
			     "SELECT pg_advisory_xact_lock(hashtext('scanqa import ' || $2 || $1))",
			     2, p)) == NULL)
		goto out;
	PQclear(r);
	if (!admin_exec(conn, cmd, k->rows) ||
	    (r = admin_query(conn, cmd, "looking the rows up", k->resolve, 1, p)) == NULL)
		goto out;
	PQclear(r);
	if ((r = admin_query(conn, cmd, "checking the rows", k->check, 1, p)) == NULL)
		goto out;
	for (int i = 0; i < PQntuples(r); i++)
		problem_add(&ps, atol(PQgetvalue(r, i, 0)), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2));
	PQclear(r);
	r = NULL;

report:
	if (ps.oom) {
		log_error("import: out of memory");
		goto out;
	}
	if (ps.n > 0) {
		qsort(ps.v, ps.n, sizeof *ps.v, cmp_problem);
		for (size_t i = 0; i < ps.n; i++)
			fprintf(stderr, "%s:%ld: %s\n", a->file, ps.v[i].line, ps.v[i].text);
		fprintf(stderr, "import %s: %zu problem(s) in %s; nothing was imported.\n",
			k->name, ps.n, a->file);
		goto out;
	}

	/* The staging table has no statistics: without hash and merge joins, the
	 * UPDATE probes the primary key once per stored row it names, whatever the
	 * organization's size. (The repeated-key check above needed its hash join.) */
	if (!admin_exec(conn, cmd, "SET LOCAL enable_hashjoin = off") ||
	    !admin_exec(conn, cmd, "SET LOCAL enable_mergejoin = off") ||
	    (r = admin_query(conn, cmd, "updating the rows", k->update, 1, p)) == NULL)
		goto out;

	long updated = atol(PQcmdTuples(r)), inserted, skipped = 0;

	PQclear(r);
	/* A row another writer added since the look-up makes this INSERT fail on the
	 * unique key, and the whole file with it (imports of an organization take
	 * turns, so only a hand-written INSERT can do that). */
	if ((r = admin_query(conn, cmd, "inserting the rows", k->insert, 1, p)) == NULL)
		goto out;
	inserted = atol(PQcmdTuples(r));
	PQclear(r);
	r = NULL;
	if (k->skipped != NULL) {
		if ((r = admin_query(conn, cmd, "listing completed inspections", k->skipped, 1, p)) == NULL)
			goto out;
		skipped = PQntuples(r);
		for (int i = 0; i < PQntuples(r); i++)
			fprintf(stderr, "%s:%s: skipped: inspection %s is completed and is never changed\n",
				a->file, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
		PQclear(r);
		r = NULL;
	}

	char counts[256], entity[300], action[32];
	double secs = seconds_since(&t0);

	snprintf(counts, sizeof counts,
		 "{\"rows\": %ld, \"inserted\": %ld, \"updated\": %ld, \"unchanged\": %ld,"
		 " \"skipped_completed\": %ld}", sent, inserted, updated,
		 sent - inserted - updated - skipped, skipped);
	snprintf(entity, sizeof entity, "%s", a->file);
	snprintf(action, sizeof action, "import_%s", k->name);
	if (!admin_audit(conn, cmd, org_id, "import", entity, action, NULL, counts,
			 a->dry_run ? "Dry run" : "CSV import"))
		goto out;
	if (a->dry_run) {
		if (!admin_exec(conn, cmd, "ROLLBACK"))
			goto out;
	} else if (!admin_commit(conn, cmd)) {
		goto out;
	}
	fprintf(stderr, "import %s%s: %ld row(s) of %s into \"%s\": %ld inserted, %ld updated, "
		"%ld unchanged, %ld skipped (completed), in %.2f s (%.0f rows/s)\n",
		k->name, a->dry_run ? " (dry run, nothing written)" : "", sent, a->file, a->org,
		inserted, updated, sent - inserted - updated - skipped, skipped, secs,
		secs > 0 ? (double)sent / secs : 0.0);
	*applied = true;
	ok = true;
out:
	PQclear(r);
	problems_free(&ps);
	free(rec.p);
	free(sql.p);
	free(columns.p);
	free(rd);
	return ok;
}

int admin_import(const struct conf *c, const char *kind, int argc, char **argv)
{
	const struct import_kind *k = strcmp(kind, "lps") == 0 ? &kinds[0] : &kinds[1];
	struct import_args a = { NULL, NULL, false };
	bool bad = false, applied = false;
	PGconn *conn;
	FILE *in;

	for (int i = 0; i < argc && !bad; i++) {
		if (strcmp(argv[i], "--dry-run") == 0) {
			a.dry_run = true;
		} else if ((argv[i][0] != '-' || strcmp(argv[i], "-") == 0) && a.file == NULL) {
			a.file = argv[i];
		} else if (!admin_take_value(argc, argv, &i, "--org", &a.org, &bad, "import")) {
			fprintf(stderr, "import: unknown argument \"%s\"\n", argv[i]);
			bad = true;
		}
	}
	if (!bad && (a.file == NULL || a.org == NULL || a.org[0] == '\0')) {
		fputs("import: FILE and --org NAME are required\n", stderr);
		bad = true;
	}
	if (bad)
		return usage();
	if (strcmp(a.file, "-") == 0) {
		in = stdin;
		a.file = "(stdin)";
	} else if ((in = fopen(a.file, "rb")) == NULL) {
		fprintf(stderr, "import: cannot open %s: %s\n", a.file, strerror(errno));
		return ADMIN_USAGE;
	}
	if ((conn = admin_connect(c, "import")) != NULL) {
		run(conn, k, &a, in, &applied);
		PQfinish(conn); /* rolls back what a failure left open */
	}
	if (in != stdin)
		fclose(in);
	return applied ? ADMIN_OK : ADMIN_FAILED;
}
