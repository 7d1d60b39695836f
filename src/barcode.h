/* barcode.h: what a scan engine sends, turned into the barcode it read.
 *
 * A scanner in keyboard-wedge mode types the barcode and then Enter or Tab (some
 * add spaces), and may be set to send an AIM symbology identifier first (ISO/IEC
 * 15424: "]" + a code letter + a modifier digit, e.g. "]C1" for GS1-128). A GS1
 * barcode carries FNC1 as the group separator 0x1D inside its data. These rules
 * apply wherever a barcode arrives: the LP look-up path and scans into a session. */
#ifndef SCANQA_BARCODE_H
#define SCANQA_BARCODE_H

#include <stddef.h>

/* At most 256 characters, counted in UTF-16 code units as JavaScript's .length. */
#define BARCODE_MAX 256
/* UTF-8 bytes of BARCODE_MAX UTF-16 code units at most (3 bytes per unit). */
#define BARCODE_BYTES_MAX (BARCODE_MAX * 3)

/* Normalises s[0..len) as a scanner sent it: strips surrounding spaces, tabs, CRs
 * and LFs, then a leading AIM symbology identifier ("]" ASCII letter, digit), then
 * surrounding whitespace again. Returns NULL with the barcode in out (NUL-terminated,
 * at most BARCODE_BYTES_MAX bytes), or the Zod-style message of why it is none:
 * empty, invalid UTF-8, over BARCODE_MAX, or a control character (C0 or DEL) other
 * than the GS1 group separator 0x1D. out is then the empty string. */
const char *barcode_normalize(const char *s, size_t len, char out[BARCODE_BYTES_MAX + 1]);

/* The same checks on an already normalised barcode: NULL when s[0..len) is one,
 * otherwise the message. */
const char *barcode_problem(const char *s, size_t len);

#endif
