/* test_serve_utf8.c — the server's JSON text is valid UTF-8 whatever bytes the model emits: valid sequences pass
 * through unchanged, every byte that does not start one (stray continuation, truncated, overlong, surrogate,
 * above U+10FFFF, NUL) becomes U+FFFD. */
#include <string.h>

#include "infer/serve.h"
#include "tests/testutil.h"

static void case_(const char *what, const char *in, size_t n, const char *want) {
    char out[64];
    size_t w = serve_utf8_clean(in, n, out);
    tu_check(what, w == strlen(want) && memcmp(out, want, w) == 0 && out[w] == 0 ? 0.0 : 1.0, 0.0);
}

#define R "\xEF\xBF\xBD"

int main(void) {
    case_("ascii unchanged", "def f(x):", 9, "def f(x):");
    case_("2, 3 and 4-byte sequences unchanged", "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80", 9,
          "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80");
    case_("lone continuation byte", "a\x80" "b", 3, "a" R "b");
    case_("truncated at the end", "x\xE2\x82", 3, "x" R R);
    case_("truncated in the middle", "\xE2\x82" "y", 3, R R "y");
    case_("overlong encoding of '/'", "\xC0\xAF", 2, R R);
    case_("UTF-16 surrogate", "\xED\xA0\x80", 3, R R R);
    case_("above U+10FFFF", "\xF4\x90\x80\x80", 4, R R R R);
    case_("invalid lead bytes", "\xF8\xFF", 2, R R);
    case_("NUL inside the text", "a\0b", 3, "a" R "b");
    case_("empty", "", 0, "");
    return tu_finish("test_serve_utf8");
}
