/*
 * symbols.c - see symbols.h.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "symbols.h"

static const struct qsym sym_table[QS_COUNT] = {
	[QS_AIO_BH_CALL] = { { "aio_bh_call" } },
	/* _full since 6.2; the plain name before */
	[QS_AIO_BH_SCHEDULE_ONESHOT] = { { "aio_bh_schedule_oneshot_full", "aio_bh_schedule_oneshot" } },
	[QS_QEMU_BH_SCHEDULE] = { { "qemu_bh_schedule" } },
	[QS_QEMU_BH_SCHEDULE_IDLE] = { { "qemu_bh_schedule_idle" } },
	/* before 6.2, aio_bh_new, and BHs have no name (discover_bh_names) */
	[QS_AIO_BH_NEW_FULL] = { { "aio_bh_new_full", "aio_bh_new" } },
	[QS_AIO_POLL] = { { "aio_poll" } },
	[QS_ICOUNT_START_WARP_TIMER] = { { "icount_start_warp_timer" } },
	[QS_THREAD_POOL_SUBMIT_AIO] = { { "thread_pool_submit_aio" } },
	[QS_ICOUNT_GET_RAW] = { { "icount_get_raw" } },
	[QS_TIMER_INIT_FULL] = { { "timer_init_full" } },
	[QS_TIMER_MOD_NS] = { { "timer_mod_ns" } },
	[QS_ASYNC_RUN_ON_CPU] = { { "async_run_on_cpu" } },
	/* renamed in 9.0 */
	[QS_BQL_LOCK] = { { "bql_lock_impl", "qemu_mutex_lock_iothread_impl" } },
	[QS_BQL_UNLOCK] = { { "bql_unlock", "qemu_mutex_unlock_iothread" } },
	[QS_MR_DISPATCH_READ] = { { "memory_region_dispatch_read" } },
	[QS_MR_DISPATCH_WRITE] = { { "memory_region_dispatch_write" } },
	[QS_QEMU_CLOCK_GET_NS] = { { "qemu_clock_get_ns" } },
	[QS_RUNSTATE_IS_RUNNING] = { { "runstate_is_running" } },
	[QS_QEMU_IN_VCPU_THREAD] = { { "qemu_in_vcpu_thread" } },
	[QS_QEMU_GET_AIO_CONTEXT] = { { "qemu_get_aio_context" } },
	[QS_ICOUNT_GET] = { { "icount_get" } },
	[QS_ICOUNT_TO_NS] = { { "icount_to_ns" } },
	[QS_ADD_VM_CHANGE_STATE_HANDLER] = { { "qemu_add_vm_change_state_handler" } },
	[QS_QEMU_BH_DELETE] = { { "qemu_bh_delete" } },
	[QS_ALL_CPU_THREADS_IDLE] = { { "all_cpu_threads_idle" } },
	[QS_QEMU_GET_CPU] = { { "qemu_get_cpu" } },
	[QS_QEMU_CLOCK_DEADLINE_NS_ALL] = { { "qemu_clock_deadline_ns_all" } },
	[QS_QEMU_SYSTEM_SHUTDOWN_REQUEST] = { { "qemu_system_shutdown_request" } },
	[QS_TIMER_DEL] = { { "timer_del" } },
	[QS_QEMU_BH_CANCEL] = { { "qemu_bh_cancel" } },
	[QS_EVENT_NOTIFIER_SET] = { { "event_notifier_set" } },
	[QS_MR_ADD_EVENTFD] = { { "memory_region_add_eventfd" } },
	[QS_MR_DEL_EVENTFD] = { { "memory_region_del_eventfd" } },
	[QS_AIO_SET_EVENT_NOTIFIER] = { { "aio_set_event_notifier" } },
	[QS_EVENT_NOTIFIER_SET_HANDLER] = { { "event_notifier_set_handler" } },
	/* 11.0 folded it, and the config notifier's, into one function */
	[QS_VIRTIO_SET_GUEST_FD_HANDLER] = { { "virtio_queue_set_guest_notifier_fd_handler",
					      "virtio_set_guest_notifier" } },
	[QS_CHR_FE_SET_HANDLERS_FULL] = { { "qemu_chr_fe_set_handlers_full" } },
	[QS_MONITOR_CAN_READ] = { { "monitor_can_read" } },
	[QS_CHR_FE_ACCEPT_INPUT] = { { "qemu_chr_fe_accept_input" } },
	[QS_QEMU_CHR_FIND] = { { "qemu_chr_find" } },
	[QS_RNG_BACKEND_REQUEST_ENTROPY] = { { "rng_backend_request_entropy" } },
	[QS_OBJECT_GET_TYPENAME] = { { "object_get_typename" } },
	[QS_QMP_DISPATCH] = { { "qmp_dispatch" } },
	[QS_HANDLE_HMP_COMMAND] = { { "handle_hmp_command" } },
	[QS_MAIN_LOOP_WAIT] = { { "main_loop_wait" } },
	[QS_QMP_COMMANDS] = { { "qmp_commands" } },
	[QS_QMP_FIND_COMMAND] = { { "qmp_find_command" } },
	[QS_PAUSE_ALL_VCPUS] = { { "pause_all_vcpus" } },
	[QS_RESUME_ALL_VCPUS] = { { "resume_all_vcpus" } },
	[QS_CPU_STOP_CURRENT] = { { "cpu_stop_current" } },
	[QS_QEMU_NOTIFY_EVENT] = { { "qemu_notify_event" } },
	[QS_QOBJECT_FROM_JSON] = { { "qobject_from_json" } },
	[QS_QOBJECT_TO_JSON] = { { "qobject_to_json" } },
	[QS_QOBJECT_DESTROY] = { { "qobject_destroy" } },
	[QS_QDICT_GET_TRY_STR] = { { "qdict_get_try_str" } },
	[QS_QDICT_GET_QDICT] = { { "qdict_get_qdict" } },
	[QS_QDICT_PUT_STR] = { { "qdict_put_str" } },
	[QS_MONITOR_PRINTF] = { { "monitor_printf" } },
	[QS_ERROR_FREE] = { { "error_free" } },
	/* static in 5.2 (softmmu/vl.c): optional (gate_clock.c) */
	[QS_CONFIGURE_RTC] = { { "configure_rtc" } },
	[QS_NEW_NET_QUEUE] = { { "qemu_new_net_queue" } },
	[QS_NET_QUEUE_SEND] = { { "qemu_net_queue_send" } },
	[QS_NET_QUEUE_SEND_IOV] = { { "qemu_net_queue_send_iov" } },
	[QS_DEL_NET_QUEUE] = { { "qemu_del_net_queue" } },
	[QS_NETFILTER_PASS] = { { "qemu_netfilter_pass_to_next" } },
	[QS_QEMU_GET_TIMEDATE] = { { "qemu_get_timedate" } },
	[QS_TIMERS_STATE] = { { "timers_state" } },
	[QS_USE_ICOUNT] = { { "use_icount" } },
	[QS_RTC_CLOCK] = { { "rtc_clock" } },
	[QS_TIMER_MOD_ANTICIPATE_NS] = { { "timer_mod_anticipate_ns" } },
	[QS_QEMU_SYSTEM_RESET] = { { "qemu_system_reset" } },
	[QS_QEMU_INIT_MAIN_LOOP] = { { "qemu_init_main_loop" } },
	[QS_QEMU_SYSTEM_DEBUG_REQUEST] = { { "qemu_system_debug_request" } },
	[QS_CPU_SINGLE_STEP] = { { "cpu_single_step" } },
	[QS_QEMU_SET_FD_HANDLER] = { { "qemu_set_fd_handler" } },
	[QS_VM_START] = { { "vm_start" } },
	[QS_VM_STOP] = { { "vm_stop" } },
	[QS_RUNSTATE_SET] = { { "runstate_set" } },
	[QS_CPU_WATCHPOINT_INSERT] = { { "cpu_watchpoint_insert" } },
	[QS_CPU_WATCHPOINT_REMOVE_BY_REF] = { { "cpu_watchpoint_remove_by_ref" } },
	[QS_CPU_BREAKPOINT_REMOVE_ALL] = { { "cpu_breakpoint_remove_all" } },
	[QS_CPU_WATCHPOINT_REMOVE_ALL] = { { "cpu_watchpoint_remove_all" } },
	[QS_BLK_AIO_PREADV] = { { "blk_aio_preadv" } },
	[QS_BLK_AIO_PWRITEV] = { { "blk_aio_pwritev" } },
	[QS_BLK_AIO_FLUSH] = { { "blk_aio_flush" } },
	[QS_BLK_AIO_PDISCARD] = { { "blk_aio_pdiscard" } },
	[QS_BLK_AIO_PWRITE_ZEROES] = { { "blk_aio_pwrite_zeroes" } },
	[QS_BLK_AIO_IOCTL] = { { "blk_aio_ioctl" } },
	[QS_BLK_INC_IN_FLIGHT] = { { "blk_inc_in_flight" } },
	[QS_BLK_DEC_IN_FLIGHT] = { { "blk_dec_in_flight" } },
	[QS_ICOUNT_PREPARE_FOR_RUN] = { { "icount_prepare_for_run" } },
	[QS_ICOUNT_PROCESS_DATA] = { { "icount_process_data" } },
	[QS_ICOUNT_HANDLE_DEADLINE] = { { "icount_handle_deadline" } },
	[QS_CPU_EXIT] = { { "cpu_exit" } },
	[QS_CPU_EXEC_INTERRUPT] = { { "x86_cpu_exec_interrupt", "arm_cpu_exec_interrupt" } },
	[QS_CPU_DO_INTERRUPT] = { { "x86_cpu_do_interrupt", "arm_cpu_do_interrupt" } },
	[QS_CPU_THREAD_IS_IDLE] = { { "cpu_thread_is_idle" } },
	[QS_CPU_EXEC_HALT] = { { "x86_cpu_exec_halt" } },
};

const char *const qemu_known_builds[] = {
	"d9541fd67c4ea37f9ca7fca0f5096f32b3b7e7e0", "Debian 12 qemu-system-x86 1:7.2+dfsg-7+deb12u18+b3",
	"0fbbd5ca8d2d0a32532049e20739f3e0d521c5ed", "Debian 12 backports qemu-system-x86 1:10.0.2+ds-2+deb13u1~bpo12+1",
	NULL,
};

const char *
qemu_known_build(const char *build_id)
{
	for (int i = 0; qemu_known_builds[i]; i += 2)
		if (strcmp(build_id, qemu_known_builds[i]) == 0)
			return qemu_known_builds[i + 1];
	return NULL;
}

const char *
qsym_name(const struct qemu_build *b, enum qsym_id id)
{
	return b->sym[id].found ? b->sym[id].found : sym_table[id].names[0];
}

int
qsym_bh_named(const struct qemu_build *b)
{
	const char *f = b->sym[QS_AIO_BH_NEW_FULL].found;

	return f != NULL && strcmp(f, "aio_bh_new_full") == 0;
}

struct phdr_ctx {
	struct qemu_build *b;
};

/*
 * The GNU build-id in the ELF notes from @p to @end, as hex in @out (@len
 * bytes with its NUL); 0, or -1 if there is none that fits.
 */
static int
notes_build_id(const char *p, const char *end, char *out, size_t len)
{
	while (p + sizeof(ElfW(Nhdr)) <= end) {
		const ElfW(Nhdr) *n = (const ElfW(Nhdr) *)p;
		const char *name = p + sizeof(*n);
		const unsigned char *desc = (const unsigned char *)name + ((n->n_namesz + 3) & ~3u);

		if ((const char *)desc + n->n_descsz > end)
			break;
		if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 && memcmp(name, "GNU", 4) == 0 &&
		    2 * (size_t)n->n_descsz < len) {
			for (unsigned k = 0; k < n->n_descsz; k++)
				snprintf(out + 2 * k, 3, "%02x", desc[k]);
			return 0;
		}
		p = (const char *)desc + ((n->n_descsz + 3) & ~3u);
	}
	return -1;
}

static void
read_build_id(struct dl_phdr_info *info, struct qemu_build *b)
{
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];

		if (ph->p_type != PT_NOTE)
			continue;
		const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr);

		if (notes_build_id(p, p + ph->p_memsz, b->build_id, sizeof(b->build_id)) == 0)
			return;
	}
}

int
elf_file_build_id(const char *path, char *out, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = -1;
	struct stat st;

	out[0] = 0;
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || st.st_size < (off_t)sizeof(ElfW(Ehdr))) {
		close(fd);
		return -1;
	}
	size_t size = (size_t)st.st_size;
	const char *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);

	close(fd);
	if (m == MAP_FAILED)
		return -1;
	const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)m;

	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0 &&
	    eh->e_ident[EI_CLASS] == (sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32) &&
	    eh->e_phoff + (size_t)eh->e_phnum * sizeof(ElfW(Phdr)) <= size) {
		const ElfW(Phdr) *ph = (const ElfW(Phdr) *)(m + eh->e_phoff);

		for (int i = 0; i < eh->e_phnum && rc < 0; i++)
			if (ph[i].p_type == PT_NOTE && ph[i].p_offset + ph[i].p_filesz <= size)
				rc = notes_build_id(m + ph[i].p_offset,
						    m + ph[i].p_offset + ph[i].p_filesz, out, len);
	}
	munmap((void *)m, size);
	return rc;
}

/*
 * The version banner is a string literal in the executable's rodata, the
 * read-only segment after the code.  The segments are searched from the
 * last: the first read-only one holds the dynamic symbols and relocations
 * (4 MB in Debian's 7.2), which searching first made this, before main(),
 * cost more than all the hooks' back-jump checks.
 */
static void
read_version(struct dl_phdr_info *info, struct qemu_build *b)
{
	static const char banner[] = "QEMU emulator version ";

	for (int i = info->dlpi_phnum - 1; i >= 0 && !b->version[0]; i--) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];

		if (ph->p_type != PT_LOAD || (ph->p_flags & (PF_X | PF_W)) || !(ph->p_flags & PF_R))
			continue;
		const char *seg = (const char *)(info->dlpi_addr + ph->p_vaddr);
		const char *hit = memmem(seg, ph->p_filesz, banner, sizeof(banner) - 1);

		if (hit == NULL)
			continue;
		hit += sizeof(banner) - 1;
		size_t n = 0, room = (size_t)(seg + ph->p_filesz - hit);

		while (n < room && n < sizeof(b->version) - 1 && hit[n] != '\n' && hit[n] != 0)
			n++;
		memcpy(b->version, hit, n);
		b->version[n] = 0;
		sscanf(b->version, "%d.%d", &b->major, &b->minor);
	}
}

static int
first_object(struct dl_phdr_info *info, size_t size, void *data)
{
	struct phdr_ctx *c = data;

	(void)size;
	c->b->exe_base = (void *)info->dlpi_addr;
	read_build_id(info, c->b);
	if (c->b->is_qemu)
		read_version(info, c->b);
	return 1; /* the main program comes first: stop */
}

int
qemu_build_probe(struct qemu_build *b)
{
	int missing = 0;
	struct phdr_ctx c = { b };
	ssize_t n;

	memset(b, 0, sizeof(*b));
	memcpy(b->sym, sym_table, sizeof(sym_table));
	n = readlink("/proc/self/exe", b->exe, sizeof(b->exe) - 1);
	b->exe[n > 0 ? n : 0] = 0;

	const char *base = strrchr(b->exe, '/');

	base = base ? base + 1 : b->exe;
	b->has_exports = dlsym(RTLD_DEFAULT, "qemu_bh_schedule") != NULL &&
			 dlsym(RTLD_DEFAULT, "qemu_init") != NULL;
	b->is_qemu = b->has_exports || strncmp(base, "qemu-system-", 12) == 0;
	if (!b->is_qemu)
		return QS_COUNT;
	dl_iterate_phdr(first_object, &c);
	b->known = qemu_known_build(b->build_id);
	for (int i = 0; i < QS_COUNT; i++) {
		struct qsym *s = &b->sym[i];

		for (int k = 0; k < 3 && s->names[k] && !s->addr; k++) {
			s->addr = dlsym(RTLD_DEFAULT, s->names[k]);
			if (s->addr)
				s->found = s->names[k];
		}
		/* the debugger's symbols are not required (debug.h) */
		missing += s->addr == NULL && !qsym_optional(i);
	}
	return missing;
}
