	.section .text.start, "ax"
	.global _start
_start:
	ldr	x0, =__stack_top
	mov	sp, x0
	ldr	x1, =__bss_start
	ldr	x2, =__bss_end
1:	cmp	x1, x2
	b.hs	2f
	str	xzr, [x1], #8
	b	1b
2:	bl	main
	/* PSCI SYSTEM_OFF: QEMU's virt board answers hvc at EL1 */
	ldr	x0, =0x84000008
	hvc	#0
3:	wfi
	b	3b
