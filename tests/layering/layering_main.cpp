// The layering check (tests/layering/meson.build): each sans-IO core library is linked
// whole into a program like this one, without libuv and without RocksDB. A core that calls
// into either leaves an undefined symbol and the build fails. The program does nothing.
int main() { return 0; }
