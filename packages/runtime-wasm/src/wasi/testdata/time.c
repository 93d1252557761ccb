// Clocks, randomness, sleeping, polling and scheduling. Prints facts the test checks (not raw times).
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <wasi/api.h>

__attribute__((import_module("wasi_snapshot_preview1"), import_name("proc_raise"))) int32_t raw_proc_raise(
    int32_t sig);

static long long ns(clockid_t id) {
  struct timespec ts;
  if (clock_gettime(id, &ts) != 0) return -1;
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void clocks(void) {
  printf("realtime=%lld\n", ns(CLOCK_REALTIME) / 1000000000LL);
  long long a = ns(CLOCK_MONOTONIC), b = ns(CLOCK_MONOTONIC);
  printf("monotonic nondecreasing=%d\n", a > 0 && b >= a);
  printf("cputime ok=%d\n", ns(CLOCK_PROCESS_CPUTIME_ID) >= 0 && ns(CLOCK_THREAD_CPUTIME_ID) >= 0);
  struct timespec res;
  clock_getres(CLOCK_MONOTONIC, &res);
  printf("res monotonic=%ld\n", res.tv_nsec);
  clock_getres(CLOCK_REALTIME, &res);
  printf("res realtime=%ld\n", res.tv_nsec);
  __wasi_timestamp_t t;
  printf("bad clock=%d\n", __wasi_clock_time_get(99, 1, &t));
  printf("bad clock res=%d\n", __wasi_clock_res_get(99, &t));
}

static void entropy(void) {
  unsigned char a[256], b[256];
  memset(a, 0, sizeof a);
  memset(b, 0, sizeof b);
  if (getentropy(a, sizeof a) != 0 || getentropy(b, sizeof b) != 0) return;
  int zeros = 0;
  for (size_t i = 0; i < sizeof a; i++) zeros += a[i] == 0;
  printf("random differs=%d mostly nonzero=%d\n", memcmp(a, b, sizeof a) != 0, zeros < 32);
  static unsigned char big[200000];
  printf("big random=%d\n", __wasi_random_get(big, sizeof big) == 0 && big[199999] + big[100000] + big[0] > 0);
}

static void sleeping(void) {
  long long before = ns(CLOCK_MONOTONIC);
  struct timespec req = {0, 50 * 1000000};
  int rc = nanosleep(&req, NULL);
  long long slept = ns(CLOCK_MONOTONIC) - before;
  printf("nanosleep rc=%d at least 50ms=%d\n", rc, slept >= 50000000LL);
  before = ns(CLOCK_MONOTONIC);
  rc = poll(NULL, 0, 30);
  printf("poll timeout rc=%d at least 30ms=%d\n", rc, ns(CLOCK_MONOTONIC) - before >= 30000000LL);
  printf("sched_yield=%d\n", sched_yield());
}

static void poll_raw(void) {
  int fd = open("/sandbox/p.txt", O_CREAT | O_RDWR, 0644);
  if (write(fd, "0123456789", 10) != 10) return;
  lseek(fd, 4, SEEK_SET);
  __wasi_subscription_t subs[4];
  __wasi_event_t events[4];
  __wasi_size_t n = 0;
  memset(subs, 0, sizeof subs);
  subs[0].userdata = 11;
  subs[0].u.tag = __WASI_EVENTTYPE_FD_READ;
  subs[0].u.u.fd_read.file_descriptor = fd;
  subs[1].userdata = 22;
  subs[1].u.tag = __WASI_EVENTTYPE_FD_WRITE;
  subs[1].u.u.fd_write.file_descriptor = fd;
  subs[2].userdata = 33;
  subs[2].u.tag = __WASI_EVENTTYPE_CLOCK;
  subs[2].u.u.clock.id = __WASI_CLOCKID_MONOTONIC;
  subs[2].u.u.clock.timeout = 5000000000ULL;
  int rc = __wasi_poll_oneoff(subs, events, 3, &n);
  printf("poll files rc=%d n=%u\n", rc, (unsigned)n);
  for (unsigned i = 0; i < n; i++)
    printf("event ud=%llu type=%u err=%u nbytes=%llu\n", (unsigned long long)events[i].userdata,
           events[i].type, events[i].error, (unsigned long long)events[i].fd_readwrite.nbytes);

  // Absolute realtime deadline 20 ms ahead vs relative monotonic 2 s: the absolute one fires alone.
  __wasi_timestamp_t now;
  (void)__wasi_clock_time_get(__WASI_CLOCKID_REALTIME, 1, &now);
  memset(subs, 0, sizeof subs);
  subs[0].userdata = 1;
  subs[0].u.tag = __WASI_EVENTTYPE_CLOCK;
  subs[0].u.u.clock.id = __WASI_CLOCKID_REALTIME;
  subs[0].u.u.clock.timeout = now + 20000000ULL;
  subs[0].u.u.clock.flags = __WASI_SUBCLOCKFLAGS_SUBSCRIPTION_CLOCK_ABSTIME;
  subs[1].userdata = 2;
  subs[1].u.tag = __WASI_EVENTTYPE_CLOCK;
  subs[1].u.u.clock.id = __WASI_CLOCKID_MONOTONIC;
  subs[1].u.u.clock.timeout = 2000000000ULL;
  long long before = ns(CLOCK_MONOTONIC);
  rc = __wasi_poll_oneoff(subs, events, 2, &n);
  long long waited = ns(CLOCK_MONOTONIC) - before;
  printf("abs clock rc=%d n=%u ud=%llu waited>=15ms=%d waited<1s=%d\n", rc, (unsigned)n,
         (unsigned long long)events[0].userdata, waited >= 15000000LL, waited < 1000000000LL);

  memset(subs, 0, sizeof subs);
  subs[0].userdata = 7;
  subs[0].u.tag = __WASI_EVENTTYPE_FD_READ;
  subs[0].u.u.fd_read.file_descriptor = 0;
  subs[1].userdata = 8;
  subs[1].u.tag = __WASI_EVENTTYPE_FD_READ;
  subs[1].u.u.fd_read.file_descriptor = 1234;
  subs[2].userdata = 9;
  subs[2].u.tag = __WASI_EVENTTYPE_CLOCK;
  subs[2].u.u.clock.id = 77;
  rc = __wasi_poll_oneoff(subs, events, 3, &n);
  printf("poll stdin/bad rc=%d n=%u\n", rc, (unsigned)n);
  for (unsigned i = 0; i < n; i++)
    printf("event ud=%llu type=%u err=%u flags=%u\n", (unsigned long long)events[i].userdata, events[i].type,
           events[i].error, events[i].fd_readwrite.flags);
  printf("poll none=%d\n", __wasi_poll_oneoff(subs, events, 0, &n));
}

// Waits up to 200 ms for stdin to become readable.
static void poll_stdin(void) {
  __wasi_subscription_t subs[2];
  __wasi_event_t events[2];
  __wasi_size_t n = 0;
  memset(subs, 0, sizeof subs);
  subs[0].userdata = 7;
  subs[0].u.tag = __WASI_EVENTTYPE_FD_READ;
  subs[0].u.u.fd_read.file_descriptor = 0;
  subs[1].userdata = 8;
  subs[1].u.tag = __WASI_EVENTTYPE_CLOCK;
  subs[1].u.u.clock.id = __WASI_CLOCKID_MONOTONIC;
  subs[1].u.u.clock.timeout = 200000000ULL;
  int rc = __wasi_poll_oneoff(subs, events, 2, &n);
  printf("rc=%d n=%u", rc, (unsigned)n);
  for (unsigned i = 0; i < n; i++)
    printf(" ud=%llu nbytes=%llu", (unsigned long long)events[i].userdata,
           (unsigned long long)events[i].fd_readwrite.nbytes);
  printf("\n");
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  if (strcmp(argv[1], "clocks") == 0) clocks();
  else if (strcmp(argv[1], "random") == 0) entropy();
  else if (strcmp(argv[1], "sleep") == 0) sleeping();
  else if (strcmp(argv[1], "poll") == 0) poll_raw();
  else if (strcmp(argv[1], "pollstdin") == 0) poll_stdin();
  else if (strcmp(argv[1], "exit") == 0) __wasi_proc_exit((__wasi_exitcode_t)atoi(argv[2]));
  else if (strcmp(argv[1], "raise") == 0) printf("raise=%d\n", raw_proc_raise(15));
  else return 2;
  return 0;
}
