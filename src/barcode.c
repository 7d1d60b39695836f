/* barcode.c: a scanner's input turned into the barcode it read (see barcode.h). */
#include "barcode.h"

#include <stdbool.h>
#include <string.h>

#include "validate.h"

#define GS1_GROUP_SEPARATOR 0x1D /* FNC1 inside GS1-128 data */

static bool wedge_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool ascii_letter(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static void trim(const char **s, size_t *len)
{
	while (*len > 0 && wedge_space((*s)[0])) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && wedge_space((*s)[*len - 1]))
		(*len)--;
}

const char *barcode_problem(const char *s, size_t len)
{
	if (len == 0)
		return "String must contain at least 1 character(s)";
	if (!utf8_valid(s, len))
		return "Barcode must be valid UTF-8";
	if (utf16_len(s, len) > BARCODE_MAX)
		return "String must contain at most 256 character(s)";
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c < 0x20 && c != GS1_GROUP_SEPARATOR) || c == 0x7f)
			return "Barcode must not contain control characters";
	}
	return NULL;
}

const char *barcode_normalize(const char *s, size_t len, char out[BARCODE_BYTES_MAX + 1])
{
	const char *problem;

	out[0] = '\0';
	trim(&s, &len);
	if (len >= 3 && s[0] == ']' && ascii_letter(s[1]) && s[2] >= '0' && s[2] <= '9') {
		s += 3;
		len -= 3;
		trim(&s, &len);
	}
	if ((problem = barcode_problem(s, len)))
		return problem;
	/* Valid UTF-8 of at most BARCODE_MAX UTF-16 units fits: 3 bytes per unit at most. */
	if (len > BARCODE_BYTES_MAX)
		return "String must contain at most 256 character(s)";
	memcpy(out, s, len);
	out[len] = '\0';
	return NULL;
}
