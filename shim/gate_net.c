/*
 * gate_net.c - network receive (see gate_net.h).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "emit.h"
#include "gate.h"
#include "gate_net.h"
#include "log.h"
#include "policy.h"
#include "qemu_rt.h"
#include "replay.h"
#include "symbols.h"
#include "vlog.h"

/*
 * NetClientState and NetClientInfo, as far as bhrr reads them: the same in
 * every build bhrr knows (7.2 and 10.0, checked against the disassembly of
 * their deliver function), and cross-checked at run time: a client's
 * incoming_queue must be the queue qemu_new_net_queue made for it.
 */
#define NC_INFO 0x0
#define NC_PEER 0x20
#define NC_QUEUE 0x28
#define INFO_TYPE_NIC 1
/* QEMU tests only QEMU_NET_PACKET_FLAG_RAW (bit 0) of a frame's flags: this one is bhrr's */
#define TAG (1u << 30)
/* the longest frame logged: QEMU's own bound on one (NET_BUFSIZE, 4096 + 65536) */
#define NET_FRAME_MAX (4096 + 65536)

typedef ssize_t send_fn(void *queue, void *sender, unsigned flags, const uint8_t *data,
			size_t size, void *sent_cb);
typedef ssize_t send_iov_fn(void *queue, void *sender, unsigned flags, const struct iovec *iov,
			    int iovcnt, void *sent_cb);
typedef void *new_queue_fn(void *deliver, void *opaque);

static send_fn *real_send;
static send_iov_fn *real_send_iov;
static new_queue_fn *real_new_queue;
static void (*real_del_queue)(void *queue);

/* A client's queue, by creation; the NICs among them numbered in that order. */
struct client {
	void *queue;
	void *nc;
	int nic;        /* NIC ordinal, -1 not a NIC */
	int checked;    /* its layout was checked: nc's incoming_queue is queue */
};

#define CLIENTS_MAX 128

static struct client clients[CLIENTS_MAX]; /* BQL */
static unsigned n_clients, n_nics;         /* BQL */
static int said_full, said_layout, said_big; /* BQL */
static enum { NET_OFF, NET_RECORD, NET_REPLAY } mode; /* set once, before main() */
static atomic_ullong frames, dropped;

void
gate_net_start(int recording, int replaying)
{
	mode = recording ? NET_RECORD : replaying ? NET_REPLAY : NET_OFF;
}

unsigned long long
gate_net_frames(void)
{
	return frames;
}

unsigned long long
gate_net_dropped(void)
{
	return dropped;
}

static void *
field(void *obj, size_t off)
{
	return qrt_field(obj, off);
}

static void *
hk_new_queue(void *deliver, void *opaque)
{
	void *q = real_new_queue(deliver, opaque);

	/* a filter's private queue has qemu_netfilter_pass_to_next and a filter as its opaque */
	if (mode == NET_OFF || q == NULL || deliver == shim_qemu.sym[QS_NETFILTER_PASS].addr)
		return q;
	/* the client's info is set before its queue is made (qemu_net_client_setup) */
	const int *info = field(opaque, NC_INFO);
	int nic = info != NULL && *info == INFO_TYPE_NIC ? (int)n_nics++ : -1;

	for (unsigned i = 0; i < n_clients; i++)
		if (clients[i].queue == NULL || clients[i].queue == q) {
			/* the slot of a client gone (an unplugged NIC) */
			clients[i] = (struct client){ q, opaque, nic, 0 };
			return q;
		}
	if (n_clients < CLIENTS_MAX) {
		clients[n_clients++] = (struct client){ q, opaque, nic, 0 };
	} else if (!said_full) {
		said_full = 1;
		vlog_error("network: more than %d network clients; the others' frames are not "
			   "recorded", CLIENTS_MAX);
	}
	return q;
}

/*
 * A queue freed (its client is: an unplugged NIC): forget the client, so
 * nothing held for it is handed to freed memory; its slot is reused.
 */
static void
hk_del_queue(void *q)
{
	for (unsigned i = 0; i < n_clients; i++)
		if (clients[i].queue == q) {
			clients[i].queue = NULL;
			clients[i].nc = NULL;
			clients[i].checked = 0;
		}
	real_del_queue(q);
}

/* The client whose incoming queue @q is; NULL if unknown, or not laid out as bhrr knows. */
static struct client *
client_of(void *q)
{
	for (unsigned i = 0; i < n_clients; i++) {
		struct client *c = &clients[i];

		if (q == NULL || c->queue != q)
			continue;
		if (!c->checked) {
			if (field(c->nc, NC_QUEUE) != q) {
				if (!said_layout) {
					said_layout = 1;
					vlog_error("network: a client's layout is not the one bhrr knows; "
						   "its frames pass unrecorded");
				}
				return NULL;
			}
			c->checked = 1;
		}
		return c;
	}
	return NULL;
}

/* The NIC numbered @nic, if it still exists. */
static struct client *
nic_by_ordinal(unsigned nic)
{
	for (unsigned i = 0; i < n_clients; i++)
		if (clients[i].nic == (int)nic && clients[i].queue != NULL)
			return &clients[i];
	return NULL;
}

static void
sent_nop(void *sender, ssize_t ret)
{
	(void)sender;
	(void)ret;
}

/*
 * Log @len bytes for NIC @c at @icount and hand them to its queue, tagged,
 * from its peer as a backend or a hub would, as the executor runs work.
 */
static void
deliver(struct client *c, unsigned qflags, const uint8_t *data, size_t len, unsigned how,
	int64_t icount, uint64_t flags)
{
	struct iovec iov = { (void *)data, len };
	uint64_t id = (uint64_t)(unsigned)c->nic | (uint64_t)qflags << 32;

	/* one event holds LOG_TEXT_MAX bytes: a longer frame goes in pieces, LOG_F_MORE on all but the last */
	for (size_t off = 0;;) {
		size_t k = len - off < LOG_TEXT_MAX ? len - off : LOG_TEXT_MAX;
		int more = off + k < len;

		emit_net_recv(id, data + off, k, how, icount, flags | (more ? LOG_F_MORE : 0));
		off += k;
		if (!more)
			break;
	}
	atomic_fetch_add(&frames, 1);
	gate_in_executor++;
	real_send_iov(c->queue, field(c->nc, NC_PEER), qflags | TAG, &iov, 1, (void *)sent_nop);
	gate_in_executor--;
}

/* Record: hold a frame for NIC @c, or say why not. */
static void
hold(struct client *c, unsigned qflags, const struct iovec *iov, int iovcnt)
{
	size_t len = 0;

	for (int i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	if (len > NET_FRAME_MAX) {
		if (!said_big) {
			said_big = 1;
			vlog_error("network: a frame of %zu bytes is longer than any Ethernet frame "
				   "bhrr logs (%d): dropped, in the record as in the replay", len,
				   NET_FRAME_MAX);
		}
		return;
	}
	struct held h = { .kind = HELD_NET, .fe = (unsigned)c->nic, .len = len, .ret = (int)qflags };

	h.data = malloc(len ? len : 1);
	if (h.data == NULL) {
		vlog_error("network: out of memory holding a frame; dropped");
		return;
	}
	for (size_t k = 0, i = 0; i < (size_t)iovcnt; k += iov[i].iov_len, i++)
		memcpy(h.data + k, iov[i].iov_base, iov[i].iov_len);
	if (held_add(&h) == 0) {
		policy_record_arm_held();
		return;
	}
	free(h.data);
	vlog_error("network: cannot hold a frame; dropped");
}

/*
 * What becomes of a frame sent into @queue: 1 bhrr took it (swallowed,
 * held or dropped: the caller returns its size), 0 QEMU sends it.  Guest
 * transmissions in record complete at once: *@sent_cb cleared.
 */
static int
intercept(void *queue, void *sender, unsigned qflags, const struct iovec *iov, int iovcnt,
	  void **sent_cb)
{
	if (mode == NET_OFF || (qflags & TAG))
		return 0;
	if (mode == NET_REPLAY && replay_input_free())
		return 0;
	struct client *c = client_of(queue);

	if (c == NULL)
		return 0;
	if (mode == NET_REPLAY) {
		atomic_fetch_add(&dropped, 1); /* cut off: the log has what reached the guest */
		return 1;
	}
	if (c->nic < 0 || sender == NULL) {
		const int *info = sender ? field(sender, NC_INFO) : NULL;

		if (info != NULL && *info == INFO_TYPE_NIC)
			*sent_cb = NULL; /* guest TX: no completion later from the main loop */
		return 0;
	}
	hold(c, qflags, iov, iovcnt);
	return 1;
}

static ssize_t
hk_send(void *queue, void *sender, unsigned flags, const uint8_t *data, size_t size, void *sent_cb)
{
	struct iovec iov = { (void *)data, size };

	if (intercept(queue, sender, flags, &iov, 1, &sent_cb))
		return (ssize_t)size;
	ssize_t r = real_send(queue, sender, flags, data, size, sent_cb);

	/* a guest transmission the backend queued: done, as far as the guest knows */
	return r == 0 && mode == NET_RECORD && !(flags & TAG) ? (ssize_t)size : r;
}

static ssize_t
hk_send_iov(void *queue, void *sender, unsigned flags, const struct iovec *iov, int iovcnt,
	    void *sent_cb)
{
	size_t size = 0;

	for (int i = 0; i < iovcnt; i++)
		size += iov[i].iov_len;
	if (intercept(queue, sender, flags, iov, iovcnt, &sent_cb))
		return (ssize_t)size;
	ssize_t r = real_send_iov(queue, sender, flags, iov, iovcnt, sent_cb);

	return r == 0 && mode == NET_RECORD && !(flags & TAG) ? (ssize_t)size : r;
}

void
gate_net_run_held(struct held *h, unsigned how, int64_t icount, uint64_t flags)
{
	struct client *c = nic_by_ordinal(h->fe);

	if (c == NULL || field(c->nc, NC_PEER) == NULL)
		vlog("network: a %zu-byte frame for NIC %u dropped: it is gone", h->len, h->fe);
	else
		deliver(c, (unsigned)h->ret, h->data, h->len, how, icount, flags);
	free(h->data);
}

int
gate_net_inject(uint64_t id, const uint8_t *data, size_t len, unsigned how, int64_t icount,
		uint64_t flags, char *why, size_t whylen)
{
	struct client *c = nic_by_ordinal((unsigned)(id & 0xffffffffu));

	if (c == NULL || field(c->nc, NC_PEER) == NULL) {
		snprintf(why, whylen, "the guest has no NIC %u with a backend to take it",
			 (unsigned)(id & 0xffffffffu));
		return -1;
	}
	deliver(c, (unsigned)(id >> 32), data, len, how, icount, flags);
	return 0;
}

static const struct hook_spec hooks[] = {
	{ QS_NEW_NET_QUEUE, (void *)hk_new_queue, (void **)&real_new_queue },
	{ QS_NET_QUEUE_SEND, (void *)hk_send, (void **)&real_send },
	{ QS_NET_QUEUE_SEND_IOV, (void *)hk_send_iov, (void **)&real_send_iov },
	{ QS_DEL_NET_QUEUE, (void *)hk_del_queue, (void **)&real_del_queue },
};

const struct hook_spec *
gate_net_hooks(size_t *n)
{
	*n = sizeof(hooks) / sizeof(hooks[0]);
	return hooks;
}
