/*
 * magikrun native launcher: only what must happen in the container's process between clone and execve.
 * TypeScript compiles config.json into a flat list of operations (see src/launch-plan.ts); this file runs them
 * in order and reports the first failure as (operation index, errno) on the status pipe.
 *
 * Process tree: caller --vfork+exec--> magikrun-reaper --clone(new namespaces, no CLONE_VM)--> container
 * (or, without that program, caller --fork--> reaper). The reaper outlives the caller and records the
 * container's exit status in the state directory.
 * One translation unit: common.h (records, messages), paths.c (resolution inside the root), ops.c (the
 * operations), this file (processes and the entry points called from TypeScript).
 * Rules (each one a measured failure, see /work/shared/notes/native-runtime.md): no malloc, stdio, locale or
 * glibc id-changing wrappers after fork; raw syscalls only; every fd O_CLOEXEC; signals reset before execve.
 */
#include "common.h"
#include "paths.c"
#include "ops.c"

struct child_args { const uint8_t *plan; size_t len; int status_fd, sync_fd, user_ns, first_index; };

static int container_main(void *arg) {
  struct child_args *ca = arg;
  struct ctx c = {.status_fd = ca->status_fd, .sync_fd = ca->sync_fd, .root_fd = -1,
                  .console_sock = -1, .user_ns = ca->user_ns, .fail_value = -1};
  c.exec_path[0] = 0;
  /* Until execve the process image is the runtime's: /proc/<pid>/exe and mem must not be reachable. */
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  const uint8_t *p = ca->plan, *end = ca->plan + ca->len;
  struct rec r;
  int index = ca->first_index;
  while ((p = next_rec(p, end, &r)) != NULL) {
    if (run_op(&c, &r) < 0) {
      int e = errno;
      send_msg(c.status_fd, MSG_ERROR, index, e, c.fail_value >= 0 ? c.fail_value : (int)r.op);
      /* After start nobody reads the status pipe: say it where the user looks, like a shell would. The
       * record's last string is the step's label. */
      char num[16];
      fmt_int(num, e);
      const char *label = r.nstrs ? r.strs[r.nstrs - 1] : "setup";
      write_all(2, "magikrun: ", 10);
      write_all(2, label, strlen(label));
      if (r.op == OP_HOOK && e == ETIMEDOUT) {
        num[0] = 0;
        write_all(2, ": timed out", 11);
      } else if (c.fail_value >= 0) {
        fmt_int(num, c.fail_value);
        write_all(2, ": exit status ", 14);
      } else {
        write_all(2, ": errno ", 8);
      }
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


#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

/*
 * Operations the reaper runs before it clones, so that the container is born in the right time namespace:
 * clone(2) cannot create one and the kernel applies offsets only before anyone entered.
 * OP_REAPER_TIMENS (ints: monotonic secs, nsecs, boottime secs, nsecs): unshare a time namespace for the
 * children, write its offsets, and enter it too (the reaper lives in the container's time, as it always has).
 * OP_REAPER_SETNS (ints: fd, nstype): join a namespace (time: by path, or the container's for exec).
 */
static int reaper_op(const struct rec *r) {
  if (r->op == OP_REAPER_SETNS) return setns((int)r->ints[0], (int)r->ints[1]);
  if (unshare(CLONE_NEWTIME) < 0) return -1;
  char buf[160], num[24];
  buf[0] = 0;
  for (int clock = 0; clock < 2; clock++) {
    strcat(buf, clock ? "7 " : "1 "); /* CLOCK_MONOTONIC, CLOCK_BOOTTIME */
    fmt_int(num, (long)r->ints[2 * clock]);
    strcat(buf, num);
    strcat(buf, " ");
    fmt_int(num, (long)r->ints[2 * clock + 1]);
    strcat(buf, num);
    strcat(buf, "\n");
  }
  int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  int rc = write_all(fd, buf, strlen(buf));
  int e = errno;
  close(fd);
  if (rc < 0) { errno = e; return -1; }
  fd = open("/proc/self/ns/time_for_children", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  rc = setns(fd, CLONE_NEWTIME);
  e = errno;
  close(fd);
  errno = e;
  return rc;
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

/* Closes every fd from 3 up except two. close_range keeps this to a few syscalls: a close() per possible fd
 * (a thousand) kept a core busy right when the runtime has to wake up for the container's pid. */
static void close_all_but(int a, int b) {
  int lo = a < b ? a : b, hi = a < b ? b : a;
  unsigned int from = 3;
  int keep[2] = {lo, hi};
  for (int i = 0; i < 2; i++) {
    if (keep[i] < 3 || (unsigned int)keep[i] < from) continue;
    if ((unsigned int)keep[i] > from && syscall(SYS_close_range, from, (unsigned int)keep[i] - 1, 0) < 0)
      for (int fd = (int)from; fd < keep[i]; fd++) close(fd);
    from = (unsigned int)keep[i] + 1;
  }
  if (syscall(SYS_close_range, from, ~0U, 0) < 0)
    for (int fd = (int)from; fd < 1024; fd++) close(fd);
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
  /* Leading reaper records; the container runs the rest and numbers its steps after them. */
  const uint8_t *rest = plan, *end = plan + len, *p;
  struct rec r;
  int first = 0;
  while ((p = next_rec(rest, end, &r)) != NULL && (r.op == OP_REAPER_TIMENS || r.op == OP_REAPER_SETNS)) {
    if (reaper_op(&r) < 0) {
      send_msg(fds[0], MSG_ERROR, first, errno, (int)r.op);
      _exit(1);
    }
    rest = p;
    first++;
  }
  size_t stack_size = 256 * 1024;
  void *stack = mmap(NULL, stack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) { send_msg(fds[0], MSG_ERROR, -1, errno, 0); _exit(1); }
  static struct child_args ca;
  ca.plan = rest; ca.len = len - (size_t)(rest - plan); ca.status_fd = fds[0]; ca.sync_fd = fds[1];
  ca.user_ns = user_ns; ca.first_index = first;
  /* No CLONE_VM: a child sharing the reaper's memory without its own TLS shares errno with it, and the reaper's
   * close loop below (EBADF on each unused fd) then overwrote the child's errno between a failing call and its
   * check (e.g. fstatat's ENOENT in mkpath_in_root): setup failed at random steps with EBADF. The reaper is a
   * small image (or a fork of the runtime without the program), so a copy-on-write child costs little. */
  int child = clone(container_main, (char *)stack + stack_size, (int)clone_flags | SIGCHLD, &ca);
  if (child < 0) { send_msg(fds[0], MSG_ERROR, -1, errno, 0); _exit(1); }
  send_msg(fds[0], MSG_PID, 0, 0, child);
  /* keep only the state dir and the exit notification pipe: the caller sees EOF when the reaper is done */
  int keep_dir = fds[2], keep_notify = fds[3];
  close_all_but(keep_dir, keep_notify);
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
