/*
 * mini.S - the smallest guest bhrr's engine tests boot: a multiboot kernel
 * that reads every sector of the IDE primary master by PIO (LBA28, 8 sectors
 * per command, status polling), checks each 32-bit word against the pattern
 * tests/guest/mkdisk.sh wrote (sector * 65536 + index), prints one line on
 * the debugcon port 0xe9 and leaves through isa-debug-exit (iobase 0xf4):
 * 0x10 on success (QEMU exits 33), 0x11 on failure (QEMU exits 35).
 *
 * The sector count comes from the multiboot command line ("sectors=N",
 * default 256).  Boot with:
 *   qemu-system-x86_64 -nodefaults -display none -kernel mini.elf \
 *     -drive file=mini-disk.img,format=raw,if=ide,index=0 \
 *     -device isa-debug-exit,iobase=0xf4,iosize=1 -debugcon stdio
 */
	.set MB_MAGIC, 0x1badb002
	.set MB_FLAGS, 0x00000003
	.set DEBUGCON, 0xe9
	.set EXITPORT, 0xf4
	.set ATA, 0x1f0
	.set PER_CMD, 8

	.section .multiboot, "a"
	.p2align 2
	.long MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)

	.text
	.code32
	.globl _start
_start:
	mov $stack_top, %esp
	mov $256, %eax
	mov %eax, total
	/* multiboot info: flags bit 2 -> cmdline at +16 */
	testl $4, (%ebx)
	jz 2f
	mov 16(%ebx), %esi
	call parse_cmdline
2:
	xor %edi, %edi                  /* next LBA */
	xorl %eax, %eax
	mov %eax, sum
next_cmd:
	cmp total, %edi
	jae done
	call ata_wait_ready
	mov $ATA + 6, %dx
	mov %edi, %eax
	shr $24, %eax
	and $0x0f, %al
	or $0xe0, %al
	out %al, %dx
	mov $ATA + 2, %dx
	mov $PER_CMD, %al
	out %al, %dx
	mov $ATA + 3, %dx
	mov %edi, %eax
	out %al, %dx
	inc %dx
	shr $8, %eax
	out %al, %dx
	inc %dx
	shr $8, %eax
	out %al, %dx
	mov $ATA + 7, %dx
	mov $0x20, %al                  /* READ SECTORS */
	out %al, %dx
	mov $PER_CMD, %ecx
read_sector:
	push %ecx
	call ata_wait_drq
	mov $ATA, %dx
	mov $buffer, %ebx
	mov $128, %ecx
1:	inl %dx, %eax
	mov %eax, (%ebx)
	add $4, %ebx
	loop 1b
	/* verify: word i of sector s is s*65536 + i */
	xor %ecx, %ecx
3:	mov %edi, %eax
	shl $16, %eax
	add %ecx, %eax
	cmp buffer(,%ecx,4), %eax
	jne fail
	add %eax, sum
	inc %ecx
	cmp $128, %ecx
	jb 3b
	inc %edi
	pop %ecx
	loop read_sector
	jmp next_cmd

done:
	mov $msg_ok, %esi
	call puts
	mov total, %eax
	call putdec
	mov $msg_sum, %esi
	call puts
	mov sum, %eax
	call puthex
	mov $'\n', %al
	out %al, $DEBUGCON
	mov $0x10, %al
	out %al, $EXITPORT
	hlt

fail:
	mov $msg_fail, %esi
	call puts
	mov %edi, %eax
	call putdec
	mov $'\n', %al
	out %al, $DEBUGCON
	mov $0x11, %al
	out %al, $EXITPORT
	hlt

/* Wait until BSY clears; ERR means failure. */
ata_wait_ready:
	mov $ATA + 7, %dx
1:	in %dx, %al
	test $0x80, %al
	jnz 1b
	test $0x01, %al
	jnz fail
	ret

/* Wait until BSY clears and DRQ sets. */
ata_wait_drq:
	mov $ATA + 7, %dx
1:	in %dx, %al
	test $0x80, %al
	jnz 1b
	test $0x01, %al
	jnz fail
	test $0x08, %al
	jz 1b
	ret

/* "sectors=N" anywhere in the string at esi sets total (multiple of 8). */
parse_cmdline:
1:	cmpb $0, (%esi)
	je 9f
	mov $key, %edi
	mov %esi, %ebx
2:	movb (%edi), %al
	test %al, %al
	jz 3f
	cmpb (%ebx), %al
	jne 4f
	inc %edi
	inc %ebx
	jmp 2b
3:	xor %eax, %eax                  /* parse decimal at ebx */
5:	movzbl (%ebx), %ecx
	sub $'0', %ecx
	cmp $9, %ecx
	ja 6f
	imul $10, %eax
	add %ecx, %eax
	inc %ebx
	jmp 5b
6:	add $PER_CMD - 1, %eax
	and $~(PER_CMD - 1), %eax
	mov %eax, total
	ret
4:	inc %esi
	jmp 1b
9:	ret

puts:
1:	lodsb
	test %al, %al
	jz 2f
	out %al, $DEBUGCON
	jmp 1b
2:	ret

/* eax as 8 hex digits */
puthex:
	mov $8, %ecx
1:	rol $4, %eax
	mov %eax, %edx
	and $0xf, %edx
	movb hexdigits(%edx), %dl
	xchg %eax, %edx
	out %al, $DEBUGCON
	xchg %eax, %edx
	loop 1b
	ret

/* eax in decimal */
putdec:
	mov $10, %ecx
	xor %ebx, %ebx
1:	xor %edx, %edx
	div %ecx
	push %edx
	inc %ebx
	test %eax, %eax
	jnz 1b
2:	pop %eax
	add $'0', %al
	out %al, $DEBUGCON
	dec %ebx
	jnz 2b
	ret

	.section .rodata
key:	.asciz "sectors="
msg_ok:	.asciz "mini: read "
msg_sum: .asciz " sectors ok sum="
msg_fail: .asciz "mini: FAIL at sector "
hexdigits: .ascii "0123456789abcdef"

	.bss
	.p2align 4
total:	.long 0
sum:	.long 0
buffer:	.skip 512
	.p2align 4
	.skip 4096
stack_top:

	.section .note.GNU-stack, "", @progbits
