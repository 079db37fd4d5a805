/*
 * emit.h - the record side of the log: each kind of event is built in one
 * place, here, and appended to the run's log.  Every mode writes a log (a
 * replay writes what it replayed), so every policy emits through this.
 *
 * Owns the identity tables (ident.h) and the string ids; ids_mu guards them
 * and is held while an event that uses them is appended, so a definition
 * always precedes its first use in the log.  ids_mu is never held while
 * calling into QEMU.  The writer itself is safe from any thread.
 */
#ifndef BHRR_EMIT_H
#define BHRR_EMIT_H

#include <stdint.h>

#include "log.h"

struct held;

/* The run's log; set once by the session before hooks are installed. */
void emit_set_writer(struct log_writer *w);
struct log_writer *emit_writer(void);
/*
 * Whether emit_io_submit computes content keys: only a replay of an
 * ordering-mode log matches completions by them.  Set once by the session.
 */
void emit_want_content_keys(int on);

/*
 * The ident of callback @cb named @name (its definition logged when new)
 * and the creation ordinal of live BH @bh, 0 if unknown (a oneshot), under
 * one lock; any thread.
 */
void emit_identify(const void *cb, const char *name, const void *bh, uint64_t *ident,
		   uint64_t *instance);

/* A BH ran (the held copy @h); any thread. */
void emit_bh_run(const struct held *h, unsigned how, int64_t icount, uint64_t flags);
/* A BH was scheduled, from the stack @frames[@n] (may be 0); any thread. */
void emit_schedule(const void *cb, const char *name, void *const *frames, int n,
		   unsigned how, int64_t icount, unsigned role);
/* @bh was made with @cb: numbered and logged; any thread. */
void emit_bh_new(const void *bh, const void *cb, const char *name);
/* @bh is deleted: logged if it was numbered; any thread. */
void emit_bh_delete(const void *bh);
/*
 * Request @req was submitted doing @op on [@offset, +@bytes): logged;
 * returns its content key (ident.h), or 0 unless emit_want_content_keys;
 * any thread.
 */
uint64_t emit_io_submit(uint64_t req, uint64_t op, uint64_t offset, uint64_t bytes,
			unsigned how, int64_t icount);
void emit_io_complete(uint64_t req, int64_t ret, unsigned how, int64_t icount, uint64_t flags);
/* @len entropy bytes handed to device @dev */
void emit_rng_read(unsigned dev, const uint8_t *data, size_t len, unsigned how, int64_t icount,
		   uint64_t flags);
/* chardev event @event (QEMUChrEvent: opened, closed, break, ...) delivered to frontend @fe */
void emit_chr_event(unsigned fe, unsigned event, unsigned how, int64_t icount, uint64_t flags);
/* @len (<= LOG_TEXT_MAX) bytes delivered to console frontend @fe */
void emit_chr_read(unsigned fe, const uint8_t *data, size_t len, unsigned how, int64_t icount,
		   uint64_t flags);
/*
 * A monitor command that changes the guest, as its QMP request (@len <=
 * LOG_TEXT_MAX); @same_turn: QEMU's main loop has not turned since the one before
 */
void emit_monitor(unsigned same_turn, const char *request, size_t len, unsigned how,
		  int64_t icount);
/* A frame handed to a NIC (@id: its ordinal, QEMU's packet flags << 32), @len <= LOG_TEXT_MAX */
void emit_net_recv(uint64_t id, const uint8_t *data, size_t len, unsigned how, int64_t icount,
		   uint64_t flags);
/* A host clock read the guest sees: @what 0, the RTC's start ("2026-11-30T12:00:00", UTC) */
void emit_host_clock(unsigned what, const char *value);
/* A read of a host clock the guest sees (@what: LOG_HC_REALTIME or LOG_HC_HOST) and its @value */
void emit_host_clock_read(unsigned what, int64_t value, unsigned how, int64_t icount);
/* A file of a 9p share QEMU opened for the guest: @text "share\tpath\tsize\txxh3" (gate_fs.h) */
void emit_file_read(const char *text, size_t len);
/* A turn of vCPU @cpu that ran @ran instructions to the global icount @icount (vcpu_sched.h); flags LOG_F_AFTER_EXC. */
void emit_slice(unsigned cpu, uint64_t ran, unsigned flags, int64_t icount);
/* A timer on a host clock (gate_clock.h's ordinal @timer) fired for the guest */
void emit_host_timer(unsigned timer, unsigned how, int64_t icount, uint64_t flags);
void emit_warp(int64_t delta_ns, unsigned how, int64_t icount);
void emit_chaos(uint64_t decision, int64_t value, int64_t icount);
void emit_nested_poll(unsigned role, unsigned how, int64_t icount);
void emit_vm_change(int running, int state, unsigned how, int64_t icount);
void emit_diverge(uint64_t index, const char *expected, const char *actual, unsigned how,
		  int64_t icount);

#endif
