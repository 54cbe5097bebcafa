/* The selected mailbox's UIDs in sequence order, compact.
 *
 * Layout: an array of blocks in UID order. A block is one of
 *
 *   RUNS    runs {first, count} of consecutive UIDs (at most RUNS_SEAL runs
 *           while appending; expunges may split runs up to RUNS_SPLIT, then
 *           the block is cut in two);
 *   LIST16  UIDs as 16-bit offsets from the block's first UID;
 *   LIST32  UIDs as they are.
 *
 * Appends go to the last block. When it is a RUNS block with RUNS_SEAL runs
 * and a new run must start, the block is sealed: if a list holds its UIDs in
 * fewer bytes (most runs are single UIDs), it becomes one, and a new RUNS
 * block starts. Hence a mailbox without gaps is a single run, and one where
 * no two UIDs are consecutive costs 2 bytes per UID (LIST16) plus a block
 * header per RUNS_SEAL UIDs, or 4 (LIST32) when the gaps exceed 65535.
 *
 * Each block caches the number of messages before it (seq0) so that a
 * sequence number is found by binary search. An expunge invalidates the
 * cache of the blocks after it (seq_valid), repaired on the next lookup by
 * sequence number: a burst of expunges costs one pass, not one per expunge.
 * The cache is the only state a const lookup writes. */
#include "imap-view.h"

#include "wd-result.h"
#include "wd-store-fdb.h"
#include "wd-store-user.h"

#include <stdlib.h>
#include <string.h>

#define RUNS_SEAL 64
#define RUNS_SPLIT 128

enum block_kind {
	BLOCK_RUNS,
	BLOCK_LIST16,
	BLOCK_LIST32,
};

struct run {
	uint32_t first, count;
};

struct block {
	uint32_t first_uid, last_uid;
	uint32_t count; /* messages */
	uint32_t seq0;  /* messages in the blocks before; valid below seq_valid */
	uint32_t n;     /* runs or list entries */
	uint32_t cap;
	enum block_kind kind;
	union {
		struct run *runs;
		uint16_t *off16;
		uint32_t *uid32;
		void *any;
	} d;
};

struct wd_imap_view {
	struct block *blocks;
	size_t nblocks, cap;
	uint32_t count;
	size_t seq_valid; /* blocks[0 .. seq_valid) have a correct seq0 */
};

/* A message's place: block, entry (run or list index), offset in the run. */
struct pos {
	size_t block;
	uint32_t entry, off;
};

struct wd_imap_view *wd_imap_view_create(void)
{
	return calloc(1, sizeof(struct wd_imap_view));
}

void wd_imap_view_destroy(struct wd_imap_view **_view)
{
	struct wd_imap_view *view = *_view;

	if (view == NULL)
		return;
	*_view = NULL;
	for (size_t i = 0; i < view->nblocks; i++)
		free(view->blocks[i].d.any);
	free(view->blocks);
	free(view);
}

uint32_t wd_imap_view_count(const struct wd_imap_view *view)
{
	return view->count;
}

uint32_t wd_imap_view_last_uid(const struct wd_imap_view *view)
{
	return view->nblocks == 0 ? 0 : view->blocks[view->nblocks - 1].last_uid;
}

size_t wd_imap_view_memory(const struct wd_imap_view *view)
{
	size_t bytes = sizeof(*view) + view->cap * sizeof(struct block);

	for (size_t i = 0; i < view->nblocks; i++) {
		const struct block *b = &view->blocks[i];
		size_t entry = b->kind == BLOCK_RUNS ? sizeof(struct run) :
			       b->kind == BLOCK_LIST16 ? sizeof(uint16_t) : sizeof(uint32_t);
		bytes += (size_t)b->cap * entry;
	}
	return bytes;
}

static uint32_t block_uid_at(const struct block *b, uint32_t entry, uint32_t off)
{
	switch (b->kind) {
	case BLOCK_RUNS:
		return b->d.runs[entry].first + off;
	case BLOCK_LIST16:
		return b->first_uid + b->d.off16[entry];
	case BLOCK_LIST32:
		return b->d.uid32[entry];
	}
	return 0;
}

/* Index within the block (0-based) of a position. */
static uint32_t block_index_of(const struct block *b, uint32_t entry, uint32_t off)
{
	if (b->kind != BLOCK_RUNS)
		return entry;
	uint32_t k = off;
	for (uint32_t i = 0; i < entry; i++)
		k += b->d.runs[i].count;
	return k;
}

static void block_pos_at_index(const struct block *b, uint32_t k, uint32_t *entry_r,
			       uint32_t *off_r)
{
	if (b->kind != BLOCK_RUNS) {
		*entry_r = k;
		*off_r = 0;
		return;
	}
	uint32_t i = 0;
	while (k >= b->d.runs[i].count) {
		k -= b->d.runs[i].count;
		i++;
	}
	*entry_r = i;
	*off_r = k;
}

/* Position of the first UID >= uid inside block b (which has last_uid >= uid). */
static void block_ceil(const struct block *b, uint32_t uid, uint32_t *entry_r, uint32_t *off_r)
{
	uint32_t lo = 0, hi = b->n;

	*off_r = 0;
	switch (b->kind) {
	case BLOCK_RUNS:
		for (uint32_t i = 0; i < b->n; i++) {
			const struct run *r = &b->d.runs[i];
			if (uid < r->first + r->count) {
				*entry_r = i;
				*off_r = uid > r->first ? uid - r->first : 0;
				return;
			}
		}
		*entry_r = b->n; /* not reached: last_uid >= uid */
		return;
	case BLOCK_LIST16:
		while (lo < hi) {
			uint32_t mid = lo + (hi - lo) / 2;
			if ((uint32_t)b->first_uid + b->d.off16[mid] < uid)
				lo = mid + 1;
			else
				hi = mid;
		}
		break;
	case BLOCK_LIST32:
		while (lo < hi) {
			uint32_t mid = lo + (hi - lo) / 2;
			if (b->d.uid32[mid] < uid)
				lo = mid + 1;
			else
				hi = mid;
		}
		break;
	}
	*entry_r = lo;
}

static void fix_seq(const struct wd_imap_view *cview)
{
	struct wd_imap_view *view = (struct wd_imap_view *)cview; /* cache only */
	size_t i = view->seq_valid;

	if (i >= view->nblocks)
		return;
	uint32_t seq0 = i == 0 ? 0 : view->blocks[i - 1].seq0 + view->blocks[i - 1].count;
	for (; i < view->nblocks; i++) {
		view->blocks[i].seq0 = seq0;
		seq0 += view->blocks[i].count;
	}
	view->seq_valid = view->nblocks;
}

/* Block holding sequence number seq (1..count). */
static size_t block_of_seq(const struct wd_imap_view *view, uint32_t seq)
{
	size_t lo = 0, hi = view->nblocks;

	fix_seq(view);
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (view->blocks[mid].seq0 < seq)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

static bool pos_at_seq(const struct wd_imap_view *view, uint32_t seq, struct pos *pos)
{
	if (seq == 0 || seq > view->count)
		return false;
	pos->block = block_of_seq(view, seq);
	const struct block *b = &view->blocks[pos->block];
	block_pos_at_index(b, seq - b->seq0 - 1, &pos->entry, &pos->off);
	return true;
}

/* First block whose last UID is >= uid (nblocks when none). */
static size_t block_ceil_uid(const struct wd_imap_view *view, uint32_t uid)
{
	size_t lo = 0, hi = view->nblocks;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (view->blocks[mid].last_uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static uint32_t pos_uid(const struct wd_imap_view *view, const struct pos *pos)
{
	const struct block *b = &view->blocks[pos->block];
	return block_uid_at(b, pos->entry, pos->off);
}

static void pos_advance(const struct wd_imap_view *view, struct pos *pos)
{
	const struct block *b = &view->blocks[pos->block];

	if (b->kind == BLOCK_RUNS && pos->off + 1 < b->d.runs[pos->entry].count) {
		pos->off++;
		return;
	}
	pos->off = 0;
	if (++pos->entry < b->n)
		return;
	pos->entry = 0;
	pos->block++;
}

uint32_t wd_imap_view_uid(const struct wd_imap_view *view, uint32_t seq)
{
	struct pos pos;

	if (!pos_at_seq(view, seq, &pos))
		return 0;
	return pos_uid(view, &pos);
}

uint32_t wd_imap_view_seq_ceil(const struct wd_imap_view *view, uint32_t uid)
{
	size_t bi = block_ceil_uid(view, uid);
	uint32_t entry, off;

	if (bi == view->nblocks)
		return view->count + 1;
	fix_seq(view);
	const struct block *b = &view->blocks[bi];
	if (uid <= b->first_uid)
		return b->seq0 + 1;
	block_ceil(b, uid, &entry, &off);
	return b->seq0 + block_index_of(b, entry, off) + 1;
}

uint32_t wd_imap_view_seq(const struct wd_imap_view *view, uint32_t uid)
{
	uint32_t seq = wd_imap_view_seq_ceil(view, uid);

	if (seq > view->count || wd_imap_view_uid(view, seq) != uid)
		return 0;
	return seq;
}

/* ---- changes ---- */

static int reserve(void **data, uint32_t *cap, uint32_t need, size_t size)
{
	if (need <= *cap)
		return WD_OK;
	uint32_t ncap = *cap < 4 ? 4 : *cap * 2;
	while (ncap < need)
		ncap *= 2;
	void *p = realloc(*data, (size_t)ncap * size);
	if (p == NULL)
		return WD_ERROR;
	*data = p;
	*cap = ncap;
	return WD_OK;
}

static struct block *insert_block(struct wd_imap_view *view, size_t at)
{
	if (view->nblocks == view->cap) {
		size_t ncap = view->cap < 4 ? 4 : view->cap * 2;
		struct block *p = realloc(view->blocks, ncap * sizeof(*p));
		if (p == NULL)
			return NULL;
		view->blocks = p;
		view->cap = ncap;
	}
	memmove(&view->blocks[at + 1], &view->blocks[at],
		(view->nblocks - at) * sizeof(struct block));
	view->nblocks++;
	memset(&view->blocks[at], 0, sizeof(struct block));
	if (view->seq_valid > at)
		view->seq_valid = at;
	return &view->blocks[at];
}

static void remove_block(struct wd_imap_view *view, size_t at)
{
	free(view->blocks[at].d.any);
	memmove(&view->blocks[at], &view->blocks[at + 1],
		(view->nblocks - at - 1) * sizeof(struct block));
	view->nblocks--;
	if (view->seq_valid > at)
		view->seq_valid = at;
}

/* A full RUNS block becomes a list when that is smaller. */
static void seal(struct block *b)
{
	size_t runs_bytes = (size_t)b->n * sizeof(struct run);
	bool narrow = b->last_uid - b->first_uid <= UINT16_MAX;
	size_t list_bytes = (size_t)b->count * (narrow ? sizeof(uint16_t) : sizeof(uint32_t));

	if (b->kind != BLOCK_RUNS || list_bytes >= runs_bytes)
		return;
	void *list = malloc(list_bytes);
	if (list == NULL)
		return; /* stays as runs: correct, only larger */
	uint32_t k = 0;
	for (uint32_t i = 0; i < b->n; i++) {
		const struct run *r = &b->d.runs[i];
		for (uint32_t j = 0; j < r->count; j++, k++) {
			if (narrow)
				((uint16_t *)list)[k] = (uint16_t)(r->first + j - b->first_uid);
			else
				((uint32_t *)list)[k] = r->first + j;
		}
	}
	free(b->d.any);
	b->d.any = list;
	b->kind = narrow ? BLOCK_LIST16 : BLOCK_LIST32;
	b->n = b->cap = b->count;
}

int wd_imap_view_append(struct wd_imap_view *view, uint32_t uid)
{
	struct block *b = view->nblocks == 0 ? NULL : &view->blocks[view->nblocks - 1];

	if (uid == 0 || view->count == UINT32_MAX || (b != NULL && uid <= b->last_uid))
		return WD_ERROR;
	if (b != NULL && b->kind == BLOCK_RUNS) {
		struct run *last = &b->d.runs[b->n - 1];
		if (last->first + last->count == uid) {
			last->count++;
			goto added;
		}
		if (b->n < RUNS_SEAL) {
			if (reserve(&b->d.any, &b->cap, b->n + 1, sizeof(struct run)) < 0)
				return WD_ERROR;
			b->d.runs[b->n++] = (struct run){ uid, 1 };
			goto added;
		}
	}
	struct run *runs = malloc(4 * sizeof(*runs));
	if (runs == NULL)
		return WD_ERROR;
	bool seq_ok = view->seq_valid == view->nblocks;
	size_t at = view->nblocks;
	struct block *nb = insert_block(view, at);
	if (nb == NULL) {
		free(runs);
		return WD_ERROR;
	}
	if (at > 0)
		seal(&view->blocks[at - 1]);
	nb->kind = BLOCK_RUNS;
	nb->d.runs = runs;
	nb->cap = 4;
	nb->n = 1;
	runs[0] = (struct run){ uid, 1 };
	nb->first_uid = uid;
	if (seq_ok) {
		nb->seq0 = view->count;
		view->seq_valid = view->nblocks;
	}
	b = nb;
	b->count = 0;
added:
	b->last_uid = uid;
	b->count++;
	view->count++;
	return WD_OK;
}

/* Cut a RUNS block with too many runs in two halves. */
static int split_block(struct wd_imap_view *view, size_t bi)
{
	uint32_t half = view->blocks[bi].n / 2;
	struct run *runs = malloc((size_t)(view->blocks[bi].n - half) * sizeof(*runs));

	if (runs == NULL)
		return WD_ERROR;
	struct block *nb = insert_block(view, bi + 1);
	if (nb == NULL) {
		free(runs);
		return WD_ERROR;
	}
	struct block *b = &view->blocks[bi];
	nb->kind = BLOCK_RUNS;
	nb->d.runs = runs;
	nb->n = nb->cap = b->n - half;
	memcpy(runs, &b->d.runs[half], (size_t)nb->n * sizeof(*runs));
	b->n = half;
	nb->count = 0;
	for (uint32_t i = 0; i < nb->n; i++)
		nb->count += runs[i].count;
	b->count -= nb->count;
	nb->first_uid = runs[0].first;
	nb->last_uid = b->last_uid;
	b->last_uid = b->d.runs[half - 1].first + b->d.runs[half - 1].count - 1;
	return WD_OK;
}

int wd_imap_view_expunge(struct wd_imap_view *view, uint32_t uid, uint32_t *seq_r)
{
	size_t bi = block_ceil_uid(view, uid);
	uint32_t entry, off;

	if (bi == view->nblocks || uid < view->blocks[bi].first_uid)
		return WD_ERROR;
	struct block *b = &view->blocks[bi];
	block_ceil(b, uid, &entry, &off);
	if (entry >= b->n || block_uid_at(b, entry, off) != uid)
		return WD_ERROR;
	if (b->kind == BLOCK_RUNS && b->d.runs[entry].count > 1 && off > 0 &&
	    off + 1 < b->d.runs[entry].count) {
		/* the middle of a run: split it (may need memory, so first) */
		if (reserve(&b->d.any, &b->cap, b->n + 1, sizeof(struct run)) < 0)
			return WD_ERROR;
		struct run *r = &b->d.runs[entry];
		memmove(r + 2, r + 1, (size_t)(b->n - entry - 1) * sizeof(*r));
		r[1] = (struct run){ uid + 1, r->count - off - 1 };
		r->count = off;
		b->n++;
	} else if (b->kind == BLOCK_RUNS) {
		struct run *r = &b->d.runs[entry];
		if (off == 0)
			r->first++;
		r->count--;
		if (r->count == 0) {
			memmove(r, r + 1, (size_t)(b->n - entry - 1) * sizeof(*r));
			b->n--;
		}
	} else {
		size_t size = b->kind == BLOCK_LIST16 ? sizeof(uint16_t) : sizeof(uint32_t);
		uint8_t *p = (uint8_t *)b->d.any + entry * size;
		memmove(p, p + size, (b->n - entry - 1) * size);
		b->n--;
	}
	if (seq_r != NULL) {
		fix_seq(view);
		*seq_r = b->seq0 + block_index_of(b, entry, off) + 1;
	}
	b->count--;
	view->count--;
	if (view->seq_valid > bi + 1)
		view->seq_valid = bi + 1;
	if (b->count == 0) {
		remove_block(view, bi);
		return WD_OK;
	}
	/* first and last UID (a LIST16 keeps its base: offsets stay valid) */
	if (b->kind != BLOCK_LIST16)
		b->first_uid = block_uid_at(b, 0, 0);
	if (b->kind == BLOCK_RUNS)
		b->last_uid = b->d.runs[b->n - 1].first + b->d.runs[b->n - 1].count - 1;
	else
		b->last_uid = block_uid_at(b, b->n - 1, 0);
	if (b->kind == BLOCK_RUNS && b->n > RUNS_SPLIT && split_block(view, bi) == WD_OK) {
		/* expunges shredded a run: the halves become lists when smaller
		   (on failure a block just stays long) */
		seal(&view->blocks[bi]);
		seal(&view->blocks[bi + 1]);
	}
	return WD_OK;
}

/* ---- sets ---- */

/* A normalised copy of `in` in the arena with "*" = star. */
static int resolved_copy(struct wd_arena *arena, const struct wd_imap_seqset *in, uint32_t star,
			 struct wd_imap_seqset *out)
{
	if (in->saved)
		return WD_ERROR; /* "$" is the session's to substitute */
	*out = *in;
	out->ranges = wd_arena_alloc(arena, (in->count + 1) * sizeof(*out->ranges));
	if (out->ranges == NULL)
		return WD_ERROR;
	if (in->count > 0)
		memcpy(out->ranges, in->ranges, in->count * sizeof(*out->ranges));
	wd_imap_seqset_resolve(out, star);
	return WD_OK;
}

/* Ranges collected while walking, moved into the arena at the end. */
struct range_acc {
	struct wd_imap_seq_range *r;
	size_t n, cap;
	bool failed;
};

static void acc_add(struct range_acc *acc, uint32_t first, uint32_t last)
{
	if (acc->n > 0 && acc->r[acc->n - 1].last + 1 == first) {
		acc->r[acc->n - 1].last = last;
		return;
	}
	if (acc->n == acc->cap) {
		size_t ncap = acc->cap < 16 ? 16 : acc->cap * 2;
		struct wd_imap_seq_range *p = realloc(acc->r, ncap * sizeof(*p));
		if (p == NULL) {
			acc->failed = true;
			return;
		}
		acc->r = p;
		acc->cap = ncap;
	}
	acc->r[acc->n++] = (struct wd_imap_seq_range){ first, last };
}

static int acc_finish(struct range_acc *acc, struct wd_arena *arena, struct wd_imap_seqset *set_r)
{
	memset(set_r, 0, sizeof(*set_r));
	if (!acc->failed) {
		set_r->ranges = wd_arena_alloc(arena, (acc->n + 1) * sizeof(*set_r->ranges));
		if (set_r->ranges != NULL) {
			if (acc->n > 0)
				memcpy(set_r->ranges, acc->r, acc->n * sizeof(*acc->r));
			set_r->count = acc->n;
		}
	}
	free(acc->r);
	return acc->failed || set_r->ranges == NULL ? WD_ERROR : WD_OK;
}

/* The UIDs of `n` messages from `pos` on, run by run. */
static void walk_uids(const struct wd_imap_view *view, struct pos pos, uint64_t n,
		      struct range_acc *acc)
{
	while (n > 0 && pos.block < view->nblocks) {
		const struct block *b = &view->blocks[pos.block];
		uint32_t uid = block_uid_at(b, pos.entry, pos.off);
		uint64_t len = 1;
		if (b->kind == BLOCK_RUNS)
			len = b->d.runs[pos.entry].count - pos.off;
		if (len > n)
			len = n;
		acc_add(acc, uid, (uint32_t)(uid + len - 1));
		n -= len;
		/* next entry */
		pos.off = 0;
		if (++pos.entry >= b->n) {
			pos.entry = 0;
			pos.block++;
		}
	}
}

int wd_imap_view_seqs_to_uids(const struct wd_imap_view *view, struct wd_arena *arena,
			      const struct wd_imap_seqset *seqs, struct wd_imap_seqset *uids_r)
{
	struct wd_imap_seqset set;
	struct range_acc acc = { 0 };
	struct pos pos;

	if (resolved_copy(arena, seqs, view->count, &set) < 0)
		return WD_ERROR;
	for (size_t i = 0; i < set.count; i++) {
		uint32_t first = set.ranges[i].first, last = set.ranges[i].last;
		if (first > view->count)
			break;
		if (last > view->count)
			last = view->count;
		if (pos_at_seq(view, first, &pos))
			walk_uids(view, pos, (uint64_t)last - first + 1, &acc);
	}
	return acc_finish(&acc, arena, uids_r);
}

int wd_imap_view_to_uidset(const struct wd_imap_view *view, struct wd_arena *arena,
			   struct wd_imap_seqset *uids_r)
{
	struct range_acc acc = { 0 };
	struct pos pos = { 0, 0, 0 };

	walk_uids(view, pos, view->count, &acc);
	return acc_finish(&acc, arena, uids_r);
}

int wd_imap_view_uids_to_seqs(const struct wd_imap_view *view, struct wd_arena *arena,
			      const struct wd_imap_seqset *uids, struct wd_imap_seqset *seqs_r)
{
	struct wd_imap_seqset set;
	size_t n = 0;

	if (resolved_copy(arena, uids, wd_imap_view_last_uid(view), &set) < 0)
		return WD_ERROR;
	/* each UID range is one range of sequence numbers: reuse the copy */
	for (size_t i = 0; i < set.count; i++) {
		uint32_t first = wd_imap_view_seq_ceil(view, set.ranges[i].first);
		uint32_t after = set.ranges[i].last == UINT32_MAX ?
				 view->count + 1 :
				 wd_imap_view_seq_ceil(view, set.ranges[i].last + 1);
		if (first < after)
			set.ranges[n++] = (struct wd_imap_seq_range){ first, after - 1 };
	}
	set.count = n;
	set.has_star = false;
	wd_imap_seqset_normalize(&set);
	*seqs_r = set;
	return WD_OK;
}

int wd_imap_view_iter_init(struct wd_imap_view_iter *iter, const struct wd_imap_view *view,
			   struct wd_arena *arena, const struct wd_imap_seqset *set, bool uid)
{
	memset(iter, 0, sizeof(*iter));
	iter->view = view;
	if (uid)
		return wd_imap_view_uids_to_seqs(view, arena, set, &iter->set);
	return resolved_copy(arena, set, view->count, &iter->set);
}

bool wd_imap_view_iter_next(struct wd_imap_view_iter *iter, uint32_t *seq_r, uint32_t *uid_r)
{
	const struct wd_imap_view *view = iter->view;
	struct pos pos;

	while (iter->range < iter->set.count) {
		const struct wd_imap_seq_range *r = &iter->set.ranges[iter->range];
		if (iter->next_seq < r->first)
			iter->next_seq = r->first;
		if (iter->next_seq > r->last || iter->next_seq > view->count) {
			iter->range = r->first > view->count ? iter->set.count : iter->range + 1;
			continue;
		}
		uint32_t seq = (uint32_t)iter->next_seq++;
		if (iter->pos_seq != 0 && iter->pos_seq + 1 == seq) {
			pos = (struct pos){ iter->pos_block, iter->pos_entry, iter->pos_off };
			pos_advance(view, &pos);
		} else if (!pos_at_seq(view, seq, &pos)) {
			return false;
		}
		iter->pos_seq = seq;
		iter->pos_block = pos.block;
		iter->pos_entry = pos.entry;
		iter->pos_off = pos.off;
		*seq_r = seq;
		*uid_r = pos_uid(view, &pos);
		return true;
	}
	return false;
}

/* ---- loading ---- */

static uint64_t iter_uint(const bson_iter_t *it)
{
	switch (bson_iter_type(it)) {
	case BSON_TYPE_INT32:
		return bson_iter_int32(it) < 0 ? 0 : (uint64_t)bson_iter_int32(it);
	case BSON_TYPE_INT64:
		return bson_iter_int64(it) < 0 ? 0 : (uint64_t)bson_iter_int64(it);
	case BSON_TYPE_DOUBLE:
		return bson_iter_double(it) < 1 ? 0 : (uint64_t)bson_iter_double(it);
	default:
		return 0;
	}
}

void wd_imap_mailbox_state_free(struct wd_imap_mailbox_state *state)
{
	for (size_t i = 0; i < state->flag_count; i++)
		free(state->flags[i]);
	free(state->flags);
	state->flags = NULL;
	state->flag_count = 0;
}

static int read_mailbox(mongoc_collection_t *coll, const bson_oid_t *mailbox,
			struct wd_imap_mailbox_state *state, char **error_r)
{
	bson_t *filter = BCON_NEW("_id", BCON_OID(mailbox));
	bson_t *opts = BCON_NEW("limit", BCON_INT64(1), "projection", "{", "uidValidity",
				BCON_INT32(1), "uidNext", BCON_INT32(1), "modifyIndex",
				BCON_INT32(1), "flags", BCON_INT32(1), "}");
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
	const bson_t *doc;
	bson_error_t error;
	int ret = WD_STORE_ERR_NOT_FOUND;
	bson_iter_t it, child;

	if (mongoc_cursor_next(cursor, &doc)) {
		ret = WD_OK;
		if (bson_iter_init_find(&it, doc, "uidValidity"))
			state->uid_validity = (uint32_t)iter_uint(&it);
		if (bson_iter_init_find(&it, doc, "uidNext"))
			state->uid_next = (uint32_t)iter_uint(&it);
		if (bson_iter_init_find(&it, doc, "modifyIndex"))
			state->highest_modseq = iter_uint(&it);
		if (bson_iter_init_find(&it, doc, "flags") && BSON_ITER_HOLDS_ARRAY(&it) &&
		    bson_iter_recurse(&it, &child)) {
			while (bson_iter_next(&child)) {
				if (!BSON_ITER_HOLDS_UTF8(&child))
					continue;
				char **p = realloc(state->flags,
						   (state->flag_count + 1) * sizeof(*p));
				char *flag = strdup(bson_iter_utf8(&child, NULL));
				if (p == NULL || flag == NULL) {
					free(flag);
					if (p != NULL)
						state->flags = p;
					ret = WD_STORE_ERR_DATABASE;
					*error_r = strdup("out of memory");
					break;
				}
				state->flags = p;
				state->flags[state->flag_count++] = flag;
			}
		}
	} else if (mongoc_cursor_error(cursor, &error)) {
		ret = WD_STORE_ERR_DATABASE;
		*error_r = bson_strdup_printf("mailbox: %s", error.message);
	} else {
		*error_r = strdup("no such mailbox");
	}
	mongoc_cursor_destroy(cursor);
	bson_destroy(filter);
	bson_destroy(opts);
	return ret;
}

struct fdb_load {
	struct wd_imap_view *view;
	struct wd_imap_mailbox_state *state;
};

static int fdb_load_one(void *ctx, const struct wd_store_fdb_msg *msg)
{
	struct fdb_load *load = ctx;

	if (msg->uid <= wd_imap_view_last_uid(load->view))
		return 0;
	if (wd_imap_view_append(load->view, msg->uid) < 0)
		return WD_STORE_ERR_DATABASE;
	if (load->state->first_unseen == 0 && msg->unseen)
		load->state->first_unseen = wd_imap_view_count(load->view);
	return 0;
}

static int read_uids(struct wd_store *store, mongoc_collection_t *coll, const bson_oid_t *mailbox,
		     struct wd_imap_view *view, struct wd_imap_mailbox_state *state, char **error_r)
{
	/* FerretDB on SQLite: the metadata index, no document decoded */
	struct fdb_load load = { view, state };
	int fret = wd_store_fdb_messages(store, mailbox, 1, UINT32_MAX, fdb_load_one, &load,
					 error_r);
	if (fret != WD_STORE_FDB_NONE) {
		if (fret != WD_OK && *error_r == NULL)
			*error_r = strdup("out of memory");
		return fret;
	}

	bson_t *filter = BCON_NEW("mailbox", BCON_OID(mailbox));
	bson_t *opts = BCON_NEW("projection", "{", "_id", BCON_INT32(0), "uid", BCON_INT32(1),
				"unseen", BCON_INT32(1), "}", "sort", "{", "uid", BCON_INT32(1),
				"}", "batchSize", BCON_INT32(10000));
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
	const bson_t *doc;
	bson_error_t error;
	bson_iter_t it;
	int ret = WD_OK;

	while (mongoc_cursor_next(cursor, &doc)) {
		if (!bson_iter_init_find(&it, doc, "uid"))
			continue;
		uint64_t uid = iter_uint(&it);
		if (uid == 0 || uid > UINT32_MAX || uid <= wd_imap_view_last_uid(view))
			continue; /* never stored by a writer; duplicates are skipped */
		if (wd_imap_view_append(view, (uint32_t)uid) < 0) {
			ret = WD_STORE_ERR_DATABASE;
			*error_r = strdup("out of memory");
			break;
		}
		if (state->first_unseen == 0 && bson_iter_init_find(&it, doc, "unseen") &&
		    BSON_ITER_HOLDS_BOOL(&it) && bson_iter_bool(&it))
			state->first_unseen = wd_imap_view_count(view);
	}
	if (ret == WD_OK && mongoc_cursor_error(cursor, &error)) {
		ret = WD_STORE_ERR_DATABASE;
		*error_r = bson_strdup_printf("messages: %s", error.message);
	}
	mongoc_cursor_destroy(cursor);
	bson_destroy(filter);
	bson_destroy(opts);
	return ret;
}

int wd_imap_view_load_state(struct wd_store *store, const bson_oid_t *mailbox,
			    struct wd_imap_view **view_r, struct wd_imap_mailbox_state *state_r,
			    char **error_r)
{
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *boxes = wd_store_collection(store, client, WD_STORE_DB_MAIN, "mailboxes");
	mongoc_collection_t *messages =
		wd_store_collection(store, client, WD_STORE_DB_MAIN, "messages");
	struct wd_imap_view *view = wd_imap_view_create();
	int ret;

	*error_r = NULL;
	*view_r = NULL;
	memset(state_r, 0, sizeof(*state_r));
	if (view == NULL) {
		*error_r = strdup("out of memory");
		ret = WD_STORE_ERR_DATABASE;
	} else {
		ret = read_mailbox(boxes, mailbox, state_r, error_r);
		if (ret == WD_OK)
			ret = read_uids(store, messages, mailbox, view, state_r, error_r);
	}
	mongoc_collection_destroy(messages);
	mongoc_collection_destroy(boxes);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	if (ret != WD_OK) {
		wd_imap_view_destroy(&view);
		wd_imap_mailbox_state_free(state_r);
		return ret;
	}
	state_r->exists = wd_imap_view_count(view);
	*view_r = view;
	return WD_OK;
}

int wd_imap_view_load(struct wd_store *store, const bson_oid_t *mailbox,
		      struct wd_imap_view **view_r, uint64_t *highest_modseq_r, char **error_r)
{
	struct wd_imap_mailbox_state state;
	int ret = wd_imap_view_load_state(store, mailbox, view_r, &state, error_r);

	if (ret == WD_OK) {
		*highest_modseq_r = state.highest_modseq;
		wd_imap_mailbox_state_free(&state);
	}
	return ret;
}
