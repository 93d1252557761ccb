/* The operations of a launch plan, one case each (numbering shared with src/plan-encoder.ts). */
#include "common.h"
/* launcher.c includes paths.c before this file. */

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

static int read_sync(struct ctx *c) {
  char b;
  ssize_t n;
  do n = read(c->sync_fd, &b, 1); while (n < 0 && errno == EINTR);
  if (n != 1) { errno = n == 0 ? EPIPE : errno; return -1; }
  return 0;
}

/* A program exec'd from here must not inherit the launcher's handlers or its blocked signals. */
static void reset_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  for (int sig = 1; sig < 65; sig++) syscall(SYS_rt_sigaction, sig, &sa, NULL, 8);
  sigset_t none;
  sigemptyset(&none);
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, 8);
}

/*
 * A createContainer/startContainer hook, run from the container's process so that it is in the container's
 * namespaces (and, before pivot_root, sees the host's tree in the container's mount namespace).
 * ints: state fd (the state JSON, read from offset 0), timeout ms (0: none), argc, envc; strs: path, argv, env.
 * The hook gets the state on stdin, stdout and stderr on the container process's stderr, no other fd.
 * Failure: ETIMEDOUT (killed at the timeout) or ECHILD with the exit status in c->fail_value.
 */
static int run_hook(struct ctx *c, struct rec *r) {
  const int64_t *a = r->ints;
  int argc = (int)a[2], envc = (int)a[3];
  if (argc > MAX_ARGS || envc > MAX_ARGS) { errno = E2BIG; return -1; }
  char *argv[MAX_ARGS + 1], *envp[MAX_ARGS + 1];
  for (int i = 0; i < argc; i++) argv[i] = (char *)r->strs[1 + i];
  argv[argc] = NULL;
  for (int i = 0; i < envc; i++) envp[i] = (char *)r->strs[1 + argc + i];
  envp[envc] = NULL;
  if (lseek((int)a[0], 0, SEEK_SET) < 0) return -1;
  /* raw fork: no glibc fork handlers or locks in a process that is not a normal glibc thread */
  long pid = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
  if (pid < 0) return -1;
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (dup2((int)a[0], 0) < 0 || dup2(2, 1) < 0) _exit(126);
    syscall(SYS_close_range, 3, ~0u, 0);
    reset_signals();
    execve(r->strs[0], argv, envp);
    _exit(127);
  }
  int pidfd = (int)syscall(SYS_pidfd_open, (int)pid, 0);
  if (pidfd >= 0) {
    struct pollfd p = {.fd = pidfd, .events = POLLIN};
    int n;
    do n = poll(&p, 1, a[1] > 0 ? (int)a[1] : -1); while (n < 0 && errno == EINTR);
    close(pidfd);
    if (n == 0) {
      kill((int)pid, SIGKILL);
      waitpid((int)pid, NULL, __WALL);
      errno = ETIMEDOUT;
      return -1;
    }
  }
  int status = 0;
  long w;
  do w = waitpid((int)pid, &status, __WALL); while (w < 0 && errno == EINTR);
  if (w < 0) return -1;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
  c->fail_value = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  errno = ECHILD;
  return -1;
}

static int run_op(struct ctx *c, struct rec *r) {
  const int64_t *a = r->ints;
  const char **s = r->strs;
  switch (r->op) {
  case OP_SETNS: return setns((int)a[0], (int)a[1]);
  case OP_SYNC_WAIT: return read_sync(c);
  case OP_HOOKS_SYNC: /* the runtime runs prestart and createRuntime hooks now, then writes one byte */
    send_msg(c->status_fd, MSG_HOOKS, 0, 0, 0);
    return read_sync(c);
  case OP_HOOK: return run_hook(c, r);
  case OP_UNSHARE: return unshare((int)a[0]);
  case OP_SETHOSTNAME: return sethostname(s[0], strlen(s[0]));
  case OP_SETDOMAINNAME: return setdomainname(s[0], strlen(s[0]));
  case OP_MOUNT_ROOT_PROP:
    /* ints: flags[, 1: then make the rootfs's parent mount private if shared]; strs: [rootfs] */
    if (mount(NULL, "/", NULL, (unsigned long)a[0], NULL) < 0) return -1;
    return r->nints > 1 && a[1] && r->nstrs > 0 ? rootfs_parent_private(s[0]) : 0;
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
    if (a[0]) { /* --no-pivot: move the root over / and chroot, as runc does on ramfs */
      if (fchdir(c->root_fd) < 0) return -1;
      if (mount(".", "/", NULL, MS_MOVE, NULL) < 0) return -1;
      if (chroot(".") < 0) return -1;
    } else {
      /* The old root ends up mounted over the new one; from inside the old root, "." names it (from the new
       * root's directory it names the new root's mount, whose propagation must stay as set up). rslave keeps
       * the detach from propagating to the host. */
      int old = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (old < 0) return -1;
      int rc = fchdir(c->root_fd);
      if (rc == 0) rc = (int)syscall(SYS_pivot_root, ".", ".");
      if (rc == 0) rc = fchdir(old);
      int e = errno;
      close(old);
      errno = e;
      if (rc < 0) return -1;
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
    reset_signals();
    execve(c->exec_path[0] ? c->exec_path : argv[0], argv, envp);
    return -1;
  }
  }
  errno = ENOSYS;
  return -1;
}

