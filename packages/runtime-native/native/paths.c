/* Path resolution inside the container's root, and mounts onto resolved fds. */
#include "common.h"

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

/* A mountinfo line (id parent major:minor root mountpoint options [optional...] - fstype source superopts):
 * -1 if it is not mount `id`, else whether its optional fields say shared. */
static int mountinfo_line_shared(char *line, uint64_t id) {
  uint64_t v = 0;
  const char *p = line;
  while (*p >= '0' && *p <= '9') v = v * 10 + (uint64_t)(*p++ - '0');
  if (p == line || *p != ' ' || v != id) return -1;
  int field = 0;
  for (char *t = line; t; field++) {
    char *sp = strchr(t, ' ');
    if (sp) *sp = 0;
    if (field >= 6 && strcmp(t, "-") == 0) break;
    if (field >= 6 && strncmp(t, "shared:", 7) == 0) return 1;
    t = sp ? sp + 1 : NULL;
  }
  return 0;
}

/* Whether the mount with this id (mountinfo's first field) is shared: 1, 0, or -1 with errno. Read in chunks
 * (no malloc in the container's process); a line longer than the buffer is skipped unless it is the one sought,
 * whose optional fields then cannot be seen (E2BIG). */
static int mount_is_shared(uint64_t id) {
  int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[8192];
  size_t len = 0;
  int result = -2, skip = 0;
  while (result == -2) {
    ssize_t n;
    do n = read(fd, buf + len, sizeof buf - 1 - len); while (n < 0 && errno == EINTR);
    if (n < 0) { result = -1; break; }
    len += (size_t)n;
    buf[len] = 0;
    size_t start = 0;
    while (result == -2 && start < len) {
      char *nl = memchr(buf + start, '\n', len - start);
      if (!nl && n > 0 && !(start == 0 && len == sizeof buf - 1)) break; /* the line's end is still to come */
      if (nl) *nl = 0;
      int r = skip ? -1 : mountinfo_line_shared(buf + start, id);
      if (r >= 0 && !nl && n > 0) { errno = E2BIG; r = -1; result = -1; }
      else if (r >= 0) result = r;
      skip = !nl && n > 0;
      start = nl ? (size_t)(nl - buf) + 1 : len;
    }
    if (n == 0 && result == -2) { errno = ENOENT; result = -1; }
    len -= start;
    memmove(buf, buf + start, len);
  }
  int e = errno;
  close(fd);
  errno = e;
  return result;
}

/* As runc's rootfsParentMountPrivate: the mount holding the rootfs (the rootfs itself if it is a mount's root)
 * is made private when it is shared, so that the rootfs bind propagates nowhere and pivot_root accepts it. Its
 * root is found by walking up the (absolute, symlink-free) path to the first mount root. */
static int rootfs_parent_private(const char *rootfs) {
  char path[4096];
  size_t n = strlen(rootfs);
  if (n >= sizeof path) { errno = ENAMETOOLONG; return -1; }
  memcpy(path, rootfs, n + 1);
  struct statx st;
  for (;;) {
    if (statx(AT_FDCWD, path, 0, STATX_MNT_ID, &st) < 0) return -1;
    if (!(st.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT)) { errno = ENOSYS; return -1; }
    if ((st.stx_attributes & STATX_ATTR_MOUNT_ROOT) || strcmp(path, "/") == 0) break;
    char *slash = strrchr(path, '/');
    if (slash == path) path[1] = 0;
    else *slash = 0;
  }
  if (!(st.stx_mask & STATX_MNT_ID)) { errno = ENOSYS; return -1; }
  int shared = mount_is_shared(st.stx_mnt_id);
  if (shared <= 0) return shared;
  return mount(NULL, path, NULL, MS_PRIVATE, NULL);
}
