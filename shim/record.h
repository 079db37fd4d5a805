/*
 * record.h - BHRR_MODE=record (see record.c and doc/record.md).
 */
#ifndef BHRR_RECORD_H
#define BHRR_RECORD_H

/*
 * From the constructor: discover layouts, open the log (BHRR_LOG), hook.
 * With @replay, also read BHRR_REPLAY and drive the executor by it.
 * Returns 0, or -1 after printing why nothing was hooked.
 */
int record_start(int replay);
/* From the destructor: end event, flush, fsync. */
void record_finish(void);

#endif
