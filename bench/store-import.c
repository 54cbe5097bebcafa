/* bench/store-import — import throughput and storage saving of libwdstore.
 *
 *   store-import MONGO_URL REDIS_URL [MESSAGES]
 *
 * Generates MESSAGES messages (default 300): a text part plus, in every
 * third message, one of five 200 KiB base64 attachments (so attachments
 * repeat), and stores them twice, side by side in one run:
 *   1. baseline: each raw message inserted as one document {raw: Binary}
 *      with libmongoc (what any store must at least do);
 *   2. wd_store_message_add(): parse, externalise and de-duplicate
 *      attachments, allocate UID/MODSEQ, write the WildDuck document and the
 *      journal entry.
 * Prints messages/s and MB/s for both, their ratio, and the storage ratio
 * (bytes of message documents + attachment chunks) / raw bytes. Every
 * message is read back and compared, so the figures are for correct work. */
#include "wd-base64.h"
#include "wd-buffer.h"
#include "wd-config.h"
#include "wd-log.h"
#include "wd-mime-tree.h"
#include "wd-store-message.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t collection_bytes(mongoc_database_t *db, const char *name)
{
	bson_t *cmd = BCON_NEW("collStats", BCON_UTF8(name));
	bson_t reply;
	bson_error_t error;
	int64_t size = -1;
	if (mongoc_database_command_simple(db, cmd, NULL, &reply, &error)) {
		bson_iter_t iter;
		if (bson_iter_init_find(&iter, &reply, "size"))
			size = bson_iter_as_int64(&iter);
	}
	bson_destroy(&reply);
	bson_destroy(cmd);
	return size;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: store-import MONGO_URL REDIS_URL [MESSAGES]\n");
		return 2;
	}
	int count = argc > 3 ? atoi(argv[3]) : 300;
	wd_log_init("bench", WD_LOG_SINK_STDERR, WD_LOG_ERROR);
	mongoc_init();
	mongoc_log_set_handler(NULL, NULL);

	/* corpus */
	struct wd_buffer attachments[5];
	srand(42);
	for (int a = 0; a < 5; a++) {
		size_t len = 200 * 1024;
		uint8_t *raw = malloc(len);
		for (size_t i = 0; i < len; i++)
			raw[i] = (uint8_t)rand();
		attachments[a] = (struct wd_buffer)WD_BUFFER_INIT;
		wd_base64_encode(raw, len, 76, &attachments[a]);
		free(raw);
	}
	struct wd_buffer *messages = calloc((size_t)count, sizeof(*messages));
	uint64_t raw_bytes = 0;
	for (int i = 0; i < count; i++) {
		struct wd_buffer *m = &messages[i];
		wd_buffer_printf(m, "From: sender%d@example.com\r\nTo: user@example.org\r\n"
				 "Subject: benchmark message %d\r\nMessage-ID: <%d@bench>\r\n"
				 "Date: Thu, 1 Jan 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
				 "Content-Type: multipart/mixed; boundary=BB\r\n\r\n--BB\r\n"
				 "Content-Type: text/plain; charset=utf-8\r\n\r\n", i, i, i);
		for (int l = 0; l < 40; l++)
			wd_buffer_printf(m, "Line %d of message %d, some ordinary text to fill it.\r\n", l, i);
		if (i % 3 == 0) {
			wd_buffer_printf(m, "--BB\r\nContent-Type: application/pdf\r\n"
					 "Content-Transfer-Encoding: base64\r\n\r\n");
			struct wd_buffer *att = &attachments[(i / 3) % 5];
			wd_buffer_append(m, wd_buffer_bytes(att), att->len);
			wd_buffer_append_str(m, "\r\n");
		}
		wd_buffer_append_str(m, "--BB--\r\n");
		raw_bytes += m->len;
	}

	/* baseline: raw documents straight through libmongoc */
	char url[600];
	snprintf(url, sizeof(url), "%s-bench-raw-%d", argv[1], (int)time(NULL));
	mongoc_client_t *client = mongoc_client_new(url);
	mongoc_collection_t *coll = mongoc_client_get_collection(client,
		mongoc_uri_get_database(mongoc_client_get_uri(client)), "raw");
	double t0 = now();
	for (int i = 0; i < count; i++) {
		bson_t *doc = BCON_NEW("raw", BCON_BIN(BSON_SUBTYPE_BINARY, wd_buffer_bytes(&messages[i]),
						       (uint32_t)messages[i].len));
		bson_error_t error;
		if (!mongoc_collection_insert_one(coll, doc, NULL, NULL, &error)) {
			fprintf(stderr, "baseline insert: %s\n", error.message);
			return 1;
		}
		bson_destroy(doc);
	}
	double baseline = now() - t0;
	mongoc_collection_destroy(coll);
	mongoc_client_destroy(client);

	/* libwdstore */
	char text[1024], *error = NULL;
	snprintf(text, sizeof(text), "[dbs]\nmongo = \"%s-bench-wd-%d\"\nredis = \"%s\"\n", argv[1],
		 (int)time(NULL), argv[2]);
	struct wd_config *config = wd_config_parse("bench.toml", text, strlen(text), &error);
	struct wd_store *store = wd_store_open(config, &error);
	if (store == NULL) {
		fprintf(stderr, "open: %s\n", error);
		return 1;
	}
	struct wd_store_index_report report;
	wd_store_ensure_indexes(store, &report, &error);
	bson_oid_t user, mailbox;
	bson_oid_init(&user, NULL);
	bson_oid_init(&mailbox, NULL);
	mongoc_client_t *c = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *mb = wd_store_collection(store, c, WD_STORE_DB_MAIN, "mailboxes");
	bson_t *doc = BCON_NEW("_id", BCON_OID(&mailbox), "user", BCON_OID(&user), "path",
			       BCON_UTF8("INBOX"), "uidNext", BCON_INT32(1), "modifyIndex",
			       BCON_INT32(0), "retention", BCON_INT32(0));
	bson_error_t berror;
	mongoc_collection_insert_one(mb, doc, NULL, NULL, &berror);
	bson_destroy(doc);
	mongoc_collection_destroy(mb);
	wd_store_client_release(store, WD_STORE_DB_MAIN, c);

	bson_oid_t *ids = calloc((size_t)count, sizeof(*ids));
	t0 = now();
	for (int i = 0; i < count; i++) {
		struct wd_message_add req = { .raw = wd_buffer_bytes(&messages[i]),
					      .len = messages[i].len, .source = "IMPORT",
					      .decode_base64 = true };
		struct wd_message_added added;
		if (wd_store_message_add(store, &mailbox, &req, &added, &error) < 0) {
			fprintf(stderr, "add: %s\n", error);
			return 1;
		}
		ids[i] = added.id;
	}
	double wd = now() - t0;

	/* read back and compare (timed: open + read of the whole message) */
	t0 = now();
	for (int i = 0; i < count; i++) {
		struct wd_message_reader *r = wd_store_message_open_id(store, &ids[i], &error);
		struct wd_buffer back = WD_BUFFER_INIT;
		bool eof = false;
		while (r != NULL && !eof)
			wd_message_reader_read(r, &back, &eof, &error);
		wd_message_reader_close(&r);
		if (back.len != messages[i].len ||
		    memcmp(wd_buffer_bytes(&back), wd_buffer_bytes(&messages[i]), back.len) != 0) {
			fprintf(stderr, "message %d did not come back byte for byte\n", i);
			return 1;
		}
		wd_buffer_release(&back);
	}
	double read_whole = now() - t0;
	/* BODY[HEADER] and BODY[1]<0.100> through the stored layout */
	t0 = now();
	for (int i = 0; i < count; i++) {
		uint32_t one = 1;
		struct wd_mime_section_spec header = { .type = WD_MIME_SECTION_HEADER };
		struct wd_mime_section_spec part = { .path = &one, .path_len = 1,
						     .type = WD_MIME_SECTION_BODY };
		for (int k = 0; k < 2; k++) {
			struct wd_message_reader *r = wd_store_message_open_id(store, &ids[i], &error);
			struct wd_buffer back = WD_BUFFER_INIT;
			bool eof = false;
			if (r == NULL || wd_message_reader_select(r, k == 0 ? &header : &part, 0,
								  k == 0 ? UINT64_MAX : 100, &error) < 0) {
				fprintf(stderr, "section: %s\n", error);
				return 1;
			}
			while (!eof)
				wd_message_reader_read(r, &back, &eof, &error);
			wd_message_reader_close(&r);
			wd_buffer_release(&back);
		}
	}
	double read_sections = now() - t0;

	c = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_database_t *db = mongoc_client_get_database(c, wd_store_db_name(store, WD_STORE_DB_MAIN));
	int64_t msg_bytes = collection_bytes(db, "messages");
	int64_t chunk_bytes = collection_bytes(db, "attachments.chunks");
	int64_t file_bytes = collection_bytes(db, "attachments.files");
	mongoc_database_destroy(db);
	wd_store_client_release(store, WD_STORE_DB_MAIN, c);

	double mb_raw = (double)raw_bytes / 1e6;
	printf("messages: %d, raw %.1f MB\n", count, mb_raw);
	printf("baseline (raw documents):  %8.1f msg/s  %6.2f MB/s\n", count / baseline, mb_raw / baseline);
	printf("wd_store_message_add():    %8.1f msg/s  %6.2f MB/s\n", count / wd, mb_raw / wd);
	printf("throughput ratio wd/baseline: %.2f\n", baseline / wd);
	printf("read whole message:        %8.1f msg/s  %6.2f MB/s\n", count / read_whole,
	       mb_raw / read_whole);
	printf("read section (HEADER, 1<0.100>): %8.1f sections/s\n", 2 * count / read_sections);
	if (msg_bytes >= 0 && chunk_bytes >= 0)
		printf("stored: messages %.1f MB + attachment chunks %.1f MB + files %.2f MB = %.2f of raw\n",
		       (double)msg_bytes / 1e6, (double)chunk_bytes / 1e6, (double)file_bytes / 1e6,
		       (double)(msg_bytes + chunk_bytes + file_bytes) / (double)raw_bytes);
	else
		printf("stored: collStats not available on this server\n");
	wd_store_close(&store);
	return 0;
}
