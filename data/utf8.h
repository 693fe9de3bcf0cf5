/* utf8.h — UTF-8 checks shared by the corpus walk (binary-file heuristics) and character-level FIM. */
#ifndef SC_UTF8_H
#define SC_UTF8_H

#include <stddef.h>

/* Length of the longest valid UTF-8 prefix of s (RFC 3629: no overlongs, no surrogates, <= U+10FFFF).
 * s is valid iff utf8_valid_prefix(s, n) == n. */
size_t utf8_valid_prefix(const char *s, size_t n);

/* Nonzero when byte c starts a character (is not a 10xxxxxx continuation byte). */
static inline int utf8_is_char_start(unsigned char c) { return (c & 0xC0) != 0x80; }

#endif
