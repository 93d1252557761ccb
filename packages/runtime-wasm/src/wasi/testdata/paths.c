// Path edge cases with raw calls, mirroring wasmtime's preview 1 test programs. fd 3 is an empty scratch dir.
#include <stdio.h>
#include <string.h>
#include <wasi/api.h>

static void show(const char *label, int value) { printf("%s=%d\n", label, value); }

static int open_in(const char *path, __wasi_lookupflags_t lookup, __wasi_oflags_t oflags) {
  __wasi_fd_t fd;
  int err = __wasi_path_open(3, lookup, path, oflags, __WASI_RIGHTS_FD_READ, 0, 0, &fd);
  if (err == 0) (void)__wasi_fd_close(fd);
  return err;
}

static void touch(const char *path) {
  __wasi_fd_t fd;
  if (__wasi_path_open(3, 0, path, __WASI_OFLAGS_CREAT, 0, 0, 0, &fd) == 0) (void)__wasi_fd_close(fd);
}

int main(void) {
  const __wasi_lookupflags_t follow = __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW;
  show("mkdir", __wasi_path_create_directory(3, "dir"));
  show("mkdir nested", __wasi_path_create_directory(3, "dir/nested"));
  touch("dir/nested/file");
  touch("file");
  show("open dir with trailing slashes", open_in("dir/nested///", 0, 0));
  show("open file with trailing slash", open_in("dir/nested/file/", 0, 0));
  show("open dotted path", open_in("dir/.//nested/../../dir/nested/../nested///./file", 0, 0));
  show("open missing", open_in("nope", 0, 0));
  show("create excl existing", open_in("file", 0, __WASI_OFLAGS_CREAT | __WASI_OFLAGS_EXCL));
  show("create dot excl", open_in(".", 0, __WASI_OFLAGS_CREAT | __WASI_OFLAGS_EXCL));
  show("empty path", open_in("", 0, 0));

  show("rmdir on file", __wasi_path_remove_directory(3, "file"));
  show("rmdir non-empty", __wasi_path_remove_directory(3, "dir"));
  show("rmdir dot", __wasi_path_remove_directory(3, "."));
  show("unlink dir", __wasi_path_unlink_file(3, "dir"));
  show("unlink file/", __wasi_path_unlink_file(3, "file/"));
  show("mkdir existing", __wasi_path_create_directory(3, "file"));

  show("rename dir onto file", __wasi_path_rename(3, "dir/nested", 3, "file"));
  show("rename file onto dir", __wasi_path_rename(3, "file", 3, "dir"));
  show("rename file to file/", __wasi_path_rename(3, "file", 3, "moved/"));
  show("rename missing", __wasi_path_rename(3, "nope", 3, "x"));
  show("rename dir with slashes", __wasi_path_rename(3, "dir/nested/", 3, "nested2/"));
  show("rename back", __wasi_path_rename(3, "nested2", 3, "dir/nested"));

  show("symlink", __wasi_path_symlink("file", 3, "sym"));
  show("symlink dangling", __wasi_path_symlink("nope", 3, "dangling"));
  show("symlink onto existing", __wasi_path_symlink("file", 3, "file"));
  show("symlink trailing slash", __wasi_path_symlink("file", 3, "sym2/"));
  show("symlink loop a", __wasi_path_symlink("loop-b", 3, "loop-a"));
  show("symlink loop b", __wasi_path_symlink("loop-a", 3, "loop-b"));
  show("open loop", open_in("loop-a", follow, 0));
  show("open dangling follow", open_in("dangling", follow, 0));
  show("create through dangling", open_in("dangling", follow, __WASI_OFLAGS_CREAT));
  show("open symlink nofollow", open_in("sym", 0, 0));
  show("open symlink nofollow dir flag", open_in("sym", 0, __WASI_OFLAGS_DIRECTORY));

  __wasi_filestat_t st;
  show("stat symlink nofollow", __wasi_path_filestat_get(3, 0, "sym", &st));
  show("type", st.filetype);
  show("stat symlink follow", __wasi_path_filestat_get(3, follow, "sym", &st));
  show("type", st.filetype);
  show("stat dir/", __wasi_path_filestat_get(3, 0, "dir/", &st));
  show("stat file/", __wasi_path_filestat_get(3, 0, "file/", &st));

  char buf[8];
  __wasi_size_t used = 0;
  show("readlink", __wasi_path_readlink(3, "sym", (uint8_t *)buf, sizeof buf, &used));
  printf("readlink got=%.*s\n", (int)used, buf);
  show("readlink small", __wasi_path_readlink(3, "dangling", (uint8_t *)buf, 2, &used));
  printf("readlink small got=%.*s\n", (int)used, buf);
  show("readlink on file", __wasi_path_readlink(3, "file", (uint8_t *)buf, sizeof buf, &used));

  show("link", __wasi_path_link(3, 0, "file", 3, "hard"));
  show("link onto existing", __wasi_path_link(3, 0, "file", 3, "hard"));
  show("link dir", __wasi_path_link(3, 0, "dir", 3, "dirlink"));
  show("link symlink nofollow", __wasi_path_link(3, 0, "sym", 3, "symlink-hard"));
  show("stat link of symlink", (__wasi_path_filestat_get(3, 0, "symlink-hard", &st), st.filetype));
  show("link symlink follow", __wasi_path_link(3, follow, "sym", 3, "sym-followed"));
  show("stat link of target", (__wasi_path_filestat_get(3, 0, "sym-followed", &st), st.filetype));

  show("set times both", __wasi_path_filestat_set_times(3, 0, "file", 1, 2,
                                                         __WASI_FSTFLAGS_ATIM | __WASI_FSTFLAGS_ATIM_NOW));
  show("set times nofollow on symlink", __wasi_path_filestat_set_times(3, 0, "sym", 5000000000ULL, 0,
                                                                        __WASI_FSTFLAGS_ATIM));
  (void)__wasi_path_filestat_get(3, 0, "sym", &st);
  show("symlink atime", (int)(st.atim / 1000000000ULL));
  (void)__wasi_path_filestat_get(3, 0, "file", &st);
  show("target atime untouched", st.atim / 1000000000ULL != 5);

  // fd_readdir with a buffer that holds one entry and a piece of the next: bufused == buf_len says "more".
  show("mkdir list", __wasi_path_create_directory(3, "list"));
  touch("list/a");
  touch("list/bb");
  touch("list/ccc");
  __wasi_fd_t list;
  show("open list", __wasi_path_open(3, 0, "list", __WASI_OFLAGS_DIRECTORY, __WASI_RIGHTS_FD_READDIR, 0, 0, &list));
  uint8_t dirbuf[28];
  __wasi_dircookie_t cookie = 0;
  int entries = 0, name_bytes = 0, full_buffers = 0;
  for (;;) {
    __wasi_size_t got = 0;
    if (__wasi_fd_readdir(list, dirbuf, sizeof dirbuf, cookie, &got) != 0 || got == 0) break;
    if (got == sizeof dirbuf) full_buffers++;
    __wasi_dirent_t d;
    memcpy(&d, dirbuf, sizeof d);
    if (got < sizeof d + d.d_namlen) break;
    entries++;
    name_bytes += (int)d.d_namlen;
    cookie = d.d_next;
  }
  show("readdir entries", entries);
  show("readdir name bytes", name_bytes);
  show("readdir full buffers", full_buffers);
  __wasi_size_t got = 1;
  show("readdir past end", __wasi_fd_readdir(list, dirbuf, sizeof dirbuf, 1000, &got));
  show("readdir past end bytes", (int)got);
  (void)__wasi_fd_close(list);
  return 0;
}
