#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

int main(int argc, char **argv) {
  printf("hello, world\n");
  fprintf(stderr, "to stderr\n");
  for (int i = 0; i < argc; i++) printf("arg[%d]=%s\n", i, argv[i]);
  for (char **e = environ; *e; e++) printf("env=%s\n", *e);
  const char *v = getenv("GREETING");
  printf("GREETING=%s\n", v ? v : "(unset)");
  if (argc > 1 && strcmp(argv[1], "exit") == 0) exit(atoi(argv[2]));
  return argc > 1 && strcmp(argv[1], "return") == 0 ? atoi(argv[2]) : 0;
}
