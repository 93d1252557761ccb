// Serves one connection on the preopened listening socket whose fd is argv[1]: replies "pong:<request>".
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wasi/api.h>

static void show(const char *label, long long value) { printf("%s=%lld\n", label, value); }

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  __wasi_fd_t listener = (__wasi_fd_t)atoi(argv[1]);
  __wasi_fdstat_t st;
  (void)__wasi_fd_fdstat_get(listener, &st);
  show("listener type", st.fs_filetype);
  show("accept bad flags", __wasi_sock_accept(listener, __WASI_FDFLAGS_APPEND, &(__wasi_fd_t){0}));
  show("accept on stdout", __wasi_sock_accept(1, 0, &(__wasi_fd_t){0}));
  show("recv on stdout", __wasi_sock_recv(1, NULL, 0, 0, &(__wasi_size_t){0}, &(__wasi_roflags_t){0}));
  __wasi_fd_t conn;
  show("accept", __wasi_sock_accept(listener, 0, &conn));
  char buf[64] = {0};
  __wasi_iovec_t iov[2] = {{(uint8_t *)buf, 2}, {(uint8_t *)buf + 2, sizeof buf - 3}};
  __wasi_size_t got = 0;
  __wasi_roflags_t roflags;
  show("peek", __wasi_sock_recv(conn, iov, 2, __WASI_RIFLAGS_RECV_PEEK, &got, &roflags));
  show("recv", __wasi_sock_recv(conn, iov, 2, 0, &got, &roflags));
  printf("request=%.*s\n", (int)got, buf);
  show("set nonblock", __wasi_fd_fdstat_set_flags(conn, __WASI_FDFLAGS_NONBLOCK));
  show("recv nothing pending", __wasi_sock_recv(conn, iov, 2, 0, &got, &roflags));
  char reply[80];
  int len = snprintf(reply, sizeof reply, "pong:%s", buf);
  __wasi_ciovec_t out = {(const uint8_t *)reply, (size_t)len};
  __wasi_size_t sent = 0;
  show("send", __wasi_sock_send(conn, &out, 1, 0, &sent));
  show("sent", sent);
  show("shutdown bad", __wasi_sock_shutdown(conn, 0));
  show("shutdown", __wasi_sock_shutdown(conn, __WASI_SDFLAGS_WR));
  show("shutdown listener", __wasi_sock_shutdown(listener, __WASI_SDFLAGS_WR));
  show("close", __wasi_fd_close(conn));
  return 0;
}
