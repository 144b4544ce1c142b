/*
 * berth-init: the minimal init `berth run --init` puts at /dev/init as the
 * container's pid 1. It starts the command, forwards every signal it gets
 * to it, reaps every zombie (orphans are re-parented to pid 1), and exits
 * with the command's status (128+N if killed by signal N).
 *
 * Usage: /dev/init -- COMMAND [ARG...]
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int first = 1;
	if (first < argc && strcmp(argv[first], "--") == 0)
		first++;
	if (first >= argc) {
		fprintf(stderr, "berth-init: no command given\n");
		return 127;
	}

	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);

	pid_t child = fork();
	if (child < 0) {
		fprintf(stderr, "berth-init: fork: %s\n", strerror(errno));
		return 126;
	}
	if (child == 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		execvp(argv[first], argv + first);
		fprintf(stderr, "berth-init: exec %s: %s\n", argv[first], strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}

	for (;;) {
		siginfo_t info;
		struct timespec tick = { 1, 0 };
		int sig = sigtimedwait(&all, &info, &tick);
		/* Everything but our children's deaths is for the command. */
		if (sig > 0 && sig != SIGCHLD)
			kill(child, sig);
		int status;
		pid_t pid;
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			if (pid == child)
				return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		}
	}
}
