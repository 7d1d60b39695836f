/* qr.h: a token as a QR code (libqrencode), for a scanner to sign in by scanning
 * it: drawn in a terminal, or written as a PNG image (libpng). */
#ifndef SCANQA_QR_H
#define SCANQA_QR_H

#include <stdbool.h>
#include <stdio.h>

/* Prints text as a QR code (error correction M, byte mode) with its 4-module quiet
 * zone, two modules per character cell with UTF-8 half blocks, in explicit ANSI
 * colours (white on black) so it scans on light and dark terminals alike. Returns
 * false after logging why. */
bool qr_print_terminal(FILE *out, const char *text);

/* Creates (or truncates) path with mode 0600, refusing a symbolic link, for a
 * qr_png_write later; returns NULL after logging why. */
FILE *qr_png_open(const char *path);
/* Writes text's QR code as a 1-bit greyscale PNG, 8 pixels a module, and closes
 * f (whatever happens). Returns false after logging why. */
bool qr_png_write(FILE *f, const char *text);
/* Closes f and removes path: the token it was meant for was not issued. */
void qr_png_discard(FILE *f, const char *path);

#endif
