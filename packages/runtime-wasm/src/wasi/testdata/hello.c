#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "cat") == 0) {
    char buf[7];
    size_t n, total = 0;
    while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) total += fwrite(buf, 1, n, stdout);
    printf("[%zu bytes]\n", total);
    return 0;
  }
  printf("hello, world\n");
  fprintf(stderr, "to stderr\n");
  for (int i = 0; i < argc; i++) printf("arg[%d]=%s\n", i, argv[i]);
  for (char **e = environ; *e; e++) printf("env=%s\n", *e);
  const char *v = getenv("GREETING");
  printf("GREETING=%s\n", v ? v : "(unset)");
  if (argc > 1 && strcmp(argv[1], "exit") == 0) exit(atoi(argv[2]));
  return argc > 1 && strcmp(argv[1], "return") == 0 ? atoi(argv[2]) : 0;
}
