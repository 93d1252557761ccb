/*
 * Test helper: installs a seccomp BPF program read from a file, then does one thing under it.
 *   seccomp-run <program.bpf> <flags> exec <path> [args...]
 *   seccomp-run <program.bpf> <flags> personality <hex value>   (raw syscall, all 64 bits of the argument)
 * Prints "ok" or "errno N" for personality; exits 100 when the filter cannot be installed, 101 when exec fails.
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: %s program.bpf flags exec|personality ...\n", argv[0]);
    return 2;
  }
  static unsigned char buf[4096 * 8];
  FILE *f = fopen(argv[1], "rb");
  if (!f) {
    perror("open program");
    return 2;
  }
  size_t len = fread(buf, 1, sizeof buf, f);
  fclose(f);
  struct sock_fprog prog = {.len = (unsigned short)(len / 8), .filter = (struct sock_filter *)buf};
  unsigned long flags = strtoul(argv[2], NULL, 0);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog) != 0) {
    fprintf(stderr, "seccomp: %s\n", strerror(errno));
    return 100;
  }
  if (strcmp(argv[3], "personality") == 0) {
    unsigned long long value = strtoull(argv[4], NULL, 16);
    long r = syscall(SYS_personality, value);
    if (r == -1) printf("errno %d\n", errno);
    else printf("ok\n");
    fflush(stdout);
    return 0;
  }
  execv(argv[4], &argv[4]);
  printf("exec errno %d\n", errno);
  fflush(stdout);
  return 101;
}
