#include <stdio.h>
int main(int argc, char **argv) { printf("hello from c, %d args\n", argc); return 0; }
