/* Corpus replayer for fuzz targets built without libFuzzer (gcc builds).
 *
 * Runs LLVMFuzzerTestOneInput() on every file of the corpus folders given as
 * arguments, then on deterministic mutations of each (truncations, bit flips,
 * byte insertions and splices of two inputs) so that the fuzz suite catches
 * crashes even where clang is not used. Exits 0 when every input returned. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REPLAY_MAX_INPUT (1024 * 1024)
#define MAX_FILES 4096

static uint8_t *inputs[MAX_FILES];
static size_t input_sizes[MAX_FILES];
static size_t input_count;

static uint32_t rng_state = 0x9e3779b9u;
static uint32_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

static void run(const uint8_t *data, size_t size)
{
	/* Copy to an exact-size heap block so ASan sees overreads. */
	uint8_t *copy = malloc(size == 0 ? 1 : size);
	if (copy == NULL)
		abort();
	memcpy(copy, data, size);
	LLVMFuzzerTestOneInput(copy, size);
	free(copy);
}

static void load_dir(const char *path)
{
	DIR *dir = opendir(path);
	if (dir == NULL) {
		fprintf(stderr, "replay: cannot open corpus %s\n", path);
		exit(1);
	}
	struct dirent *ent;
	while ((ent = readdir(dir)) != NULL && input_count < MAX_FILES) {
		if (ent->d_name[0] == '.')
			continue;
		char file[4096];
		snprintf(file, sizeof(file), "%s/%s", path, ent->d_name);
		FILE *f = fopen(file, "rb");
		if (f == NULL)
			continue;
		uint8_t *data = malloc(REPLAY_MAX_INPUT);
		size_t n = data == NULL ? 0 : fread(data, 1, REPLAY_MAX_INPUT, f);
		fclose(f);
		if (data == NULL)
			continue;
		uint8_t *fitted = realloc(data, n == 0 ? 1 : n);
		if (fitted != NULL)
			data = fitted;
		inputs[input_count] = data;
		input_sizes[input_count++] = n;
	}
	closedir(dir);
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		load_dir(argv[i]);
	if (input_count == 0) {
		fprintf(stderr, "replay: empty corpus\n");
		return 1;
	}
	size_t runs = 0;
	uint8_t *buf = malloc(2 * REPLAY_MAX_INPUT + 16);
	for (size_t i = 0; i < input_count; i++) {
		const uint8_t *in = inputs[i];
		size_t size = input_sizes[i];
		run(in, size);
		for (size_t cut = 0; cut < size; cut += 1 + size / 64)
			run(in, cut);
		for (int m = 0; m < 200; m++) {
			size_t n = size;
			memcpy(buf, in, size);
			switch (rng() % 4) {
			case 0:
				if (n > 0)
					buf[rng() % n] ^= (uint8_t)(1u << (rng() % 8));
				break;
			case 1:
				if (n > 0)
					buf[rng() % n] = (uint8_t)rng();
				break;
			case 2: {
				size_t at = n == 0 ? 0 : rng() % n;
				memmove(buf + at + 1, buf + at, n - at);
				buf[at] = (uint8_t)rng();
				n++;
				break;
			}
			default: {
				/* Splice: our prefix, then another input's suffix. */
				size_t j = rng() % input_count;
				size_t at = n == 0 ? 0 : rng() % n;
				size_t from = input_sizes[j] == 0 ? 0 : rng() % input_sizes[j];
				size_t take = input_sizes[j] - from;
				memcpy(buf + at, inputs[j] + from, take);
				n = at + take;
				break;
			}
			}
			run(buf, n);
			runs++;
		}
	}
	printf("replay: %zu corpus inputs, %zu mutations, no crash\n", input_count, runs);
	for (size_t i = 0; i < input_count; i++)
		free(inputs[i]);
	free(buf);
	return 0;
}
