// Smoke test of the runtime with the real WASI layer: args, environment, stdout, a preopened dir, exit code.
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  printf("hello from wasm, %d args:", argc);
  for (int i = 0; i < argc; i++) printf(" %s", argv[i]);
  const char *greeting = getenv("GREETING");
  printf("\nGREETING=%s\n", greeting ? greeting : "(unset)");
  FILE *f = fopen("/data/out.txt", "w");
  if (!f) return 2;
  fputs("written by the guest\n", f);
  fclose(f);
  return argc > 1 ? atoi(argv[1]) : 0;
}
