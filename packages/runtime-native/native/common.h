/* Shared by the launcher's parts (one translation unit: launcher.c includes them). */
#ifndef MAGIKRUN_COMMON_H
#define MAGIKRUN_COMMON_H
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
enum op {
  OP_SETNS = 1, OP_SYNC_WAIT, OP_UNSHARE, OP_SETHOSTNAME, OP_SETDOMAINNAME, OP_MOUNT_ROOT_PROP,
  OP_BIND_ROOTFS, OP_MOUNT, OP_MKNOD, OP_SYMLINK, OP_PIVOT, OP_MASK, OP_READONLY, OP_REMOUNT_ROOT_RO,
  OP_WRITE_FILE, OP_RLIMIT, OP_CONSOLE_CONNECT, OP_CONSOLE, OP_CHDIR, OP_CAPS_BOUNDING, OP_KEEPCAPS,
  OP_SETGROUPS, OP_SETRESGID, OP_SETRESUID, OP_UMASK, OP_FIND_EXEC, OP_FIFO_WAIT, OP_CAPSET, OP_AMBIENT,
  OP_NNP, OP_SECCOMP, OP_EXEC, OP_STDIO, OP_UNUSED_34, OP_SETSID, OP_READY,
  /* run by the reaper before it clones (leading records only), see reaper_prelude */
  OP_REAPER_TIMENS, OP_REAPER_SETNS,
  OP_HOOKS_SYNC, OP_HOOK
};

#define MAX_STRS 1024
#define MAX_ARGS 510

enum { MSG_PID = 1, MSG_ERROR = 2, MSG_READY = 3, MSG_HOOKS = 4 };
struct msg { int32_t kind, index, err, value; };

struct rec { uint32_t op, nints, nstrs; const int64_t *ints; const char *strs[MAX_STRS]; };

struct ctx {
  int status_fd, sync_fd, root_fd, console_sock, user_ns;
  int fail_value; /* reported instead of the op number when set (a hook's exit status) */
  const char *rootfs;
  char exec_path[4096];
};

static void send_msg(int fd, int kind, int index, int err, int value) {
  struct msg m = {kind, index, err, value};
  ssize_t r;
  do r = write(fd, &m, sizeof m); while (r < 0 && errno == EINTR);
}

/* Records: u32 op, u32 nints, u32 nstrs, u32 pad, nints x i64, then nstrs NUL-terminated strings, padded
 * to 8 bytes. The buffer is 8-byte aligned, so the i64s are too. */
static const uint8_t *next_rec(const uint8_t *p, const uint8_t *end, struct rec *r) {
  uint32_t h[3];
  if (p + 16 > end) return NULL;
  memcpy(h, p, 12);
  p += 16;
  r->op = h[0]; r->nints = h[1]; r->nstrs = h[2];
  if (r->nstrs > MAX_STRS || p + 8ul * r->nints > end) return NULL;
  r->ints = (const int64_t *)p;
  p += 8ul * r->nints;
  for (uint32_t i = 0; i < r->nstrs; i++) {
    r->strs[i] = (const char *)p;
    while (p < end && *p) p++;
    if (p >= end) return NULL;
    p++;
  }
  while ((uintptr_t)p & 7) p++;
  return p;
}

static void fd_path(char *buf, int fd) {
  /* "/proc/self/fd/<fd>" without stdio */
  const char *pre = "/proc/self/fd/";
  int n = 0;
  while (pre[n]) { buf[n] = pre[n]; n++; }
  char tmp[16]; int t = 0;
  do { tmp[t++] = '0' + fd % 10; fd /= 10; } while (fd);
  while (t) buf[n++] = tmp[--t];
  buf[n] = 0;
}

static int write_all(int fd, const char *s, size_t n) {
  while (n) {
    ssize_t w = write(fd, s, n);
    if (w < 0) { if (errno == EINTR) continue; return -1; }
    s += w; n -= (size_t)w;
  }
  return 0;
}

static void fmt_int(char *buf, long v) {
  char tmp[24]; int t = 0, n = 0;
  if (v < 0) { buf[n++] = '-'; v = -v; }
  do { tmp[t++] = '0' + v % 10; v /= 10; } while (v);
  while (t) buf[n++] = tmp[--t];
  buf[n] = 0;
}

#endif
