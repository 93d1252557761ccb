// File-system behaviour through wasi-libc; each mode prints lines the test compares exactly.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHECK(x)                                                          \
  do {                                                                    \
    if (!(x)) {                                                           \
      printf("FAIL line %d: %s (errno %d)\n", __LINE__, #x, errno);      \
      exit(1);                                                            \
    }                                                                     \
  } while (0)

static void rw(void) {
  int fd = open("/sandbox/data.txt", O_CREAT | O_RDWR | O_TRUNC, 0644);
  CHECK(fd >= 0);
  CHECK(write(fd, "hello world", 11) == 11);
  printf("tell=%ld\n", (long)lseek(fd, 0, SEEK_CUR));
  CHECK(lseek(fd, 6, SEEK_SET) == 6);
  char buf[32] = {0};
  CHECK(read(fd, buf, sizeof buf) == 5);
  printf("read=%s\n", buf);
  memset(buf, 0, sizeof buf);
  CHECK(pread(fd, buf, 5, 0) == 5);
  printf("pread=%s tell=%ld\n", buf, (long)lseek(fd, 0, SEEK_CUR));
  CHECK(pwrite(fd, "HELLO", 5, 0) == 5);
  printf("end=%ld\n", (long)lseek(fd, -2, SEEK_END));
  CHECK(ftruncate(fd, 4) == 0);
  struct stat st;
  CHECK(fstat(fd, &st) == 0);
  printf("size=%lld regular=%d\n", (long long)st.st_size, S_ISREG(st.st_mode));
  CHECK(posix_fallocate(fd, 0, 100) == 0);
  CHECK(fstat(fd, &st) == 0);
  printf("allocated=%lld\n", (long long)st.st_size);
  CHECK(fsync(fd) == 0);
  CHECK(fdatasync(fd) == 0);
  CHECK(lseek(fd, -1, SEEK_SET) == -1);
  printf("negative seek errno=%d\n", errno == EINVAL);
  CHECK(close(fd) == 0);
  fd = open("/sandbox/data.txt", O_WRONLY | O_APPEND);
  CHECK(fd >= 0);
  CHECK(write(fd, "!", 1) == 1);
  CHECK(close(fd) == 0);
  CHECK(stat("/sandbox/data.txt", &st) == 0);
  printf("after append=%lld\n", (long long)st.st_size);
  fd = open("/sandbox/data.txt", O_RDONLY);
  CHECK(write(fd, "x", 1) == -1);
  printf("write on O_RDONLY errno=%d\n", errno);
  close(fd);
  CHECK(open("/sandbox/data.txt", O_CREAT | O_EXCL | O_WRONLY, 0644) == -1);
  printf("excl errno=%d\n", errno == EEXIST);
  CHECK(open("/sandbox/missing", O_RDONLY) == -1);
  printf("missing errno=%d\n", errno == ENOENT);
  CHECK(open("/sandbox/data.txt/", O_RDONLY) == -1);
  printf("trailing slash errno=%d\n", errno == ENOTDIR);
  CHECK(open("/sandbox/data.txt", O_RDONLY | O_DIRECTORY) == -1);
  printf("O_DIRECTORY on file errno=%d\n", errno == ENOTDIR);
}

static void meta(void) {
  struct stat st;
  int fd = open("/sandbox/f", O_CREAT | O_WRONLY, 0644);
  CHECK(fd >= 0);
  struct timespec times[2] = {{1000000000, 123456000}, {1200000000, 987654000}};
  CHECK(futimens(fd, times) == 0);
  CHECK(fstat(fd, &st) == 0);
  printf("futimens atime=%lld.%09ld mtime=%lld.%09ld\n", (long long)st.st_atim.tv_sec, st.st_atim.tv_nsec,
         (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
  close(fd);
  struct timespec only_m[2] = {{0, UTIME_OMIT}, {1300000000, 0}};
  CHECK(utimensat(AT_FDCWD, "/sandbox/f", only_m, 0) == 0);
  CHECK(stat("/sandbox/f", &st) == 0);
  printf("utimensat atime=%lld mtime=%lld\n", (long long)st.st_atim.tv_sec, (long long)st.st_mtim.tv_sec);

  CHECK(mkdir("/sandbox/d", 0755) == 0);
  CHECK(mkdir("/sandbox/d", 0755) == -1);
  printf("mkdir again errno=%d\n", errno == EEXIST);
  CHECK(stat("/sandbox/d", &st) == 0);
  printf("isdir=%d\n", S_ISDIR(st.st_mode));
  fd = open("/sandbox/d/inner", O_CREAT | O_WRONLY, 0644);
  CHECK(fd >= 0);
  close(fd);
  CHECK(rmdir("/sandbox/d") == -1);
  printf("rmdir non-empty errno=%d\n", errno == ENOTEMPTY);
  CHECK(unlink("/sandbox/d") == -1);
  printf("unlink dir errno=%d\n", errno == EISDIR || errno == EPERM);
  CHECK(rename("/sandbox/d/inner", "/sandbox/moved") == 0);
  CHECK(access("/sandbox/moved", F_OK) == 0);
  CHECK(access("/sandbox/d/inner", F_OK) == -1);
  CHECK(rmdir("/sandbox/d") == 0);
  CHECK(rename("/sandbox/moved", "/sandbox/f") == 0);
  printf("renamed over=%d\n", access("/sandbox/moved", F_OK) == -1);

  CHECK(symlink("f", "/sandbox/link") == 0);
  char target[64] = {0};
  ssize_t n = readlink("/sandbox/link", target, sizeof target - 1);
  CHECK(n >= 0);
  printf("readlink=%.*s\n", (int)n, target);
  n = readlink("/sandbox/link", target, 0);
  CHECK(lstat("/sandbox/link", &st) == 0);
  printf("lstat islink=%d\n", S_ISLNK(st.st_mode));
  CHECK(stat("/sandbox/link", &st) == 0);
  printf("stat through link isreg=%d\n", S_ISREG(st.st_mode));
  CHECK(readlink("/sandbox/f", target, sizeof target) == -1);
  printf("readlink on file errno=%d\n", errno == EINVAL);
  CHECK(symlink("f", "/sandbox/link") == -1);
  printf("symlink exists errno=%d\n", errno == EEXIST);

  CHECK(link("/sandbox/f", "/sandbox/hard") == 0);
  CHECK(stat("/sandbox/f", &st) == 0);
  printf("nlink=%lld\n", (long long)st.st_nlink);
  CHECK(unlink("/sandbox/hard") == 0);
  CHECK(unlink("/sandbox/link") == 0);
  CHECK(stat("/sandbox/f", &st) == 0);
  printf("nlink after unlink=%lld\n", (long long)st.st_nlink);
  CHECK(unlink("/sandbox/f") == 0);
  CHECK(unlink("/sandbox/f") == -1);
  printf("unlink missing errno=%d\n", errno == ENOENT);
}

static void listing(int count) {
  char name[64];
  for (int i = 0; i < count; i++) {
    snprintf(name, sizeof name, "/sandbox/entry-with-a-long-name-%04d", i);
    int fd = open(name, O_CREAT | O_WRONLY, 0644);
    CHECK(fd >= 0);
    close(fd);
  }
  CHECK(mkdir("/sandbox/subdir", 0755) == 0);
  DIR *dir = opendir("/sandbox");
  CHECK(dir != NULL);
  int files = 0, dirs = 0, dots = 0;
  long mid = -1;
  struct dirent *e;
  int seen = 0;
  while ((e = readdir(dir)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) dots++;
    else if (e->d_type == DT_DIR) dirs++;
    else if (e->d_type == DT_REG) files++;
    if (++seen == count / 2) mid = telldir(dir);
  }
  printf("files=%d dirs=%d dots=%d\n", files, dirs, dots);
  seekdir(dir, mid);
  int rest = 0;
  while (readdir(dir) != NULL) rest++;
  printf("after seekdir=%d\n", rest);
  closedir(dir);
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  if (strcmp(argv[1], "rw") == 0) rw();
  else if (strcmp(argv[1], "meta") == 0) meta();
  else if (strcmp(argv[1], "readdir") == 0) listing(atoi(argv[2]));
  else return 2;
  printf("ok\n");
  return 0;
}
