/* test_membw.c — host/membw.c: a bandwidth comes back positive and finite for 1 to 3 threads, sizes that do not
 * divide evenly among them included (a failed allocation returns -1 with an error; not tested: sanitizers abort on
 * impossible sizes instead of returning NULL). */
#include <stdint.h>

#include "host/membw.h"
#include "tests/testutil.h"

int main(void) {
    static const size_t sizes[] = {(size_t)8 << 20, ((size_t)3 << 20) + 4096 * 7 + 100};
    for (int si = 0; si < 2; si++)
        for (int nt = 1; nt <= 3; nt++) {
            double gbs = membw_read_gbs(nt, sizes[si], 2);
            char what[120];
            snprintf(what, sizeof what, "%zu bytes, %d threads: %.2f GB/s is positive and finite", sizes[si], nt, gbs);
            tu_check(what, gbs > 0 && gbs < 1e6 ? 0 : 1, 0);
        }
    return tu_finish("test_membw");
}
