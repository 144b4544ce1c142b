/*
 * The exec stub: the last program the runtime executes before the
 * container's own.
 *
 * It runs from a sealed memfd, so at the moment the container's program is
 * exec'd, /proc/self/exe names this sealed copy and not the runtime binary on
 * the host. A container program that is `#!/proc/self/exe` (CVE-2019-5736)
 * therefore re-executes this stub, which it can neither write nor use to reach
 * the host binary.
 *
 * Calling convention: argv[0] is the path to execute, argv[1..] the program's
 * argv; the environment is passed through unchanged. No libc: it must be tiny
 * and static so that its exec costs microseconds.
 */

typedef unsigned long size_t;

#if defined(__x86_64__)
#define SYS_write 1
#define SYS_execve 59
#define SYS_exit_group 231
static long sys3(long n, long a, long b, long c)
{
	long ret;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a), "S"(b), "d"(c)
			 : "rcx", "r11", "memory");
	return ret;
}
__asm__(".text\n.global _start\n_start:\n"
	"  mov %rsp, %rdi\n"
	"  and $-16, %rsp\n"
	"  call stub_main\n"
	"  hlt\n");
#elif defined(__aarch64__)
#define SYS_write 64
#define SYS_execve 221
#define SYS_exit_group 94
static long sys3(long n, long a, long b, long c)
{
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	__asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
	return x0;
}
__asm__(".text\n.global _start\n_start:\n"
	"  mov x0, sp\n"
	"  bl stub_main\n"
	"  brk #0\n");
#else
#error "exec stub: unsupported architecture"
#endif

static size_t len(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

static void put(const char *s)
{
	sys3(SYS_write, 2, (long)s, (long)len(s));
}

__attribute__((used, noreturn)) void stub_main(long *sp)
{
	long argc = sp[0];
	char **argv = (char **)(sp + 1);
	char **envp = argv + argc + 1;
	long err = 22; /* EINVAL */

	if (argc >= 2)
		err = -sys3(SYS_execve, (long)argv[0], (long)(argv + 1), (long)envp);

	/* The runtime checked the path before starting us, so this is rare. */
	char num[24];
	int i = sizeof(num) - 1;
	num[i] = 0;
	do {
		num[--i] = (char)('0' + err % 10);
		err /= 10;
	} while (err && i > 0);
	put("berth: exec ");
	put(argc >= 2 ? argv[0] : "(nothing)");
	put(" failed: errno ");
	put(num + i);
	put("\n");
	/* 127 for not found, 126 for found but not executable: the shell's codes. */
	sys3(SYS_exit_group, (argc >= 2 && num[i] == '2' && num[i + 1] == 0) ? 127 : 126, 0, 0);
	for (;;)
		;
}
