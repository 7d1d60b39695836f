/* auth.c: "Authorization: Bearer <token>" to the SHA-256 that every endpoint's
 * statement carries. Only the hash ever leaves this file, and neither the token nor
 * its hash is logged. PostgreSQL judges the credential in the same statement as the
 * endpoint's work, so expiry and revocation take effect on the next request. */
#include "auth.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <openssl/evp.h>

#include "db.h"
#include "endpoint.h"
#include "log.h"

#define TOKEN_MAX 512

static struct db_stmt st_credential = {
	"credential", "SELECT api_credential(p_token_sha256 => $1, p_access => $2)", 2, 0
};

void auth_hash_token(const char *token, size_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	static const char hex[] = "0123456789abcdef";
	/* Fetched once per process: given EVP_sha256(), OpenSSL 3 looks the algorithm up
	 * in its provider store on every EVP_Digest() call, which costs more than hashing
	 * a token (callgrind: 8 100 instructions a call, 3 400 with the algorithm fetched
	 * once). Never freed; if the fetch fails, the implicit fetch still works. */
	static EVP_MD *sha256;

	if (!sha256)
		sha256 = EVP_MD_fetch(NULL, "SHA2-256", NULL);
	EVP_Digest(token, len, md, &mdlen, sha256 ? sha256 : EVP_sha256(), NULL);
	for (unsigned i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
}

/* RFC 6750 b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
static bool is_b64token(const char *t, size_t len)
{
	size_t i = 0;
	while (i < len && (strchr("-._~+/", t[i]) || (t[i] >= '0' && t[i] <= '9') ||
			   (t[i] >= 'a' && t[i] <= 'z') || (t[i] >= 'A' && t[i] <= 'Z')) && t[i])
		i++;
	if (i == 0)
		return false;
	while (i < len && t[i] == '=')
		i++;
	return i == len;
}

/* Returns the one Authorization header, or NULL when there is none or more than one:
 * two credentials in one request are ambiguous, so neither is trusted. */
static const char *single_authorization(const struct request *req)
{
	const char *found = NULL;
	static const char key[] = "HTTP_AUTHORIZATION=";
	for (char **e = req->fcgi->envp; e && *e; e++) {
		if (strncmp(*e, key, sizeof(key) - 1) == 0) {
			if (found)
				return NULL;
			found = *e + sizeof(key) - 1;
		}
	}
	return found;
}

bool auth_bearer(struct request *req)
{
	const char *h = single_authorization(req);
	char hash[65];

	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return false;
	const char *tok = h + 7;
	while (*tok == ' ')
		tok++;
	size_t len = strlen(tok);
	if (len == 0 || len > TOKEN_MAX || !is_b64token(tok, len))
		return false;
	auth_hash_token(tok, len, hash);
	/* bytea's hex input format */
	snprintf(req->token_sha256, sizeof req->token_sha256, "\\x%s", hash);
	return true;
}

static bool confirm(struct request *req, const char *access)
{
	const char *params[2] = { NULL, access };
	PGresult *r = endpoint_exec(req, &st_credential, params, true);
	bool ok = r && PQresultStatus(r) == PGRES_TUPLES_OK;

	if (!ok)
		respond_db_failure(req, r, "Internal server error");
	PQclear(r);
	return ok;
}

bool auth_confirm_scanner(struct request *req) { return confirm(req, "scanner"); }
bool auth_confirm_user(struct request *req) { return confirm(req, "user"); }
