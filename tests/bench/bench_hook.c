/*
 * bench_hook.c - cost of a forwarding hook, measured side by side.
 *
 * Two byte-identical fixtures; one gets a forwarding hook (replacement calls
 * the trampoline), the other stays plain.  Rounds alternate between them and
 * the best round of each is kept, so machine noise hits both alike.
 *
 *   bench_hook                 print ns/call for both and the ratio
 *   bench_hook --only plain N  make N calls of one variant and nothing else
 *   bench_hook --only hooked N (for callgrind: instructions per call)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hook.h"

extern int fx_bench_plain(int);
extern int fx_bench_hooked(int);

static int (*real_hooked)(int);

/* The forwarding hook: exactly what check mode's hooks do, minus the count. */
__attribute__((noinline)) static int
hk_bench(int x)
{
	return real_hooked(x);
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Calls through a volatile pointer, so the compiler cannot inline or hoist. */
static int (*volatile target)(int);

static long
run(int (*fn)(int), long n)
{
	long acc = 0;

	target = fn;
	for (long i = 0; i < n; i++)
		acc += target((int)i);
	return acc;
}

int
main(int argc, char **argv)
{
	struct hook_info info;
	int err = hook_install_ex((void *)fx_bench_hooked, (void *)hk_bench, (void **)&real_hooked,
				  0, &info);

	if (err != 0) {
		fprintf(stderr, "bench_hook: install failed: %s: %s\n", hook_errname(err), info.detail);
		return 1;
	}
	if (argc == 4 && strcmp(argv[1], "--only") == 0) {
		long n = atol(argv[3]);
		long r = run(strcmp(argv[2], "hooked") == 0 ? fx_bench_hooked : fx_bench_plain, n);

		printf("%ld\n", r);
		return 0;
	}

	const long n = 20 * 1000 * 1000;
	double best[2] = { 1e9, 1e9 };

	for (int round = 0; round < 10; round++) {
		for (int k = 0; k < 2; k++) {
			double t0 = now();

			run(k ? fx_bench_hooked : fx_bench_plain, n);
			double ns = (now() - t0) * 1e9 / (double)n;

			if (ns < best[k])
				best[k] = ns;
		}
	}
	printf("hook call cost (best of 10 alternating rounds of %ld calls)\n", n);
	printf("  unhooked        %6.2f ns/call\n", best[0]);
	printf("  forwarding hook %6.2f ns/call\n", best[1]);
	printf("  ratio hooked/unhooked %.2fx, detour adds %.2f ns/call\n", best[1] / best[0],
	       best[1] - best[0]);
	return 0;
}
