/*
 * fuzz_log_reader.c - libFuzzer target: the reader must never crash, hang
 * or read out of bounds, whatever the bytes.  Built by 'make fuzz' with
 * clang -fsanitize=fuzzer,address,undefined; run by tests/shell/35-log-fuzz.bats.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	int code;
	struct log_reader *r = log_reader_open_mem(data, size, &code, err, sizeof(err));
	struct log_event ev;
	volatile size_t sink = 0;

	if (r == NULL)
		return 0;
	while (log_reader_next(r, &ev) == 1) {
		uint64_t cb;
		const char *name;

		if (ev.text)
			sink += strnlen(ev.text, ev.text_len);
		if (log_reader_ident(r, ev.ident, &cb, &name) == 0 && name)
			sink += strlen(name);
		if (log_reader_string(r, ev.id))
			sink++;
	}
	log_reader_close(r);
	return 0;
}
