// CPU-bound work for the fuel-overhead benchmark: a mix of integer, floating-point and memory-bound loops.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define N 160

static double a[N][N], b[N][N], c[N][N];

static uint64_t sieve(int limit) {
  char *composite = calloc(limit + 1, 1);
  uint64_t sum = 0;
  for (int i = 2; i <= limit; i++) {
    if (composite[i]) continue;
    sum += i;
    for (long j = (long)i * i; j <= limit; j += i) composite[j] = 1;
  }
  free(composite);
  return sum;
}

static double matmul(void) {
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++) {
      a[i][j] = (i * 31 + j * 17) % 97 / 97.0;
      b[i][j] = (i * 7 + j * 13) % 89 / 89.0;
    }
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++) {
      double s = 0;
      for (int k = 0; k < N; k++) s += a[i][k] * b[k][j];
      c[i][j] = s;
    }
  double trace = 0;
  for (int i = 0; i < N; i++) trace += c[i][i];
  return trace;
}

static uint32_t fnv(int rounds) {
  uint32_t h = 2166136261u;
  for (int r = 0; r < rounds; r++)
    for (int i = 0; i < 1024; i++) h = (h ^ (uint32_t)(i + r)) * 16777619u;
  return h;
}

int main(int argc, char **argv) {
  int scale = argc > 1 ? atoi(argv[1]) : 4;
  uint64_t primes = 0;
  double trace = 0;
  uint32_t hash = 0;
  for (int s = 0; s < scale; s++) {
    primes += sieve(2000000);
    trace += matmul();
    hash = hash * 31u + fnv(4000 + s);
  }
  printf("primes=%llu trace=%.3f hash=%08x\n", (unsigned long long)primes, trace, hash);
  return 0;
}
