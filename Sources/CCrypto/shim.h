// OpenSSL's libcrypto (Debian: libssl-dev): the SHA-256 one-shot, which uses the CPU's
// SHA instructions where it has them.
#include <openssl/sha.h>
