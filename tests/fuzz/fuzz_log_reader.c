/*
 * fuzz_log_reader.c - libFuzzer target: the reader must never crash, hang
 * or read out of bounds, whatever the bytes.  Built by 'make fuzz' with
 * clang -fsanitize=fuzzer,address,undefined; run by tests/shell/35-log-fuzz.bats
 * from the seed corpus in tests/fuzz/corpus/ (made by gen_corpus.c).
 *
 * Each input is read twice: as it is, which mostly exercises framing and
 * damage handling (a mutated byte almost always breaks a checksum), and
 * with every physical record's checksum made right, so that mutations
 * reach the batch and event decoders too.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "log.h"
#include "log_format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
void *fuzz_malloc(size_t n);
void fuzz_free(void *p);

/*
 * Every reader allocates a 1 MiB record buffer.  Under ASan that is an
 * mmap, shadow poisoning and munmap per input: ~4 ms, capping the fuzzer
 * at ~250 inputs a second.  The build compiles log_reader.c with
 * -Dmalloc=fuzz_malloc -Dfree=fuzz_free, and one such buffer is reused.
 * It is a global, so ASan still catches an overflow past its end.
 */
#define REC_BYTES (1u << 20)
static uint8_t rec_buf[REC_BYTES];
static int rec_busy;

void *
fuzz_malloc(size_t n)
{
	if (n == REC_BYTES && !rec_busy) {
		rec_busy = 1;
		return rec_buf;
	}
	return malloc(n);
}

void
fuzz_free(void *p)
{
	if (p == rec_buf)
		rec_busy = 0;
	else
		free(p);
}

static void
read_all(const uint8_t *data, size_t size)
{
	char err[256];
	int code;
	struct log_reader *r = log_reader_open_mem(data, size, &code, err, sizeof(err));
	struct log_event ev;
	volatile size_t sink = 0;

	if (r == NULL)
		return;
	while (log_reader_next(r, &ev) == 1) {
		uint64_t cb;
		const char *name;

		if (ev.text)
			sink += strnlen(ev.text, ev.text_len);
		if (ev.text2)
			sink += strnlen(ev.text2, ev.text2_len);
		if (log_reader_ident(r, ev.ident, &cb, &name) == 0 && name)
			sink += strlen(name);
		if (log_reader_string(r, ev.id))
			sink++;
	}
	sink += log_reader_damage_count(r) + log_reader_torn_tail(r) + log_reader_file_size(r);
	log_reader_close(r);
}

/* Rewrite the checksum of every whole physical record, block by block. */
static void
fix_checksums(uint8_t *p, size_t n)
{
	for (size_t b = 0; b < n; b += LOG_BLOCK) {
		size_t end = n - b < LOG_BLOCK ? n : b + LOG_BLOCK;

		for (size_t pos = b; end - pos >= LOG_HEADER;) {
			uint16_t l;

			memcpy(&l, p + pos + 4, 2);
			if (LOG_HEADER + (size_t)l > end - pos)
				break;
			if (l == 0 && p[pos + 6] == LOG_ZERO)
				break; /* zero fill: keep it zero */
			uint32_t sum = XXH32(p + pos + 6, 1 + (size_t)l, LOG_SEED);

			memcpy(p + pos, &sum, 4);
			pos += LOG_HEADER + l;
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	read_all(data, size);

	uint8_t *fixed = malloc(size ? size : 1);

	if (fixed == NULL)
		return 0;
	memcpy(fixed, data, size);
	fix_checksums(fixed, size);
	if (memcmp(fixed, data, size) != 0)
		read_all(fixed, size);
	free(fixed);
	return 0;
}
