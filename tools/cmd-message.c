/* wdctl message import | message export
 *
 * Import takes .eml files (one message, bytes as they are), mbox files (a
 * file starting with "From "), and Maildir folders (the files of cur/ and
 * new/; flags from the ":2,FLAGS" suffix). mbox is split at lines that
 * start with "From " after an empty line; the empty line before a separator
 * belongs to the separator, and ">From " quoting (mboxrd) is undone, so a
 * message that went through mbox comes back as it was written into it.
 * Progress goes to the terminal when stderr is one. */
#include "wdctl.h"
#include "wd-buffer.h"
#include "wd-store-message.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_MESSAGE (64u * 1024 * 1024)

struct import {
	struct wdctl *ctl;
	bson_oid_t mailbox;
	unsigned done, failed;
	uint64_t bytes;
	bool tty;
};

static int read_file(const char *path, struct wd_buffer *out)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return -1;
	uint8_t chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (wd_buffer_append(out, chunk, n) < 0) {
			fclose(f);
			errno = ENOMEM;
			return -1;
		}
	}
	int err = ferror(f);
	fclose(f);
	return err ? -1 : 0;
}

static void progress(struct import *im)
{
	if (im->tty)
		fprintf(stderr, "\rimported %u messages, %.1f MB%s", im->done,
			(double)im->bytes / 1e6, im->failed > 0 ? " (with failures)" : "");
}

static void import_one(struct import *im, const uint8_t *raw, size_t len, const char *const *flags,
		       size_t flag_count, const char *what)
{
	if (len > MAX_MESSAGE) {
		fprintf(stderr, "%swdctl: %s: larger than 64 MiB, skipped\n", im->tty ? "\n" : "", what);
		im->failed++;
		return;
	}
	struct wd_message_add req = { .raw = raw, .len = len, .flags = flags,
				      .flag_count = flag_count, .source = "IMPORT",
				      .decode_base64 = true };
	struct wd_message_added added;
	char *error = NULL;
	if (wd_store_message_add(im->ctl->store, &im->mailbox, &req, &added, &error) < 0) {
		fprintf(stderr, "%swdctl: %s: %s\n", im->tty ? "\n" : "", what, error);
		free(error);
		im->failed++;
		return;
	}
	im->done++;
	im->bytes += len;
	progress(im);
}

static bool is_from_line(const uint8_t *p, size_t left)
{
	return left >= 5 && memcmp(p, "From ", 5) == 0;
}

/* Append one mbox message, undoing ">From " quoting. */
static void mbox_message(struct import *im, const uint8_t *p, size_t len, const char *path)
{
	struct wd_buffer msg = WD_BUFFER_INIT;
	size_t i = 0;
	while (i < len) {
		const uint8_t *nl = memchr(p + i, '\n', len - i);
		size_t line_end = nl != NULL ? (size_t)(nl - p) + 1 : len;
		size_t k = i;
		while (k < line_end && p[k] == '>')
			k++;
		bool quoted = k > i && is_from_line(p + k, line_end - k);
		wd_buffer_append(&msg, p + i + (quoted ? 1 : 0), line_end - i - (quoted ? 1 : 0));
		i = line_end;
	}
	char what[600];
	snprintf(what, sizeof(what), "%s, message %u", path, im->done + im->failed + 1);
	import_one(im, wd_buffer_bytes(&msg), msg.len, NULL, 0, what);
	wd_buffer_release(&msg);
}

static bool is_empty_line(const uint8_t *p, size_t len)
{
	return (len == 1 && p[0] == '\n') || (len == 2 && p[0] == '\r' && p[1] == '\n');
}

/* A separator is a "From " line at the start of the file or after an empty
   line; a message runs from after its separator to before that empty line
   (the last one to before the final empty line, which mbox writers add). */
static void import_mbox(struct import *im, const uint8_t *p, size_t len, const char *path)
{
	size_t msg_start = 0, prev_start = 0;
	bool in_message = false, prev_empty = true;
	size_t ls = 0;
	while (ls < len) {
		const uint8_t *nl = memchr(p + ls, '\n', len - ls);
		size_t le = nl != NULL ? (size_t)(nl - p) + 1 : len;
		if (prev_empty && is_from_line(p + ls, le - ls)) {
			if (in_message)
				mbox_message(im, p + msg_start, prev_start - msg_start, path);
			msg_start = le;
			in_message = true;
		}
		prev_empty = is_empty_line(p + ls, le - ls);
		prev_start = ls;
		ls = le;
	}
	if (in_message)
		mbox_message(im, p + msg_start, (prev_empty ? prev_start : len) - msg_start, path);
}

/* Maildir flags after ":2," → IMAP flags. */
static size_t maildir_flags(const char *name, const char **flags)
{
	const char *info = strstr(name, ":2,");
	size_t n = 0;
	if (info == NULL)
		return 0;
	for (const char *f = info + 3; *f != '\0'; f++) {
		switch (*f) {
		case 'S': flags[n++] = "\\Seen"; break;
		case 'R': flags[n++] = "\\Answered"; break;
		case 'F': flags[n++] = "\\Flagged"; break;
		case 'T': flags[n++] = "\\Deleted"; break;
		case 'D': flags[n++] = "\\Draft"; break;
		default: break;
		}
	}
	return n;
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void import_maildir(struct import *im, const char *dir)
{
	static const char *const subdirs[] = { "cur", "new" };
	for (size_t s = 0; s < 2; s++) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", dir, subdirs[s]);
		DIR *d = opendir(path);
		if (d == NULL)
			continue;
		char **names = NULL;
		size_t count = 0, cap = 0;
		struct dirent *ent;
		while ((ent = readdir(d)) != NULL) {
			if (ent->d_name[0] == '.')
				continue;
			if (count == cap) {
				cap = cap == 0 ? 64 : cap * 2;
				names = realloc(names, cap * sizeof(*names));
			}
			names[count++] = strdup(ent->d_name);
		}
		closedir(d);
		/* Maildir names start with the delivery time: sorted = delivery order */
		qsort(names, count, sizeof(*names), compare_names);
		for (size_t i = 0; i < count; i++) {
			char file[8192];
			snprintf(file, sizeof(file), "%s/%s", path, names[i]);
			struct wd_buffer raw = WD_BUFFER_INIT;
			if (read_file(file, &raw) < 0) {
				fprintf(stderr, "wdctl: %s: %s\n", file, strerror(errno));
				im->failed++;
			} else {
				const char *flags[8];
				size_t n = maildir_flags(names[i], flags);
				import_one(im, wd_buffer_bytes(&raw), raw.len, flags, n, file);
			}
			wd_buffer_release(&raw);
			free(names[i]);
		}
		free(names);
	}
}

int wdctl_message_import(struct wdctl *ctl, int argc, char **argv)
{
	if (argc < 3)
		return wdctl_fail("usage: wdctl message import <user> <mailbox> <file.eml|mbox|Maildir>...");
	struct import im = { .ctl = ctl, .tty = isatty(STDERR_FILENO) };
	bson_oid_t user;
	if (wdctl_find_user(ctl, argv[0], &user) < 0 ||
	    wdctl_find_mailbox(ctl, &user, argv[1], &im.mailbox) < 0)
		return WDCTL_EXIT_FAIL;
	for (int i = 2; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "wdctl: %s: %s\n", argv[i], strerror(errno));
			im.failed++;
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			import_maildir(&im, argv[i]);
			continue;
		}
		struct wd_buffer raw = WD_BUFFER_INIT;
		if (read_file(argv[i], &raw) < 0) {
			fprintf(stderr, "wdctl: %s: %s\n", argv[i], strerror(errno));
			im.failed++;
			continue;
		}
		if (is_from_line(wd_buffer_bytes(&raw), raw.len))
			import_mbox(&im, wd_buffer_bytes(&raw), raw.len, argv[i]);
		else
			import_one(&im, wd_buffer_bytes(&raw), raw.len, NULL, 0, argv[i]);
		wd_buffer_release(&raw);
	}
	if (im.tty)
		fputc('\n', stderr);
	printf("imported %u messages (%llu bytes), %u failed\n", im.done,
	       (unsigned long long)im.bytes, im.failed);
	return im.failed > 0 ? WDCTL_EXIT_FAIL : WDCTL_EXIT_OK;
}

int wdctl_message_export(struct wdctl *ctl, int argc, char **argv)
{
	if (argc != 3)
		return wdctl_fail("usage: wdctl message export <user> <mailbox> <uid>");
	bson_oid_t user, mailbox;
	if (wdctl_find_user(ctl, argv[0], &user) < 0 ||
	    wdctl_find_mailbox(ctl, &user, argv[1], &mailbox) < 0)
		return WDCTL_EXIT_FAIL;
	char *end;
	unsigned long uid = strtoul(argv[2], &end, 10);
	if (*end != '\0' || uid == 0 || uid > UINT32_MAX)
		return wdctl_fail("message export: \"%s\" is not a UID", argv[2]);
	char *error = NULL;
	struct wd_message_reader *reader =
		wd_store_message_open(ctl->store, &mailbox, (uint32_t)uid, &error);
	if (reader == NULL) {
		wdctl_fail("message export: %s", error);
		free(error);
		return WDCTL_EXIT_FAIL;
	}
	bool eof = false;
	int ret = WDCTL_EXIT_OK;
	while (!eof) {
		struct wd_buffer chunk = WD_BUFFER_INIT;
		if (wd_message_reader_read(reader, &chunk, &eof, &error) < 0) {
			wdctl_fail("message export: %s", error);
			free(error);
			ret = WDCTL_EXIT_FAIL;
			wd_buffer_release(&chunk);
			break;
		}
		if (chunk.len > 0 && fwrite(wd_buffer_bytes(&chunk), 1, chunk.len, stdout) != chunk.len) {
			ret = wdctl_fail("message export: write failed: %s", strerror(errno));
			wd_buffer_release(&chunk);
			break;
		}
		wd_buffer_release(&chunk);
	}
	wd_message_reader_close(&reader);
	if (fflush(stdout) != 0)
		ret = wdctl_fail("message export: write failed: %s", strerror(errno));
	return ret;
}
