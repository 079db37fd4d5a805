/*
 * gate_notify.c - ioeventfds, run where the guest writes them (see
 * gate_notify.h).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "discover.h"
#include "gate_notify.h"
#include "qemu_rt.h"
#include "symbols.h"
#include "vlog.h"

typedef void notify_handler(void *e);

#define NOTIFIERS_MAX 1024
/*
 * Kicks one guest write may raise: every queue of a device at once, when
 * its DRIVER_OK write starts its ioeventfds (virtio kicks each queue then;
 * virtio-serial has 64 with its default 31 ports).  A kick past this would
 * be left to the main loop, at host timing: said once.
 */
#define PENDING_MAX NOTIFIERS_MAX

/* Under tab_mu (QEMU registers under the BQL; the mutex keeps any other caller safe). */
static pthread_mutex_t tab_mu = PTHREAD_MUTEX_INITIALIZER;
static struct notifier {
	void *e;
	int ioeventfd;           /* memory_region_add_eventfd registered it */
	int guest;               /* a virtio queue's guest notifier (its interrupt) */
	int kicked;              /* an ioeventfd signalled while it had no handler */
	notify_handler *handler; /* its io_read on a main-loop context, or NULL */
} tab[NOTIFIERS_MAX];
static size_t ntab;

static __thread int in_write;          /* vCPU thread: inside a guest write's dispatch */
static int notifier_external;           /* aio_set_event_notifier takes is_external: set once, constructor */
static __thread int in_guest_fd;       /* inside virtio_queue_set_guest_notifier_fd_handler */
static __thread int in_set_handler;    /* inside event_notifier_set_handler */
static __thread void *pending[PENDING_MAX];
static __thread size_t npending;
static atomic_ullong kicks, irqs;
static int said_full; /* atomic */

/* Keep @e's kick for the end of the write; 0, or -1 (full: said once).  tab_mu held. */
static int
pend(void *e)
{
	if (npending < PENDING_MAX) {
		pending[npending++] = e;
		return 0;
	}
	if (!__atomic_exchange_n(&said_full, 1, __ATOMIC_RELAXED))
		vlog_error("virtio: more than %d queue kicks in one guest write; the rest run in the "
			   "main loop, at host timing", PENDING_MAX);
	return -1;
}

static int (*real_event_notifier_set)(void *e);
static void (*real_mr_add_eventfd)(void *, uint64_t, uint64_t, uint64_t, uint64_t, void *);
static void (*real_mr_del_eventfd)(void *, uint64_t, uint64_t, uint64_t, uint64_t, void *);
static void (*real_set_handler)(void *e, notify_handler *handler);
static uint64_t (*real_set_guest_fd_handler)(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
static void (*real_aio_set_event_notifier)(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t,
					    uint64_t);

/* The entry of @e, made if @make; NULL if none (or the table is full).  tab_mu held. */
static struct notifier *
entry(void *e, int make)
{
	for (size_t i = 0; i < ntab; i++)
		if (tab[i].e == e)
			return &tab[i];
	if (!make || ntab == NOTIFIERS_MAX)
		return NULL;
	tab[ntab] = (struct notifier){ .e = e };
	return &tab[ntab++];
}

/*
 * A handler now on ioeventfd @n: if it was signalled before (virtio's
 * dataplane start kicks its queues, then attaches their handlers), the
 * main loop would run it at host timing; in a guest write it runs when the
 * write returns, like any kick.  tab_mu held.
 */
static void
handled(struct notifier *n)
{
	if (n->handler && n->ioeventfd && n->kicked && in_write && pend(n->e) == 0)
		n->kicked = 0;
}

/* Drop @n once it is neither an ioeventfd nor handled.  tab_mu held. */
static void
tidy(struct notifier *n)
{
	if (n->ioeventfd || n->handler)
		return;
	*n = tab[--ntab];
}

static void
hk_mr_add_eventfd(void *mr, uint64_t addr, uint64_t size, uint64_t match, uint64_t data, void *e)
{
	real_mr_add_eventfd(mr, addr, size, match, data, e);
	pthread_mutex_lock(&tab_mu);
	struct notifier *n = entry(e, 1);

	if (n)
		n->ioeventfd = 1;
	pthread_mutex_unlock(&tab_mu);
}

static void
hk_mr_del_eventfd(void *mr, uint64_t addr, uint64_t size, uint64_t match, uint64_t data, void *e)
{
	pthread_mutex_lock(&tab_mu);
	struct notifier *n = entry(e, 0);

	if (n) {
		n->ioeventfd = 0;
		tidy(n);
	}
	pthread_mutex_unlock(&tab_mu);
	real_mr_del_eventfd(mr, addr, size, match, data, e);
}

/*
 * aio_set_event_notifier(ctx, notifier, [is_external before 8.1,] io_read,
 * io_poll, io_poll_ready): six registers forward either form.
 */
static void
hk_aio_set_event_notifier(uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
			  uint64_t a5)
{
	void *ctx = (void *)a0, *e = (void *)a1;
	int old = notifier_external;
	notify_handler *io_read = (notify_handler *)(old ? a3 : a2);
	AioContext *main_ctx = __atomic_load_n(&qrt.main_ctx, __ATOMIC_ACQUIRE);

	if (main_ctx == NULL)
		main_ctx = qrt.get_aio_context();
	int ours = ctx != NULL && ctx == main_ctx;

	if (in_set_handler) { /* event_notifier_set_handler's own call: it says what it set */
		real_aio_set_event_notifier(a0, a1, a2, a3, a4, a5);
		return;
	}
	pthread_mutex_lock(&tab_mu);
	struct notifier *n = entry(e, ours && io_read != NULL);

	if (n) {
		n->handler = ours ? io_read : NULL;
		n->guest = in_guest_fd && n->handler != NULL;
		handled(n);
		tidy(n);
	}
	pthread_mutex_unlock(&tab_mu);
	real_aio_set_event_notifier(a0, a1, a2, a3, a4, a5);
}

/*
 * event_notifier_set_handler(e, handler): a handler on the iohandler
 * context, which the main loop polls.  (Its context is not asked for:
 * iohandler_get_aio_context() would create it, earlier than QEMU does.)
 */
static void
hk_set_handler(void *e, notify_handler *handler)
{
	in_set_handler++;
	real_set_handler(e, handler);
	in_set_handler--;
	pthread_mutex_lock(&tab_mu);
	struct notifier *n = entry(e, handler != NULL);

	if (n) {
		n->handler = handler;
		n->guest = in_guest_fd && handler != NULL;
		handled(n);
		tidy(n);
	}
	pthread_mutex_unlock(&tab_mu);
}

/*
 * Without irqfds (TCG has none), a virtio queue's interrupt can be a guest
 * notifier too: since 8.2 virtio-blk with ioeventfd on signals it from the
 * completion (virtio_notify_irqfd), and the main loop's handler raises the
 * interrupt whenever it gets there - again at a host-timed icount.  The
 * notifiers registered from here are those.
 *
 * Until 10.x: void virtio_queue_set_guest_notifier_fd_handler(vq, assign,
 * with_irqfd); from 11.0: int virtio_set_guest_notifier(vdev, qidx or -1
 * for the config notifier, assign, with_irqfd).  Whichever the build
 * exports (symbols.c): six registers forward either, and rax comes back.
 */
static uint64_t
hk_set_guest_fd_handler(uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
	in_guest_fd++;
	uint64_t r = real_set_guest_fd_handler(a0, a1, a2, a3, a4, a5);

	in_guest_fd--;
	return r;
}

/*
 * A guest write's ioeventfd: its handler runs when the write returns
 * (gate_notify_write_end).  A guest notifier signalled by a thread holding
 * the BQL (bhrr's landed completion, or the main loop): its handler runs
 * here and now, so the interrupt is raised where the completion landed.
 */
static int
hk_event_notifier_set(void *e)
{
	notify_handler *now = NULL;

	if (__atomic_load_n(&ntab, __ATOMIC_RELAXED) != 0 && (in_write || (qrt.bql_locked != NULL && qrt.bql_locked()))) {
		pthread_mutex_lock(&tab_mu);
		struct notifier *n = entry(e, 0);

		if (n != NULL && n->handler != NULL) {
			if (n->guest)
				now = n->handler;
			else if (in_write && n->ioeventfd)
				pend(e);
		} else if (n != NULL && n->ioeventfd) {
			n->kicked = 1; /* its handler comes later (handled()) */
		}
		pthread_mutex_unlock(&tab_mu);
	}
	int r = real_event_notifier_set(e);

	if (now != NULL) {
		atomic_fetch_add(&irqs, 1);
		now(e); /* test_and_clear, then the queue's interrupt */
	}
	return r;
}

void
gate_notify_write_begin(void)
{
	in_write = 1;
}

void
gate_notify_write_end(void)
{
	in_write = 0;
	for (size_t i = 0; i < npending; i++) {
		pthread_mutex_lock(&tab_mu);
		struct notifier *n = entry(pending[i], 0);
		notify_handler *h = n != NULL && n->ioeventfd ? n->handler : NULL;

		pthread_mutex_unlock(&tab_mu);
		if (h == NULL)
			continue;
		atomic_fetch_add(&kicks, 1);
		h(pending[i]); /* test_and_clear, then the queue's handler: the rings read now */
	}
	npending = 0;
}

unsigned long long
gate_notify_kicks(void)
{
	return kicks;
}

unsigned long long
gate_notify_irqs(void)
{
	return irqs;
}

static const struct hook_spec hooks[] = {
	{ QS_EVENT_NOTIFIER_SET, (void *)hk_event_notifier_set, (void **)&real_event_notifier_set },
	{ QS_MR_ADD_EVENTFD, (void *)hk_mr_add_eventfd, (void **)&real_mr_add_eventfd },
	{ QS_MR_DEL_EVENTFD, (void *)hk_mr_del_eventfd, (void **)&real_mr_del_eventfd },
	{ QS_AIO_SET_EVENT_NOTIFIER, (void *)hk_aio_set_event_notifier,
	  (void **)&real_aio_set_event_notifier },
	{ QS_EVENT_NOTIFIER_SET_HANDLER, (void *)hk_set_handler, (void **)&real_set_handler },
	{ QS_VIRTIO_SET_GUEST_FD_HANDLER, (void *)hk_set_guest_fd_handler,
	  (void **)&real_set_guest_fd_handler },
};

int
gate_notify_takes_external(void)
{
	int e = discover_notifier_takes_external();

	return e >= 0 ? e : shim_qemu.major < 8 || (shim_qemu.major == 8 && shim_qemu.minor < 1);
}

const struct hook_spec *
gate_notify_hooks(size_t *n)
{
	notifier_external = gate_notify_takes_external(); /* constructor: before any hook runs */
	*n = sizeof(hooks) / sizeof(hooks[0]);
	return hooks;
}
