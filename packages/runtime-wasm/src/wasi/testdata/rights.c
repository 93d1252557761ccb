// fd table, rights and raw fd_* calls. fd 3 is /sandbox; prints "label=value" lines the test compares.
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <wasi/api.h>

static void show(const char *label, long long value) { printf("%s=%lld\n", label, value); }

static __wasi_fd_t open_file(const char *path, __wasi_oflags_t oflags, __wasi_rights_t rights) {
  __wasi_fd_t fd = (__wasi_fd_t)-1;
  __wasi_errno_t err = __wasi_path_open(3, 0, path, oflags, rights, rights, 0, &fd);
  if (err != 0) show(path, -(long long)err);
  return fd;
}

static int write_str(__wasi_fd_t fd, const char *s) {
  __wasi_ciovec_t iov = {(const uint8_t *)s, strlen(s)};
  __wasi_size_t n;
  return __wasi_fd_write(fd, &iov, 1, &n);
}

static int read_all(__wasi_fd_t fd, char *buf, size_t len) {
  __wasi_iovec_t iov[2] = {{(uint8_t *)buf, 3}, {(uint8_t *)buf + 3, len - 3}};
  __wasi_size_t n = 0;
  int err = __wasi_fd_pread(fd, iov, 2, 0, &n);
  buf[n] = 0;
  return err;
}

int main(void) {
  __wasi_prestat_t pre;
  show("prestat 3", __wasi_fd_prestat_get(3, &pre));
  show("prestat len", pre.u.dir.pr_name_len);
  char name[16] = {0};
  show("prestat name rc", __wasi_fd_prestat_dir_name(3, (uint8_t *)name, pre.u.dir.pr_name_len));
  printf("prestat name=%s\n", name);
  show("prestat stdout", __wasi_fd_prestat_get(1, &pre));
  show("prestat unknown", __wasi_fd_prestat_get(99, &pre));

  __wasi_fdstat_t st;
  show("fdstat 3 rc", __wasi_fd_fdstat_get(3, &st));
  show("fdstat 3 type", st.fs_filetype);
  show("fdstat 3 can open", (st.fs_rights_base & __WASI_RIGHTS_PATH_OPEN) != 0);
  show("fdstat 3 can read bytes", (st.fs_rights_base & __WASI_RIGHTS_FD_READ) != 0);

  __wasi_rights_t rw = __WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_WRITE | __WASI_RIGHTS_FD_SEEK |
                       __WASI_RIGHTS_FD_TELL | __WASI_RIGHTS_FD_FDSTAT_SET_FLAGS | __WASI_RIGHTS_FD_ADVISE |
                       __WASI_RIGHTS_FD_ALLOCATE | __WASI_RIGHTS_FD_FILESTAT_SET_SIZE |
                       __WASI_RIGHTS_FD_FILESTAT_GET;
  __wasi_fd_t a = open_file("a", __WASI_OFLAGS_CREAT, rw);
  __wasi_fd_t b = open_file("b", __WASI_OFLAGS_CREAT, rw);
  show("new fds", a * 100 + b);
  show("fdstat a type", (__wasi_fd_fdstat_get(a, &st), st.fs_filetype));
  show("fdstat a rights exact", st.fs_rights_base == rw);
  write_str(a, "AAA");
  write_str(b, "bbbbbb");

  show("set flags append", __wasi_fd_fdstat_set_flags(a, __WASI_FDFLAGS_APPEND));
  __wasi_filesize_t pos;
  __wasi_fd_seek(a, 0, __WASI_WHENCE_SET, &pos);
  write_str(a, "+");
  char buf[64];
  read_all(a, buf, sizeof buf);
  printf("append content=%s\n", buf);
  show("fdstat a flags", (__wasi_fd_fdstat_get(a, &st), st.fs_flags));

  show("advise ok", __wasi_fd_advise(a, 0, 10, __WASI_ADVICE_SEQUENTIAL));
  show("advise bad", __wasi_fd_advise(a, 0, 10, 9));
  show("allocate", __wasi_fd_allocate(a, 0, 16));
  __wasi_filestat_t fst;
  __wasi_fd_filestat_get(a, &fst);
  show("size after allocate", fst.size);
  show("set size", __wasi_fd_filestat_set_size(a, 2));
  __wasi_fd_filestat_get(a, &fst);
  show("size after set", fst.size);
  show("filetype", fst.filetype);
  __wasi_fd_tell(a, &pos);
  show("tell", pos);
  show("seek bad whence", __wasi_fd_seek(a, 0, 7, &pos));
  show("readdir on file", __wasi_fd_readdir(a, (uint8_t *)buf, sizeof buf, 0, &(__wasi_size_t){0}));
  show("read on dir", __wasi_fd_read(3, &(__wasi_iovec_t){(uint8_t *)buf, 4}, 1, &(__wasi_size_t){0}));
  show("seek on stdout", __wasi_fd_seek(1, 0, __WASI_WHENCE_SET, &pos));
  show("dir flag on file", __wasi_path_open(3, 0, "a", __WASI_OFLAGS_DIRECTORY, 0, 0, 0, &(__wasi_fd_t){0}));

  // Rights only narrow.
  show("drop write", __wasi_fd_fdstat_set_rights(a, rw & ~__WASI_RIGHTS_FD_WRITE, 0));
  show("write without right", write_str(a, "x"));
  show("regain write", __wasi_fd_fdstat_set_rights(a, rw, 0));
  __wasi_fd_t narrow;
  __wasi_path_open(3, 0, "a", 0, __WASI_RIGHTS_FD_READ, 0, 0, &narrow);
  show("narrow fd write", write_str(narrow, "x"));
  show("narrow fd seek", __wasi_fd_seek(narrow, 0, __WASI_WHENCE_SET, &pos));
  __wasi_fd_close(narrow);

  // Renumber: b takes a's place; the old number is gone.
  show("renumber to closed", __wasi_fd_renumber(a, 40));
  show("renumber", __wasi_fd_renumber(b, a));
  read_all(a, buf, sizeof buf);
  printf("renumbered content=%s\n", buf);
  show("old fd", __wasi_fd_close(b));
  show("close", __wasi_fd_close(a));
  show("double close", __wasi_fd_close(a));

  // The preopen can be closed like any fd; afterwards nothing can be opened through it.
  show("close preopen", __wasi_fd_close(3));
  show("open after close", __wasi_path_open(3, 0, "a", 0, 0, 0, 0, &(__wasi_fd_t){0}));
  return 0;
}
