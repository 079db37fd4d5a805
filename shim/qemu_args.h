/*
 * qemu_args.h - reading QEMU's own options the way QEMU does, for the shim
 * (which reads its command line) and the tools (doctor, record): one
 * definition of each.  Pure functions; any thread.
 */
#ifndef BHRR_QEMU_ARGS_H
#define BHRR_QEMU_ARGS_H

#include <stdlib.h>
#include <string.h>

/*
 * The vCPU count an -smp value asks for: "4", "cpus=4,...", else maxcpus=
 * (QEMU's default for cpus), else the topology's product (sockets, dies,
 * clusters, cores, threads, books, drawers, modules); 1 for none.
 */
static inline int
qemu_smp_count(const char *v)
{
	static const char *const parts[] = { "sockets=", "dies=", "clusters=", "cores=",
					     "threads=", "books=", "drawers=", "modules=" };
	long n = 0, max = 0, topo = 1;
	int have_topo = 0;

	if (v == NULL)
		return 1;
	if (*v >= '0' && *v <= '9')
		return atoi(v);
	for (const char *p = v; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
		if (strncmp(p, "cpus=", 5) == 0)
			n = atol(p + 5);
		if (strncmp(p, "maxcpus=", 8) == 0)
			max = atol(p + 8);
		for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
			if (strncmp(p, parts[i], strlen(parts[i])) == 0) {
				topo *= atol(p + strlen(parts[i]));
				have_topo = 1;
			}
	}
	return (int)(n > 0 ? n : max > 0 ? max : have_topo ? topo : 1);
}

#endif
