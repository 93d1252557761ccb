/*
 * magikrun native launcher: only what must happen in the container's process between clone and execve.
 * TypeScript compiles config.json into a flat list of operations (see src/launch-plan.ts); this file runs them
 * in order and reports the first failure as (operation index, errno) on the status pipe.
 *
 * Process tree:  caller (Bun) --fork--> reaper --clone(CLONE_VM, new namespaces)--> container
 * The reaper outlives the caller and records the container's exit status in the state directory.
 * Rules (each one a measured failure, see /work/shared/notes/native-runtime.md): no malloc, stdio, locale or
 * glibc id-changing wrappers after fork; raw syscalls only; every fd O_CLOEXEC; signals reset before execve.
 */
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
  OP_NNP, OP_SECCOMP, OP_EXEC, OP_STDIO, OP_UNUSED_34, OP_SETSID, OP_READY
};

#define MAX_STRS 1024
#define MAX_ARGS 510

enum { MSG_PID = 1, MSG_ERROR = 2, MSG_READY = 3 };
struct msg { int32_t kind, index, err, value; };

struct rec { uint32_t op, nints, nstrs; const int64_t *ints; const char *strs[MAX_STRS]; };

struct ctx {
  int status_fd, sync_fd, root_fd, console_sock, user_ns;
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

static int open_in_root(int root_fd, const char *path, int flags) {
  struct open_how how = {.flags = (uint64_t)flags | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
  return (int)syscall(SYS_openat2, root_fd, path, &how, sizeof how);
}

/* Creates every missing component of path inside the root and returns an O_PATH fd of the last one (a
 * directory, or an empty file with as_file). Symlinks are followed by hand, as if the root were "/": an
 * absolute or climbing link in the image lands inside the root and the missing part of its target is created
 * there, never on the host (the class of CVE-2021-30465). The final open uses RESOLVE_IN_ROOT as well. */
static int mkpath_in_root(int root_fd, const char *path, int as_file) {
  char todo[4096], resolved[4096], link[4096];
  size_t tlen = strlen(path);
  if (tlen >= sizeof todo) { errno = ENAMETOOLONG; return -1; }
  memcpy(todo, path, tlen + 1);
  resolved[0] = 0;
  int links = 0;
  size_t pos = 0;
  while (todo[pos]) {
    while (todo[pos] == '/') pos++;
    if (!todo[pos]) break;
    size_t start = pos;
    while (todo[pos] && todo[pos] != '/') pos++;
    size_t n = pos - start;
    char name[256];
    if (n >= sizeof name) { errno = ENAMETOOLONG; return -1; }
    memcpy(name, todo + start, n);
    name[n] = 0;
    size_t rest = pos;
    while (todo[rest] == '/') rest++;
    int last = todo[rest] == 0;
    if (strcmp(name, ".") == 0) continue;
    if (strcmp(name, "..") == 0) {
      char *slash = strrchr(resolved, '/');
      if (slash) *slash = 0; /* ".." at the root stays at the root */
      continue;
    }
    int parent = open_in_root(root_fd, resolved[0] ? resolved : "/", O_PATH | O_DIRECTORY);
    if (parent < 0) return -1;
    struct stat st;
    if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
      if (errno != ENOENT) { close(parent); return -1; }
      int rc;
      if (last && as_file) {
        int f = openat(parent, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
        rc = f < 0 ? -1 : 0;
        if (f >= 0) close(f);
      } else {
        rc = mkdirat(parent, name, 0755);
      }
      if (rc < 0 && errno != EEXIST) { close(parent); return -1; }
    } else if (S_ISLNK(st.st_mode)) {
      ssize_t l = readlinkat(parent, name, link, sizeof link - 1);
      close(parent);
      if (l < 0) return -1;
      link[l] = 0;
      if (++links > 40) { errno = ELOOP; return -1; }
      /* the rest of the path goes after the link's target */
      size_t restlen = strlen(todo + pos);
      if ((size_t)l + restlen + 2 >= sizeof todo) { errno = ENAMETOOLONG; return -1; }
      memmove(todo + l + 1, todo + pos, restlen + 1);
      memcpy(todo, link, (size_t)l);
      todo[l] = '/';
      pos = 0;
      if (link[0] == '/') resolved[0] = 0;
      continue;
    }
    close(parent);
    size_t rlen = strlen(resolved);
    if (rlen + n + 2 >= sizeof resolved) { errno = ENAMETOOLONG; return -1; }
    resolved[rlen] = '/';
    memcpy(resolved + rlen + 1, name, n + 1);
  }
  return open_in_root(root_fd, resolved[0] ? resolved : "/", O_PATH | O_NOFOLLOW);
}

/* Mount flags a bind remount must keep: in a user namespace the kernel refuses to clear locked ones. */
static unsigned long kept_flags(int fd) {
  struct statvfs sv;
  unsigned long keep = 0;
  if (fstatvfs(fd, &sv) < 0) return 0;
  if (sv.f_flag & ST_NOSUID) keep |= MS_NOSUID;
  if (sv.f_flag & ST_NODEV) keep |= MS_NODEV;
  if (sv.f_flag & ST_NOEXEC) keep |= MS_NOEXEC;
  if (sv.f_flag & ST_NOATIME) keep |= MS_NOATIME;
  if (sv.f_flag & ST_NODIRATIME) keep |= MS_NODIRATIME;
  if (sv.f_flag & ST_RELATIME) keep |= MS_RELATIME;
  return keep;
}

static int mount_at_fd(const char *src, int fd, const char *type, unsigned long flags, const char *data) {
  char p[64];
  fd_path(p, fd);
  return mount(src, p, type, flags, data);
}

static int write_all(int fd, const char *s, size_t n) {
  while (n) {
    ssize_t w = write(fd, s, n);
    if (w < 0) { if (errno == EINTR) continue; return -1; }
    s += w; n -= (size_t)w;
  }
  return 0;
}

static int write_file(const char *path, const char *content) {
  int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return -1;
  int r = write_all(fd, content, strlen(content));
  int e = errno;
  close(fd);
  errno = e;
  return r;
}

static int send_console(int sock, int master) {
  char cbuf[CMSG_SPACE(sizeof(int))];
  memset(cbuf, 0, sizeof cbuf);
  char name[] = "/dev/ptmx";
  struct iovec iov = {.iov_base = name, .iov_len = sizeof name - 1};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
  struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &master, sizeof(int));
  return sendmsg(sock, &mh, MSG_NOSIGNAL) < 0 ? -1 : 0;
}

struct cap_header { uint32_t version; int pid; };
struct cap_data { uint32_t effective, permitted, inheritable; };

static int find_exec(struct ctx *c, const char *arg0, const char *path_env) {
  if (strchr(arg0, '/')) {
    if (strlen(arg0) >= sizeof c->exec_path) { errno = ENAMETOOLONG; return -1; }
    strcpy(c->exec_path, arg0);
    return access(arg0, X_OK);
  }
  const char *p = path_env;
  int last_err = ENOENT;
  while (*p) {
    const char *colon = strchr(p, ':');
    size_t n = colon ? (size_t)(colon - p) : strlen(p);
    if (n + strlen(arg0) + 2 < sizeof c->exec_path) {
      memcpy(c->exec_path, p, n);
      c->exec_path[n] = '/';
      strcpy(c->exec_path + n + 1, arg0);
      struct stat st;
      if (stat(c->exec_path, &st) == 0 && S_ISREG(st.st_mode)) {
        if (access(c->exec_path, X_OK) == 0) return 0;
        last_err = errno;
      }
    }
    if (!colon) break;
    p = colon + 1;
  }
  errno = last_err;
  return -1;
}

static int run_op(struct ctx *c, struct rec *r) {
  const int64_t *a = r->ints;
  const char **s = r->strs;
  switch (r->op) {
  case OP_SETNS: return setns((int)a[0], (int)a[1]);
  case OP_SYNC_WAIT: {
    char b;
    ssize_t n;
    do n = read(c->sync_fd, &b, 1); while (n < 0 && errno == EINTR);
    if (n != 1) { errno = n == 0 ? EPIPE : errno; return -1; }
    return 0;
  }
  case OP_UNSHARE: return unshare((int)a[0]);
  case OP_SETHOSTNAME: return sethostname(s[0], strlen(s[0]));
  case OP_SETDOMAINNAME: return setdomainname(s[0], strlen(s[0]));
  case OP_MOUNT_ROOT_PROP: return mount(NULL, "/", NULL, (unsigned long)a[0], NULL);
  case OP_BIND_ROOTFS:
    if (mount(s[0], s[0], NULL, MS_BIND | MS_REC, NULL) < 0) return -1;
    c->rootfs = s[0];
    c->root_fd = open(s[0], O_PATH | O_DIRECTORY | O_CLOEXEC);
    return c->root_fd < 0 ? -1 : 0;
  case OP_MOUNT: {
    /* ints: flags, propagation, is_file, remount_flags, host_source_fd(-1); strs: src, dest, type, data */
    int fd = mkpath_in_root(c->root_fd, s[1], (int)a[2]);
    if (fd < 0) return -1;
    const char *type = s[2][0] ? s[2] : NULL;
    const char *data = s[3][0] ? s[3] : NULL;
    int rc = mount_at_fd(s[0], fd, type, (unsigned long)a[0], data);
    if (rc == 0 && a[3]) {
      int pfd = open_in_root(c->root_fd, s[1], O_PATH); /* fd names the covered dentry; a new walk reaches the mount */
      if (pfd < 0) rc = -1;
      else {
        rc = mount_at_fd(NULL, pfd, NULL, MS_REMOUNT | MS_BIND | (unsigned long)a[3] | kept_flags(pfd), NULL);
        close(pfd);
      }
    }
    if (rc == 0 && a[1]) {
      int pfd = open_in_root(c->root_fd, s[1], O_PATH);
      rc = pfd < 0 ? -1 : mount_at_fd(NULL, pfd, NULL, (unsigned long)a[1], NULL);
      if (pfd >= 0) close(pfd);
    }
    int e = errno;
    close(fd);
    errno = e;
    return rc;
  }
  case OP_MKNOD: {
    /* ints: mode, major, minor, uid, gid; strs: path, host_path */
    int fd = mkpath_in_root(c->root_fd, s[0], 1);
    if (fd < 0) return -1;
    int rc = -1;
    if (!c->user_ns) {
      char dir[4096];
      const char *slash = strrchr(s[0], '/');
      size_t n = slash ? (size_t)(slash - s[0]) : 0;
      memcpy(dir, s[0], n);
      dir[n] = 0;
      int dfd = open_in_root(c->root_fd, n ? dir : "/", O_PATH | O_DIRECTORY);
      if (dfd >= 0) {
        unlinkat(dfd, slash ? slash + 1 : s[0], 0);
        rc = mknodat(dfd, slash ? slash + 1 : s[0], (mode_t)a[0], makedev(a[1], a[2]));
        /* mknod applies the umask; the mode in config.json is the mode the node gets */
        if (rc == 0) rc = fchmodat(dfd, slash ? slash + 1 : s[0], (mode_t)a[0] & 07777, 0);
        if (rc == 0) rc = fchownat(dfd, slash ? slash + 1 : s[0], (uid_t)a[3], (gid_t)a[4], AT_SYMLINK_NOFOLLOW);
        close(dfd);
      }
    } else {
      rc = mount_at_fd(s[1], fd, NULL, MS_BIND, NULL);
    }
    int e = errno;
    close(fd);
    errno = e;
    return rc;
  }
  case OP_SYMLINK: {
    int fd = open_in_root(c->root_fd, s[1], O_PATH | O_NOFOLLOW);
    if (fd >= 0) { close(fd); return 0; }
    char dir[4096];
    const char *slash = strrchr(s[1], '/');
    size_t n = slash ? (size_t)(slash - s[1]) : 0;
    memcpy(dir, s[1], n);
    dir[n] = 0;
    int dfd = mkpath_in_root(c->root_fd, n ? dir : "/", 0);
    if (dfd < 0) return -1;
    char p[64];
    fd_path(p, dfd);
    int real = open(p, O_DIRECTORY | O_CLOEXEC);
    close(dfd);
    if (real < 0) return -1;
    int rc = symlinkat(s[0], real, slash ? slash + 1 : s[1]);
    if (rc < 0 && errno == EEXIST) rc = 0;
    close(real);
    return rc;
  }
  case OP_PIVOT:
    if (fchdir(c->root_fd) < 0) return -1;
    if (a[0]) { /* --no-pivot: move the root over / and chroot, as runc does on ramfs */
      if (mount(".", "/", NULL, MS_MOVE, NULL) < 0) return -1;
      if (chroot(".") < 0) return -1;
    } else {
      if (syscall(SYS_pivot_root, ".", ".") < 0) return -1;
      if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0) return -1;
      if (umount2(".", MNT_DETACH) < 0) return -1;
    }
    close(c->root_fd);
    c->root_fd = -1;
    return chdir("/");
  case OP_MASK: {
    int fd = open(s[0], O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? 0 : -1;
    struct stat st;
    int rc = fstat(fd, &st);
    if (rc == 0) {
      char p[64];
      fd_path(p, fd);
      if (S_ISDIR(st.st_mode)) rc = mount("tmpfs", p, "tmpfs", MS_RDONLY, "size=0k");
      else rc = mount("/dev/null", p, NULL, MS_BIND, NULL);
    }
    int e = errno;
    close(fd);
    errno = e;
    return rc;
  }
  case OP_READONLY: {
    int fd = open(s[0], O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? 0 : -1;
    char p[64];
    fd_path(p, fd);
    int rc = mount(p, p, NULL, MS_BIND | MS_REC, NULL);
    if (rc == 0) {
      int nfd = open(s[0], O_PATH | O_NOFOLLOW | O_CLOEXEC);
      if (nfd < 0) rc = -1;
      else {
        fd_path(p, nfd);
        rc = mount(NULL, p, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | kept_flags(nfd), NULL);
        close(nfd);
      }
    }
    int e = errno;
    close(fd);
    errno = e;
    return rc;
  }
  case OP_REMOUNT_ROOT_RO: {
    int fd = open("/", O_PATH | O_CLOEXEC);
    if (fd < 0) return -1;
    unsigned long keep = kept_flags(fd);
    close(fd);
    return mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | keep, NULL);
  }
  case OP_WRITE_FILE: return write_file(s[0], s[1]);
  case OP_RLIMIT: {
    struct rlimit rl = {(rlim_t)a[1], (rlim_t)a[2]};
    return setrlimit((int)a[0], &rl);
  }
  case OP_CONSOLE_CONNECT: {
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(s[0]) >= sizeof addr.sun_path) { errno = ENAMETOOLONG; return -1; }
    strcpy(addr.sun_path, s[0]);
    c->console_sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->console_sock < 0) return -1;
    return connect(c->console_sock, (struct sockaddr *)&addr, sizeof addr);
  }
  case OP_CONSOLE: {
    /* ints: rows, cols, send_fd_to (-1: console socket) */
    int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) return -1;
    int unlock = 0;
    if (ioctl(master, TIOCSPTLCK, &unlock) < 0) return -1;
    int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0) return -1;
    if (a[0] > 0 && a[1] > 0) {
      struct winsize ws = {.ws_row = (unsigned short)a[0], .ws_col = (unsigned short)a[1]};
      ioctl(slave, TIOCSWINSZ, &ws);
    }
    if (send_console(c->console_sock, master) < 0) return -1;
    close(master);
    close(c->console_sock);
    c->console_sock = -1;
    if (setsid() < 0) return -1;
    if (ioctl(slave, TIOCSCTTY, 0) < 0) return -1;
    for (int i = 0; i < 3; i++)
      if (dup2(slave, i) < 0) return -1;
    if (slave > 2) close(slave);
    return 0;
  }
  case OP_SETSID: return setsid() < 0 ? -1 : 0;
  case OP_STDIO:
    for (int i = 0; i < 3; i++)
      if (a[i] >= 0 && a[i] != i && dup3((int)a[i], i, 0) < 0) return -1;
    return 0;
  case OP_CHDIR: {
    /* No magic links (a leaked /proc/self/fd/N would put the cwd outside the root: CVE-2024-21626), and the
     * result must be reachable from the root. */
    struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC, .resolve = RESOLVE_NO_MAGICLINKS};
    int fd = (int)syscall(SYS_openat2, AT_FDCWD, s[0], &how, sizeof how);
    if (fd < 0) return -1;
    int rc = fchdir(fd);
    close(fd);
    if (rc < 0) return -1;
    char cwd[4096];
    if (syscall(SYS_getcwd, cwd, sizeof cwd) < 0 || cwd[0] != '/') { errno = ENOENT; return -1; }
    return 0;
  }
  case OP_CAPS_BOUNDING: {
    uint64_t keep = (uint64_t)a[0];
    for (int cap = 0; cap <= (int)a[1]; cap++)
      if (!(keep & (1ull << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL) return -1;
    return 0;
  }
  case OP_KEEPCAPS: return prctl(PR_SET_KEEPCAPS, (int)a[0], 0, 0, 0);
  case OP_SETGROUPS: {
    gid_t g[64];
    uint32_t n = r->nints > 64 ? 64 : r->nints;
    for (uint32_t i = 0; i < n; i++) g[i] = (gid_t)a[i];
    return (int)syscall(SYS_setgroups, n, g);
  }
  case OP_SETRESGID: return (int)syscall(SYS_setresgid, (gid_t)a[0], (gid_t)a[0], (gid_t)a[0]);
  case OP_SETRESUID: return (int)syscall(SYS_setresuid, (uid_t)a[0], (uid_t)a[0], (uid_t)a[0]);
  case OP_UMASK: umask((mode_t)a[0]); return 0;
  case OP_FIND_EXEC: return find_exec(c, s[0], s[1]);
  case OP_READY: send_msg(c->status_fd, MSG_READY, 0, 0, 0); return 0;
  case OP_FIFO_WAIT: {
    /* The runtime opened the exec fifo for reading (non-blocking) before the clone: no path is resolved here,
     * so it works in any user namespace and without /proc. `start` opens it for writing and writes one byte;
     * until then poll sleeps (a fifo that never had a writer reports no hangup). */
    int fd = (int)a[0];
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r;
    do r = poll(&p, 1, -1); while (r < 0 && errno == EINTR);
    if (r < 0) return -1;
    char b;
    ssize_t n;
    do n = read(fd, &b, 1); while (n < 0 && errno == EINTR);
    close(fd);
    if (n != 1) { errno = n < 0 ? errno : EPIPE; return -1; }
    return 0;
  }
  case OP_CAPSET: {
    struct cap_header h = {0x20080522, 0};
    struct cap_data d[2];
    for (int i = 0; i < 2; i++) {
      d[i].effective = (uint32_t)((uint64_t)a[0] >> (32 * i));
      d[i].permitted = (uint32_t)((uint64_t)a[1] >> (32 * i));
      d[i].inheritable = (uint32_t)((uint64_t)a[2] >> (32 * i));
    }
    return (int)syscall(SYS_capset, &h, d);
  }
  case OP_AMBIENT: {
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0) return -1;
    for (int cap = 0; cap < 64; cap++)
      if (((uint64_t)a[0] & (1ull << cap)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0) return -1;
    return 0;
  }
  case OP_NNP: return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  case OP_SECCOMP: {
    /* ints: number of filters, flags; strs: none; the program follows as ints[2..] packed 8 bytes each */
    struct sock_fprog prog = {.len = (unsigned short)a[0], .filter = (struct sock_filter *)(void *)&a[2]};
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, (unsigned)a[1], &prog);
  }
  case OP_EXEC: {
    /* ints: argc, envc; strs: argv..., env... */
    int argc = (int)a[0], envc = (int)a[1];
    char *argv[MAX_ARGS + 1], *envp[MAX_ARGS + 1];
    if (argc > MAX_ARGS || envc > MAX_ARGS) { errno = E2BIG; return -1; }
    for (int i = 0; i < argc; i++) argv[i] = (char *)s[i];
    argv[argc] = NULL;
    for (int i = 0; i < envc; i++) envp[i] = (char *)s[argc + i];
    envp[envc] = NULL;
    syscall(SYS_close_range, 3, ~0u, CLOSE_RANGE_CLOEXEC);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    for (int sig = 1; sig < 65; sig++) syscall(SYS_rt_sigaction, sig, &sa, NULL, 8);
    sigset_t none;
    sigemptyset(&none);
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, 8);
    execve(c->exec_path[0] ? c->exec_path : argv[0], argv, envp);
    return -1;
  }
  }
  errno = ENOSYS;
  return -1;
}

static void fmt_int(char *buf, long v) {
  char tmp[24]; int t = 0, n = 0;
  if (v < 0) { buf[n++] = '-'; v = -v; }
  do { tmp[t++] = '0' + v % 10; v /= 10; } while (v);
  while (t) buf[n++] = tmp[--t];
  buf[n] = 0;
}

struct child_args { const uint8_t *plan; size_t len; int status_fd, sync_fd, user_ns; };

static int container_main(void *arg) {
  struct child_args *ca = arg;
  struct ctx c = {.status_fd = ca->status_fd, .sync_fd = ca->sync_fd, .root_fd = -1,
                  .console_sock = -1, .user_ns = ca->user_ns};
  c.exec_path[0] = 0;
  /* Until execve the process image is the runtime's: /proc/<pid>/exe and mem must not be reachable. */
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  const uint8_t *p = ca->plan, *end = ca->plan + ca->len;
  struct rec r;
  int index = 0;
  while ((p = next_rec(p, end, &r)) != NULL) {
    if (run_op(&c, &r) < 0) {
      int e = errno;
      send_msg(c.status_fd, MSG_ERROR, index, e, (int)r.op);
      /* After start nobody reads the status pipe: say it where the user looks, like a shell would. The
       * record's last string is the step's label. */
      char num[16];
      fmt_int(num, e);
      const char *label = r.nstrs ? r.strs[r.nstrs - 1] : "setup";
      write_all(2, "magikrun: ", 10);
      write_all(2, label, strlen(label));
      write_all(2, ": errno ", 8);
      write_all(2, num, strlen(num));
      write_all(2, "\n", 1);
      _exit(e == ENOENT ? 127 : 126);
    }
    index++;
  }
  send_msg(c.status_fd, MSG_ERROR, index, EINVAL, 0);
  _exit(126);
  return 126; /* not reached; TinyCC cannot tell */
}


/* The reaper's whole life: wait for the container, write "<code> <signal>" to <state>/exit, exit. */
static void reap(int pid, int state_dir_fd) {
  int status = 0;
  for (;;) {
    int w = waitpid(-1, &status, __WALL);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) _exit(1);
  }
  char line[64], num[24];
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  fmt_int(num, code);
  strcpy(line, num);
  strcat(line, " ");
  fmt_int(num, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  strcat(line, num);
  strcat(line, "\n");
  int fd = openat(state_dir_fd, "exit.tmp", O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
  if (fd >= 0) {
    write_all(fd, line, strlen(line));
    close(fd);
    renameat(state_dir_fd, "exit.tmp", state_dir_fd, "exit");
  }
  _exit(0);
}

/*
 * The reaper's life: enter the pid namespace to join, clone the container, report its pid, keep only the state
 * dir and the exit pipe, wait, record the exit status. Runs either in magikrun-reaper (the normal path) or,
 * without that program, in a fork of the runtime (which then execs the program to drop its image if it can).
 */
static void reaper_main(const uint8_t *plan, size_t len, int64_t clone_flags, const int32_t *fds, int user_ns,
                        const char *reaper_path) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  for (int sig = 1; sig < 65; sig++) syscall(SYS_rt_sigaction, sig, &sa, NULL, 8);
  setsid();
  prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  if (fds[4] >= 0 && setns(fds[4], CLONE_NEWPID) < 0) {
    send_msg(fds[0], MSG_ERROR, -1, errno, OP_SETNS);
    _exit(1);
  }
  size_t stack_size = 256 * 1024;
  void *stack = mmap(NULL, stack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) { send_msg(fds[0], MSG_ERROR, -1, errno, 0); _exit(1); }
  static struct child_args ca;
  ca.plan = plan; ca.len = len; ca.status_fd = fds[0]; ca.sync_fd = fds[1]; ca.user_ns = user_ns;
  int child = clone(container_main, (char *)stack + stack_size, CLONE_VM | (int)clone_flags | SIGCHLD, &ca);
  if (child < 0) { send_msg(fds[0], MSG_ERROR, -1, errno, 0); _exit(1); }
  send_msg(fds[0], MSG_PID, 0, 0, child);
  /* keep only the state dir and the exit notification pipe: the caller sees EOF when the reaper is done */
  int keep_dir = fds[2], keep_notify = fds[3];
  for (int fd = 3; fd < 1024; fd++)
    if (fd != keep_dir && fd != keep_notify) close(fd);
  int devnull = open("/dev/null", O_RDWR);
  if (devnull >= 0) { dup2(devnull, 0); dup2(devnull, 1); dup2(devnull, 2); if (devnull > 2) close(devnull); }
  if (reaper_path && reaper_path[0]) {
    /* Drop the runtime's image: a small static program does the waiting. */
    char pid_arg[24], dir_arg[24];
    fmt_int(pid_arg, child);
    fmt_int(dir_arg, keep_dir);
    fcntl(keep_dir, F_SETFD, 0);
    fcntl(keep_notify, F_SETFD, 0);
    char *argv[] = {"magikrun-reaper", pid_arg, dir_arg, NULL};
    char *envp[] = {NULL};
    /* the signal mask (all blocked) survives execve: only SIGKILL can stop the reaper */
    execve(reaper_path, argv, envp);
  }
  reap(child, keep_dir);
}

/* vfork path: the child shares the runtime's memory and thread (suspended) only until its execve. */
struct exec_request {
  const char *path;
  char **argv;
  const int32_t *inherit;
  int ninherit;
  volatile int err;
};

static char exec_stack[64 * 1024] __attribute__((aligned(16)));

static int exec_child(void *arg) {
  struct exec_request *r = arg;
  for (int i = 0; i < r->ninherit; i++)
    if (r->inherit[i] >= 0) fcntl(r->inherit[i], F_SETFD, 0);
  char *envp[] = {NULL};
  execve(r->path, r->argv, envp);
  r->err = errno;
  _exit(127);
  return 127; /* not reached; TinyCC cannot tell */
}

/*
 * Called from TypeScript. fds: [status_w, sync_r, state_dir, notify_w, pidns_fd(-1)]; inherit: every other fd
 * the plan names (namespaces to join, exec fifo, stdio). Returns the reaper's pid or -errno; the container's
 * pid arrives on the status pipe as MSG_PID.
 *
 * With magikrun-reaper available the runtime is never forked: a vfork child execs the program (a static binary
 * of a few hundred KB), which reads the plan from a memfd and clones the container from its own small image.
 * That costs no page-table copy of the (large) runtime process, and the container's image before its execve is
 * the small program, not Bun.
 */
int mr_launch(const uint8_t *plan, size_t len, int64_t clone_flags, const int32_t *fds, int user_ns,
              const char *reaper_path, const int32_t *inherit, int ninherit) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  if (reaper_path && reaper_path[0] && ninherit <= 64) {
    int memfd = memfd_create("magikrun-plan", MFD_CLOEXEC);
    if (memfd >= 0 && write_all(memfd, (const char *)plan, len) == 0) {
      char a_mem[24], a_len[24], a_flags[24], a_fd[5][24], a_user[24];
      fmt_int(a_mem, memfd);
      fmt_int(a_len, (long)len);
      fmt_int(a_flags, (long)clone_flags);
      for (int i = 0; i < 5; i++) fmt_int(a_fd[i], fds[i]);
      fmt_int(a_user, user_ns);
      char *argv[] = {"magikrun-reaper", "launch", a_mem, a_len, a_flags, a_fd[0], a_fd[1], a_fd[2],
                      a_fd[3], a_fd[4], a_user, NULL};
      int32_t keep[64 + 6];
      int n = 0;
      for (int i = 0; i < 5; i++) keep[n++] = fds[i];
      keep[n++] = memfd;
      for (int i = 0; i < ninherit; i++) keep[n++] = inherit[i];
      struct exec_request req = {.path = reaper_path, .argv = argv, .inherit = keep, .ninherit = n, .err = 0};
      int pid = clone(exec_child, exec_stack + sizeof exec_stack, CLONE_VM | CLONE_VFORK | SIGCHLD, &req);
      int e = errno;
      close(memfd);
      if (pid > 0 && req.err == 0) {
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return pid;
      }
      if (pid > 0) waitpid(pid, NULL, __WALL);
      else if (pid < 0) {
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return -e;
      }
      /* the program could not be executed: fall back to forking the runtime */
    } else if (memfd >= 0) {
      close(memfd);
    }
  }
  long pid = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
  if (pid != 0) {
    int e = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return pid < 0 ? -e : (int)pid;
  }
  reaper_main(plan, len, clone_flags, fds, user_ns, reaper_path);
  _exit(0);
  return 0; /* not reached; TinyCC cannot tell */
}

#ifdef MAGIKRUN_REAPER_MAIN
static int parse_int(const char *s) {
  int v = 0;
  while (*s >= '0' && *s <= '9') v = v * 10 + (*s++ - '0');
  return v;
}

static int parse_signed(const char *s) { return *s == '-' ? -parse_int(s + 1) : parse_int(s); }

/*
 * magikrun-reaper launch <memfd> <len> <clone flags> <status_w> <sync_r> <state_dir> <notify_w> <pidns> <userns>:
 *   the whole reaper, started by mr_launch's vfork.
 * magikrun-reaper <container pid> <state dir fd>: what a forked reaper does after dropping the runtime's image.
 */
int main(int argc, char **argv) {
  if (argc == 11 && strcmp(argv[1], "launch") == 0) {
    int memfd = parse_int(argv[2]);
    size_t len = (size_t)parse_int(argv[3]);
    int64_t flags = parse_int(argv[4]);
    int32_t fds[5];
    for (int i = 0; i < 5; i++) fds[i] = parse_signed(argv[5 + i]);
    const uint8_t *plan = mmap(NULL, len, PROT_READ, MAP_PRIVATE, memfd, 0);
    close(memfd);
    if (plan == MAP_FAILED) {
      send_msg(fds[0], MSG_ERROR, -1, errno, 0);
      return 1;
    }
    reaper_main(plan, len, flags, fds, parse_int(argv[10]), NULL);
    return 0;
  }
  if (argc != 3) return 2;
  reap(parse_int(argv[1]), parse_int(argv[2]));
  return 0;
}
#endif

/* Reads up to len bytes, waiting at most timeout_ms. Returns bytes read (0 = EOF) or -errno (-ETIMEDOUT). */
int mr_read_timeout(int fd, uint8_t *buf, int len, int timeout_ms) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  int r;
  do r = poll(&p, 1, timeout_ms); while (r < 0 && errno == EINTR);
  if (r < 0) return -errno;
  if (r == 0) return -ETIMEDOUT;
  ssize_t n;
  do n = read(fd, buf, (size_t)len); while (n < 0 && errno == EINTR);
  return n < 0 ? -errno : (int)n;
}

int mr_pipe(int32_t *out) { return pipe2(out, O_CLOEXEC) < 0 ? -errno : 0; }
int mr_flock(int fd, int op) { return flock(fd, op) < 0 ? -errno : 0; }
int mr_waitpid_nohang(int pid) {
  int status;
  int r = waitpid(pid, &status, WNOHANG | __WALL);
  return r < 0 ? -errno : r;
}
int mr_close(int fd) { return close(fd) < 0 ? -errno : 0; }
int mr_open(const char *path, int flags, int mode) {
  int fd = open(path, flags | O_CLOEXEC, mode);
  return fd < 0 ? -errno : fd;
}
int mr_write(int fd, const uint8_t *buf, int len) {
  ssize_t n;
  do n = write(fd, buf, (size_t)len); while (n < 0 && errno == EINTR);
  return n < 0 ? -errno : (int)n;
}
int mr_mkfifo(const char *path, int mode) { return mkfifo(path, (mode_t)mode) < 0 ? -errno : 0; }

/* A listening unix socket for --console-socket (O_CLOEXEC), and the receiving side of its SCM_RIGHTS message. */
int mr_console_listen(const char *path) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof addr.sun_path) return -ENAMETOOLONG;
  strcpy(addr.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, 4) < 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  return fd;
}

int mr_console_receive(int listen_fd, int timeout_ms) {
  struct pollfd p = {.fd = listen_fd, .events = POLLIN};
  if (poll(&p, 1, timeout_ms) <= 0) return -ETIMEDOUT;
  int conn = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
  if (conn < 0) return -errno;
  char data[64], cbuf[CMSG_SPACE(sizeof(int))];
  struct iovec iov = {.iov_base = data, .iov_len = sizeof data};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
  ssize_t n = recvmsg(conn, &mh, MSG_CMSG_CLOEXEC);
  int e = errno;
  close(conn);
  if (n < 0) return -e;
  struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
  if (!c || c->cmsg_type != SCM_RIGHTS) return -EBADMSG;
  int fd;
  memcpy(&fd, CMSG_DATA(c), sizeof fd);
  return fd;
}
