// Sandbox escapes through preopens. Raw WASI calls show the errno the runtime returns; libc calls show what
// programs see. fd 3 is /sandbox (writable), fd 4 is /ro (read-only); the test creates the host layout.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wasi/api.h>

// The raw import, so a path can carry an explicit length (and an embedded NUL).
__attribute__((import_module("wasi_snapshot_preview1"), import_name("path_open"))) int32_t raw_path_open(
    int32_t fd, int32_t dirflags, const char *path, int32_t path_len, int32_t oflags, int64_t base, int64_t inh,
    int32_t fdflags, __wasi_fd_t *out);

static int open_raw(int dirfd, const char *path, size_t len, int follow, int oflags, uint64_t rights) {
  __wasi_fd_t fd;
  int err = raw_path_open(dirfd, follow ? __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW : 0, path, (int32_t)len, oflags,
                          (int64_t)rights, 0, 0, &fd);
  if (err == 0) (void)__wasi_fd_close(fd);
  return err;
}

static int open_at(int dirfd, const char *path, int follow) {
  return open_raw(dirfd, path, strlen(path), follow, 0, __WASI_RIGHTS_FD_READ);
}

static void show(const char *label, int err) { printf("%s=%d\n", label, err); }

int main(void) {
  show("dotdot", open_at(3, "../outside/secret", 1));
  show("deep dotdot", open_at(3, "sub/../../outside/secret", 1));
  show("absolute", open_at(3, "/etc/passwd", 1));
  show("inside dotdot", open_at(3, "sub/../file", 1));
  show("link to outside", open_at(3, "link-out", 1));
  show("link to outside nofollow", open_at(3, "link-out", 0));
  show("absolute link", open_at(3, "abs-link", 1));
  show("dir link then dotdot", open_at(3, "sub/up/outside/secret", 1));
  show("inside link", open_at(3, "link-in", 1));
  show("self loop", open_at(3, "loop", 1));
  show("trailing nul", open_raw(3, "file\0", 5, 1, 0, __WASI_RIGHTS_FD_READ));

  __wasi_filestat_t st;
  show("stat outside", __wasi_path_filestat_get(3, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, "../outside", &st));
  show("mkdir outside", __wasi_path_create_directory(3, "../made-outside"));
  show("symlink absolute", __wasi_path_symlink("/etc", 3, "made-link"));
  show("symlink dotdot ok", __wasi_path_symlink("../outside", 3, "made-dotdot"));
  show("open made-dotdot", open_at(3, "made-dotdot/secret", 1));
  show("link outside", __wasi_path_link(3, 0, "file", 3, "../linked-outside"));
  show("rename outside", __wasi_path_rename(3, "file", 3, "../renamed-outside"));
  show("unlink through link", __wasi_path_unlink_file(3, "link-dir/secret"));
  char buf[64];
  __wasi_size_t used;
  show("readlink outside", __wasi_path_readlink(3, "../outside/link", (uint8_t *)buf, sizeof buf, &used));
  show("readlink escaping link ok", __wasi_path_readlink(3, "link-out", (uint8_t *)buf, sizeof buf, &used));

  // A directory fd is a sandbox root of its own, and follows its directory through renames.
  __wasi_fd_t sub;
  show("open sub", __wasi_path_open(3, 0, "sub", __WASI_OFLAGS_DIRECTORY,
                                    __WASI_RIGHTS_PATH_OPEN | __WASI_RIGHTS_PATH_CREATE_FILE,
                                    (__wasi_rights_t)-1, 0, &sub));
  show("sub dotdot", open_at(sub, "../file", 1));
  show("sub link up", open_at(sub, "up/file", 1));
  show("rename sub", __wasi_path_rename(3, "sub", 3, "sub2"));
  show("create via sub fd", open_raw(sub, "made-in-sub", 11, 0, __WASI_OFLAGS_CREAT, __WASI_RIGHTS_FD_READ));
  show("close sub", __wasi_fd_close(sub));

  errno = 0;
  int fd = open("/etc/passwd", O_RDONLY);
  printf("libc /etc/passwd fd=%d errno=%d\n", fd, errno);
  errno = 0;
  fd = open("/sandbox/../outside/secret", O_RDONLY);
  printf("libc dotdot fd=%d errno=%d\n", fd, errno);

  // Read-only preopen: reading works, every mutation fails.
  fd = open("/ro/readme", O_RDONLY);
  char text[32] = {0};
  printf("ro read=%zd %s\n", read(fd, text, sizeof text - 1), text);
  close(fd);
  errno = 0;
  fd = open("/ro/new", O_CREAT | O_WRONLY, 0644);
  printf("ro create fd=%d errno=%d\n", fd, errno);
  fd = open("/ro/readme", O_WRONLY);
  errno = 0;
  printf("ro write=%zd errno=%d\n", fd < 0 ? -1 : write(fd, "x", 1), errno);
  if (fd >= 0) close(fd);
  errno = 0;
  printf("ro truncate=%d errno=%d\n", open("/ro/readme", O_WRONLY | O_TRUNC), errno);
  errno = 0;
  printf("ro mkdir=%d errno=%d\n", mkdir("/ro/d", 0755), errno);
  errno = 0;
  printf("ro unlink=%d errno=%d\n", unlink("/ro/readme"), errno);
  errno = 0;
  printf("ro rename=%d errno=%d\n", rename("/ro/readme", "/sandbox/stolen"), errno);
  show("ro raw create", open_raw(4, "x", 1, 0, __WASI_OFLAGS_CREAT, __WASI_RIGHTS_FD_WRITE));
  __wasi_fdstat_t fs;
  (void)__wasi_fd_fdstat_get(4, &fs);
  printf("ro rights have write=%d\n", (fs.fs_rights_inheriting & __WASI_RIGHTS_FD_WRITE) != 0);
  return 0;
}
