/* riscv64.S - entry at 0x80000000 in M-mode (QEMU's -bios none -kernel) */
	.section .text.start, "ax"
	.global _start
_start:
	la	sp, __stack_top
	la	t0, __bss_start
	la	t1, __bss_end
1:	bgeu	t0, t1, 2f
	sd	zero, 0(t0)
	addi	t0, t0, 8
	j	1b
2:	call	main
	/* the virt board's sifive_test device: 0x5555 powers off (QEMU exits 0) */
	li	t0, 0x100000
	li	t1, 0x5555
	sw	t1, 0(t0)
3:	wfi
	j	3b
