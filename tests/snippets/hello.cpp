#include <iostream>
int main(int argc, char **argv) { std::cout << "hello from c++, " << argc << " args" << std::endl; return 0; }
