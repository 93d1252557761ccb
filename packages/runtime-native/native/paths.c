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

