// OpenSSL's libcrypto (Debian: libssl-dev): SHA-256, which uses the CPU's SHA instructions
// where it has them. The SHA256_Init/Update/Final calls are deprecated in OpenSSL 3 but kept:
// the one-shot SHA256() now looks the algorithm up in the provider store on every call, which
// costs more than hashing a 500-byte body.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>
