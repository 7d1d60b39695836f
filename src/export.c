/* export.c: "scanqa export inspections|audit --org NAME --since WHEN [--until WHEN]
 * [--format csv|jsonl] [--output FILE]": an organization's completed inspections, or
 * its audit trail, streamed in constant memory.
 *
 *   inspections  completed inspections whose completed_at is in [since, until):
 *                number, id, LP (barcode, product, batch), result, notes, defects,
 *                method, device, location, inspector (email, name), completed_at;
 *                in completion order
 *   audit        quality_audit_log rows whose created_at is in [since, until), in
 *                the order they were written
 *
 * WHEN is a date (YYYY-MM-DD, midnight UTC) or an ISO 8601 time (YYYY-MM-DDTHH:MM[:SS]
 * with Z or an offset; without one, UTC); --until defaults to now. csv is RFC 4180
 * (a header line, CRLF line ends, fields quoted when they hold a comma, quote or line
 * break, quotes doubled; an empty field is NULL), jsonl one JSON object per line;
 * both UTF-8, times ISO 8601 in UTC with milliseconds ("2026-11-30T08:15:02.123Z").
 *
 * PostgreSQL writes the rows with COPY ... TO STDOUT inside one read-only
 * REPEATABLE READ transaction (a consistent snapshot), under the same row level
 * security as the daemon (scanqa.org_id set for the transaction); each row is
 * written out as it arrives, so memory does not grow with the export.
 * Exit status: 0 written, 1 failed (a partial --output FILE is removed), 2 bad
 * arguments.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin.h"
#include "log.h"

#define ISO_MS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/* The SELECT of each export; %s are the organization id, since and until, as
 * literals escaped by PQescapeLiteral (COPY takes no parameters). */
#define INSPECTIONS_SQL \
	"SELECT i.inspection_number, i.id AS inspection_id, lp.barcode AS lp_barcode," \
	"       lp.product_id, lp.batch_number, i.result, i.result_notes, i.defects_found," \
	"       i.inspection_method, i.scanner_device_id AS device_id," \
	"       i.scanner_location AS location, u.email AS inspector_email," \
	"       u.display_name AS inspector_name, " ISO_MS("i.completed_at") " AS completed_at" \
	"  FROM quality_inspections i" \
	"  JOIN license_plates lp ON lp.id = i.lp_id AND lp.org_id = i.org_id" \
	"  LEFT JOIN users u ON u.id = i.completed_by" \
	" WHERE i.org_id = %s::uuid AND i.status = 'completed'" \
	"   AND i.completed_at >= %s::timestamptz AND i.completed_at < %s::timestamptz" \
	" ORDER BY i.completed_at, i.id"

#define AUDIT_SQL \
	"SELECT a.id, " ISO_MS("a.created_at") " AS created_at, a.entity_type, a.entity_id," \
	"       a.action, a.user_id, u.email AS user_email, a.old_value, a.new_value," \
	"       a.change_reason, a.metadata" \
	"  FROM quality_audit_log a" \
	"  LEFT JOIN users u ON u.id = a.user_id" \
	" WHERE a.org_id = %s::uuid" \
	"   AND a.created_at >= %s::timestamptz AND a.created_at < %s::timestamptz" \
	" ORDER BY a.id"

struct export_args {
	const char *org;
	const char *since;
	const char *until;
	const char *format;
	const char *output;
};

static int usage(void)
{
	fputs("usage: scanqa export inspections|audit --org NAME --since WHEN [--until WHEN]\n"
	      "                     [--format csv|jsonl] [--output FILE]\n"
	      "  WHEN is YYYY-MM-DD (midnight UTC) or an ISO 8601 time; --until defaults to now.\n",
	      stderr);
	return ADMIN_USAGE;
}

/* Looks like a date or ISO 8601 time; PostgreSQL then checks the values themselves. */
static bool plausible_time(const char *s)
{
	size_t n = strlen(s);

	if (n < 10 || n > 40)
		return false;
	for (size_t i = 0; i < 10; i++)
		if (i == 4 || i == 7 ? s[i] != '-' : s[i] < '0' || s[i] > '9')
			return false;
	if (n == 10)
		return true;
	if (s[10] != 'T' && s[10] != ' ')
		return false;
	return strspn(s + 11, "0123456789:.+-Z") == n - 11;
}

static bool parse_args(int argc, char **argv, struct export_args *a)
{
	bool bad = false;

	memset(a, 0, sizeof *a);
	a->format = "csv";
	for (int i = 0; i < argc && !bad; i++) {
		if (!admin_take_value(argc, argv, &i, "--org", &a->org, &bad, "export") &&
		    !admin_take_value(argc, argv, &i, "--since", &a->since, &bad, "export") &&
		    !admin_take_value(argc, argv, &i, "--until", &a->until, &bad, "export") &&
		    !admin_take_value(argc, argv, &i, "--format", &a->format, &bad, "export") &&
		    !admin_take_value(argc, argv, &i, "--output", &a->output, &bad, "export")) {
			fprintf(stderr, "export: unknown argument \"%s\"\n", argv[i]);
			bad = true;
		}
	}
	if (bad)
		return false;
	if (a->org == NULL || a->since == NULL) {
		fputs("export: --org NAME and --since WHEN are required\n", stderr);
		return false;
	}
	if (strcmp(a->format, "csv") != 0 && strcmp(a->format, "jsonl") != 0) {
		fprintf(stderr, "export: --format is csv or jsonl, not \"%s\"\n", a->format);
		return false;
	}
	if (!plausible_time(a->since) || (a->until && !plausible_time(a->until))) {
		fprintf(stderr, "export: \"%s\" is not a date (YYYY-MM-DD) or ISO 8601 time\n",
			!plausible_time(a->since) ? a->since : a->until);
		return false;
	}
	return true;
}

/* Checks since and until with PostgreSQL (which knows 2026-02-30 is no date) and
 * gives them back as literals for the COPY. Returns 0, or ADMIN_USAGE / ADMIN_FAILED. */
static int check_times(PGconn *conn, const struct export_args *a, char **since, char **until)
{
	const char *p[2] = { a->since, a->until };
	PGresult *r = PQexecParams(conn,
				   "SELECT $1::timestamptz::text, coalesce($2::timestamptz, now())::text",
				   2, NULL, p, NULL, NULL, 0);

	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		bool bad_value = state != NULL && strncmp(state, "22", 2) == 0;

		fprintf(stderr, "export: %s", PQresultErrorMessage(r));
		PQclear(r);
		return bad_value ? ADMIN_USAGE : ADMIN_FAILED;
	}
	*since = PQescapeLiteral(conn, PQgetvalue(r, 0, 0), strlen(PQgetvalue(r, 0, 0)));
	*until = PQescapeLiteral(conn, PQgetvalue(r, 0, 1), strlen(PQgetvalue(r, 0, 1)));
	PQclear(r);
	return *since && *until ? ADMIN_OK : ADMIN_FAILED;
}

/* Writes one COPY row as the format wants it; false when out cannot be written. */
static bool write_row(FILE *out, char *row, int len, bool jsonl)
{
	if (jsonl) {
		/* COPY's text format doubles each backslash; JSON text holds no other
		 * character that format escapes (control characters are \u-escaped). */
		int w = 0;

		for (int i = 0; i < len; i++) {
			row[w++] = row[i];
			if (row[i] == '\\' && i + 1 < len && row[i + 1] == '\\')
				i++;
		}
		len = w;
		return fwrite(row, 1, (size_t)len, out) == (size_t)len;
	}
	/* RFC 4180 ends a record with CRLF; COPY ends each row with LF. */
	if (len > 0 && row[len - 1] == '\n')
		len--;
	return fwrite(row, 1, (size_t)len, out) == (size_t)len && fputs("\r\n", out) != EOF;
}

static bool stream(PGconn *conn, const char *copy, FILE *out, bool jsonl, long *rows)
{
	PGresult *r = PQexec(conn, copy);
	char *row;
	int len;
	bool ok = true;

	if (PQresultStatus(r) != PGRES_COPY_OUT) {
		log_error("export: %s", PQerrorMessage(conn));
		PQclear(r);
		return false;
	}
	PQclear(r);
	*rows = 0;
	while ((len = PQgetCopyData(conn, &row, 0)) > 0) {
		if (ok && !write_row(out, row, len, jsonl)) {
			log_error("export: cannot write the output: %s", strerror(errno));
			ok = false; /* keep reading: the connection must finish the COPY */
		}
		PQfreemem(row);
		(*rows)++;
	}
	if (len == -2)
		log_error("export: %s", PQerrorMessage(conn));
	while ((r = PQgetResult(conn)) != NULL) {
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			log_error("export: %s", PQresultErrorMessage(r));
			ok = false;
		}
		PQclear(r);
	}
	if (!jsonl && *rows > 0)
		(*rows)--; /* the header */
	return ok && len == -1;
}

int admin_export(const struct conf *c, const char *kind, int argc, char **argv)
{
	struct export_args a;
	PGconn *conn = NULL;
	FILE *out = stdout;
	char *since = NULL, *until = NULL, *org_lit = NULL, *select = NULL, *copy = NULL;
	char org_id[64];
	long rows = 0;
	int rc = ADMIN_FAILED;
	bool jsonl;

	if (!parse_args(argc, argv, &a))
		return usage();
	jsonl = strcmp(a.format, "jsonl") == 0;
	if ((conn = admin_connect(c, "export")) == NULL)
		return ADMIN_FAILED;
	if ((rc = check_times(conn, &a, &since, &until)) != ADMIN_OK)
		goto out;
	rc = ADMIN_FAILED;
	if (!admin_exec(conn, "export", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") ||
	    !admin_find_org(conn, "export", a.org, false, org_id, NULL) ||
	    !admin_set_org(conn, "export", org_id) ||
	    (org_lit = PQescapeLiteral(conn, org_id, strlen(org_id))) == NULL)
		goto out;

	bool audit = strcmp(kind, "audit") == 0;
	size_t n = strlen(audit ? AUDIT_SQL : INSPECTIONS_SQL) + strlen(org_lit) + strlen(since) +
		   strlen(until) + 1;

	if ((select = malloc(n)) == NULL || (copy = malloc(n + 128)) == NULL)
		goto out;
	if (audit)
		snprintf(select, n, AUDIT_SQL, org_lit, since, until);
	else
		snprintf(select, n, INSPECTIONS_SQL, org_lit, since, until);
	if (jsonl)
		snprintf(copy, n + 128, "COPY (SELECT row_to_json(x) FROM (%s) x) TO STDOUT", select);
	else
		snprintf(copy, n + 128, "COPY (%s) TO STDOUT WITH (FORMAT csv, HEADER)", select);

	if (a.output != NULL && (out = fopen(a.output, "w")) == NULL) {
		fprintf(stderr, "export: cannot create %s: %s\n", a.output, strerror(errno));
		rc = ADMIN_USAGE;
		goto out;
	}
	if (stream(conn, copy, out, jsonl, &rows) && fflush(out) == 0 && !ferror(out) &&
	    admin_commit(conn, "export"))
		rc = ADMIN_OK;
	fprintf(stderr, "export %s: %ld row(s)%s%s\n", kind, rows, rc == ADMIN_OK ? "" : ", FAILED",
		rc == ADMIN_OK || a.output == NULL ? "" : "; the partial file is removed");
out:
	if (out != stdout && out != NULL) {
		if (fclose(out) != 0)
			rc = ADMIN_FAILED;
		if (rc != ADMIN_OK)
			unlink(a.output);
	}
	PQfreemem(since);
	PQfreemem(until);
	PQfreemem(org_lit);
	free(select);
	free(copy);
	PQfinish(conn);
	return rc;
}
