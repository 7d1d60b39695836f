/* qr.c: a token as a QR code, in a terminal or as a PNG image (see qr.h). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <png.h>
#include <qrencode.h>

#include "log.h"
#include "qr.h"

#define QUIET_ZONE 4     /* modules of light margin (ISO/IEC 18004 asks for 4) */
#define PNG_SCALE 8      /* pixels a module */

/* Encodes text; NULL after logging why. Bit 0 of each module byte is 1 for dark. */
static QRcode *encode(const char *text)
{
	QRcode *q = QRcode_encodeString8bit(text, 0, QR_ECLEVEL_M);

	if (q == NULL)
		log_error("qr: cannot encode the token as a QR code: %s", strerror(errno));
	return q;
}

/* Dark module at (x, y) of the code drawn with its quiet zone; outside is light. */
static bool dark(const QRcode *q, int x, int y)
{
	x -= QUIET_ZONE;
	y -= QUIET_ZONE;
	if (x < 0 || y < 0 || x >= q->width || y >= q->width)
		return false;
	return q->data[y * q->width + x] & 1;
}

bool qr_print_terminal(FILE *out, const char *text)
{
	QRcode *q = encode(text);
	int size;

	if (q == NULL)
		return false;
	size = q->width + 2 * QUIET_ZONE;
	/* Each cell shows the module above in its upper half and the one below in its
	 * lower half; the foreground (white) draws light modules. */
	for (int y = 0; y < size; y += 2) {
		fputs("\033[40;97m", out);
		for (int x = 0; x < size; x++) {
			bool top = !dark(q, x, y), bottom = y + 1 < size && !dark(q, x, y + 1);

			fputs(top && bottom ? "\u2588" : top ? "\u2580" : bottom ? "\u2584" : " ", out);
		}
		fputs("\033[0m\n", out);
	}
	QRcode_free(q);
	if (fflush(out) != 0) {
		log_error("qr: cannot write the QR code: %s", strerror(errno));
		return false;
	}
	return true;
}

FILE *qr_png_open(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	FILE *f;

	/* The image is a credential: whatever mode an existing file had, it gets 0600. */
	if (fd < 0 || fchmod(fd, 0600) != 0) {
		log_error("qr: cannot create %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	if ((f = fdopen(fd, "wb")) == NULL) {
		log_error("qr: cannot open %s: %s", path, strerror(errno));
		close(fd);
	}
	return f;
}

void qr_png_discard(FILE *f, const char *path)
{
	fclose(f);
	unlink(path);
}

bool qr_png_write(FILE *f, const char *text)
{
	QRcode *q = encode(text);
	png_structp png = NULL;
	png_infop info = NULL;
	png_bytep row = NULL;
	bool ok = false;
	int size;

	if (q == NULL)
		goto out;
	size = (q->width + 2 * QUIET_ZONE) * PNG_SCALE;
	png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	if (png == NULL || (info = png_create_info_struct(png)) == NULL ||
	    (row = png_malloc(png, (size + 7) / 8)) == NULL) {
		log_error("qr: out of memory writing the PNG");
		goto out;
	}
	/* libpng reports its errors by longjmp here; row is freed with png. */
	if (setjmp(png_jmpbuf(png))) {
		log_error("qr: writing the PNG failed");
		goto out;
	}
	png_init_io(png, f);
	png_set_IHDR(png, info, size, size, 1, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
		     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	png_write_info(png, info);
	for (int y = 0; y < size; y++) {
		memset(row, 0, (size + 7) / 8);
		for (int x = 0; x < size; x++)
			if (!dark(q, x / PNG_SCALE, y / PNG_SCALE))   /* 1 is white */
				row[x / 8] |= (png_byte)(0x80 >> (x % 8));
		png_write_row(png, row);
	}
	png_write_end(png, NULL);
	ok = true;
out:
	if (png != NULL) {
		png_free(png, row);
		png_destroy_write_struct(&png, info ? &info : NULL);
	}
	QRcode_free(q);
	if (fclose(f) != 0 && ok) {
		log_error("qr: cannot write the PNG: %s", strerror(errno));
		ok = false;
	}
	return ok;
}
