// The hello world of the cold-start benchmark.
#include <stdio.h>

int main(void) {
  puts("hello");
  return 0;
}
