/*
 * symbols.h - finding QEMU's functions and identifying the QEMU build.
 *
 * QEMU's modular builds (Debian's, Ubuntu's) link with --export-dynamic, so
 * every non-static function of the executable is in .dynsym and dlsym
 * (RTLD_DEFAULT) finds it.  Names that changed across versions are looked up
 * under each spelling (the BQL pair became bql_lock_impl/bql_unlock in 9.0).
 */
#ifndef BHRR_SYMBOLS_H
#define BHRR_SYMBOLS_H

#include <stddef.h>

/* The QEMU functions bhrr uses; the order is the table order in symbols.c. */
enum qsym_id {
	QS_AIO_BH_CALL,
	QS_AIO_BH_SCHEDULE_ONESHOT,
	QS_QEMU_BH_SCHEDULE,
	QS_QEMU_BH_SCHEDULE_IDLE,
	QS_AIO_BH_NEW_FULL,
	QS_AIO_POLL,
	QS_ICOUNT_START_WARP_TIMER,
	QS_THREAD_POOL_SUBMIT_AIO,
	QS_ICOUNT_GET_RAW,
	QS_TIMER_INIT_FULL,
	QS_TIMER_MOD_NS,
	QS_ASYNC_RUN_ON_CPU,
	QS_BQL_LOCK,
	QS_BQL_UNLOCK,
	QS_HOOK_COUNT, /* the entries above are hook targets (check mode hooks all) */
	/* called, never hooked */
	QS_QEMU_CLOCK_GET_NS = QS_HOOK_COUNT,
	QS_RUNSTATE_IS_RUNNING,
	QS_QEMU_IN_VCPU_THREAD,
	QS_QEMU_GET_AIO_CONTEXT,
	QS_ICOUNT_GET,
	QS_ICOUNT_TO_NS,
	QS_ADD_VM_CHANGE_STATE_HANDLER,
	QS_QEMU_BH_DELETE,
	QS_ALL_CPU_THREADS_IDLE,
	QS_QEMU_GET_CPU,
	QS_QEMU_CLOCK_DEADLINE_NS_ALL,
	QS_QEMU_SYSTEM_SHUTDOWN_REQUEST,
	QS_TIMER_DEL,
	/* hooked by the session, not in check mode */
	QS_MR_DISPATCH_READ,
	QS_MR_DISPATCH_WRITE,
	QS_QEMU_BH_CANCEL,
	QS_EVENT_NOTIFIER_SET,
	QS_MR_ADD_EVENTFD,
	QS_MR_DEL_EVENTFD,
	QS_AIO_SET_EVENT_NOTIFIER,
	QS_EVENT_NOTIFIER_SET_HANDLER,
	QS_VIRTIO_SET_GUEST_FD_HANDLER,
	QS_CHR_FE_SET_HANDLERS_FULL,
	QS_MONITOR_CAN_READ, /* compared with, not hooked */
	QS_CHR_FE_ACCEPT_INPUT,
	QS_QEMU_CHR_FIND,
	QS_RNG_BACKEND_REQUEST_ENTROPY,
	QS_OBJECT_GET_TYPENAME,
	QS_QMP_DISPATCH,
	QS_HANDLE_HMP_COMMAND,
	QS_MAIN_LOOP_WAIT,
	QS_QMP_COMMANDS,  /* data */
	QS_QMP_FIND_COMMAND,
	QS_PAUSE_ALL_VCPUS,
	QS_RESUME_ALL_VCPUS,
	QS_CPU_STOP_CURRENT,
	QS_QEMU_NOTIFY_EVENT,
	QS_QOBJECT_FROM_JSON,
	QS_QOBJECT_TO_JSON,
	QS_QOBJECT_DESTROY,
	QS_QDICT_GET_TRY_STR,
	QS_QDICT_GET_QDICT,
	QS_QDICT_PUT_STR,
	QS_MONITOR_PRINTF,
	QS_ERROR_FREE,
	QS_CONFIGURE_RTC,
	QS_NEW_NET_QUEUE,
	QS_NET_QUEUE_SEND,
	QS_NET_QUEUE_SEND_IOV,
	QS_DEL_NET_QUEUE,
	QS_NETFILTER_PASS, /* compared with, not hooked */
	QS_QEMU_GET_TIMEDATE,
	QS_TIMERS_STATE,  /* data */
	QS_USE_ICOUNT,    /* data */
	QS_RTC_CLOCK,     /* data: the clock the guest's RTC runs on */
	QS_TIMER_MOD_ANTICIPATE_NS,
	QS_QEMU_SYSTEM_RESET,
	QS_QEMU_INIT_MAIN_LOOP,
	/* a replay held for a debugger (debug.h) */
	QS_QEMU_SYSTEM_DEBUG_REQUEST,
	QS_CPU_SINGLE_STEP,
	QS_QEMU_SET_FD_HANDLER,
	QS_VM_START,
	QS_VM_STOP,
	QS_RUNSTATE_SET,
	QS_CPU_WATCHPOINT_INSERT,
	QS_CPU_WATCHPOINT_REMOVE_BY_REF,
	QS_CPU_BREAKPOINT_REMOVE_ALL,
	QS_CPU_WATCHPOINT_REMOVE_ALL,
	/* block requests at the block backend, for io_uring and Linux AIO drives (gate_blk.h) */
	QS_BLK_AIO_PREADV,
	QS_BLK_AIO_PWRITEV,
	QS_BLK_AIO_FLUSH,
	QS_BLK_AIO_PDISCARD,
	QS_BLK_AIO_PWRITE_ZEROES,
	QS_BLK_AIO_IOCTL,
	QS_BLK_INC_IN_FLIGHT, /* called, not hooked */
	QS_BLK_DEC_IN_FLIGHT,
	/* the round robin of -smp N vCPUs under -icount (vcpu_sched.h): 8.2 and later */
	QS_ICOUNT_PREPARE_FOR_RUN,
	QS_ICOUNT_PROCESS_DATA,
	QS_ICOUNT_HANDLE_DEADLINE,
	QS_CPU_EXIT,
	QS_CPU_EXEC_INTERRUPT, /* the target's: a hardware interrupt delivered */
	QS_CPU_DO_INTERRUPT,   /* the target's: an exception entered */
	QS_CPU_THREAD_IS_IDLE, /* called */
	QS_CPU_EXEC_HALT,      /* the target's: a halted vCPU leaves its halt */
	QS_COUNT
};

/*
 * Symbols only some runs need, left out of the self-check's count: a
 * replay for a debugger's (debug_start says what it lacks) and the block
 * backend's (gate_blk_hooks says so when a drive needs them), the -smp
 * round robin's (sched_hooks says so when -smp asks for them).  Where BHs
 * have no name (qsym_bh_named), configure_rtc too: static there, and the
 * host's clock is not gated (gate_clock.c says so).
 */
static inline int
qsym_optional(int id)
{
	return id >= QS_QEMU_SYSTEM_DEBUG_REQUEST && id <= QS_CPU_EXEC_HALT;
}

struct qsym {
	const char *names[3]; /* spellings, newest first; NULL-terminated */
	const char *found;    /* the spelling that resolved, or NULL */
	void *addr;
};

struct qemu_build {
	int is_qemu;            /* a QEMU system emulator (by name or symbols) */
	int has_exports;        /* its functions are in .dynsym */
	char exe[256];          /* /proc/self/exe */
	void *exe_base;         /* load address of the executable */
	char build_id[41];      /* hex GNU build-id, "" if none */
	char version[96];       /* "7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)", "" if unknown */
	int major, minor;       /* parsed from version; 0 if unknown */
	const char *known;      /* name of a build bhrr was tested on, or NULL */
	struct qsym sym[QS_COUNT];
};

/*
 * Fill @b for the running process.  Cheap (no full-text scan) unless the
 * process looks like QEMU.  Returns the number of required symbols missing
 * (0: all present).
 */
int qemu_build_probe(struct qemu_build *b);

/*
 * The builds bhrr is tested on, by GNU build-id: NULL-terminated pairs of
 * build-id and description.
 */
extern const char *const qemu_known_builds[];
/* The description of a known build-id, or NULL. */
const char *qemu_known_build(const char *build_id);

/*
 * The GNU build-id of the ELF file @path (not loaded: read from disk), as
 * hex in @out of @len bytes.  Returns 0, or -1 with @out "" when the file
 * cannot be read, is not an ELF file of this word size, or has no build-id.
 */
int elf_file_build_id(const char *path, char *out, size_t len);

/* Short name of a symbol slot for messages ("aio_bh_call"). */
const char *qsym_name(const struct qemu_build *b, enum qsym_id id);

/*
 * Whether @b's BHs have names: its BH constructor is aio_bh_new_full (6.2
 * on), not 5.2's aio_bh_new.  0 when neither resolved.
 */
int qsym_bh_named(const struct qemu_build *b);

#endif
