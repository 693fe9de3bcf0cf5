// gemm_cache.cu — what the GEMM tuner and the tensor-core probe remember per device: the current device's UUID
// (the key), the choices made in this process, and one small text file per GPU in the user's cache directory
// ($XDG_CACHE_HOME/smallcoder or ~/.cache/smallcoder/gemm-<uuid>.txt), read on first use and rewritten
// atomically (temporary file + rename) after each new measurement. A file that does not parse is ignored whole
// (one warning) and rewritten: a stale or damaged cache costs a re-measurement, never a wrong path. Host code only.
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mutex>
#include <string>
#include <vector>

#include "kernels/common.cuh"
#include "kernels/gemm.cuh"

namespace {

const char *const kHeader = "smallcoder-gemm-cache 1";  // bump when a candidate changes enough to re-measure

struct dev_state {
    kn_dev_info info;
    int loaded;  // the cache file was read (or there is none to read)
    int tc_known, tc;
    std::vector<std::pair<kn_gemm_key, kn_gemm_pick>> gemms;
};

std::mutex g_mu;
std::vector<dev_state *> g_devs;  // by ordinal; never freed (a handful of devices per process)
double (*g_fake)(void *, const char *) = nullptr;
void *g_fake_ctx = nullptr;

bool key_eq(const kn_gemm_key &a, const kn_gemm_key &b) {
    return a.ta == b.ta && a.tb == b.tb && a.m == b.m && a.n == b.n && a.k == b.k && a.c_fp32 == b.c_fp32 &&
           a.beta1 == b.beta1 && a.vec == b.vec;
}

std::string cache_dir() {
    const char *x = getenv("XDG_CACHE_HOME");
    if (x && *x == '/') return std::string(x) + "/smallcoder";
    const char *h = getenv("HOME");
    if (h && *h == '/') return std::string(h) + "/.cache/smallcoder";
    return "";
}

std::string file_of(const kn_dev_info &d) {
    if (!d.uuid[0]) return "";
    std::string dir = cache_dir();
    return dir.empty() ? "" : dir + "/gemm-" + d.uuid + ".txt";
}

// Parses the file into st; on any malformed line nothing is taken and the file is reported as ignored.
void load_file(dev_state &st) {
    st.loaded = 1;
    std::string path = file_of(st.info);
    if (path.empty()) return;
    FILE *f = fopen(path.c_str(), "r");
    if (!f) return;
    char line[512];
    std::vector<std::pair<kn_gemm_key, kn_gemm_pick>> got;
    int tc_known = 0, tc = 0, ok = fgets(line, sizeof line, f) && !strncmp(line, kHeader, strlen(kHeader)) &&
                                   (line[strlen(kHeader)] == '\n' || line[strlen(kHeader)] == 0);
    while (ok && fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        char tr[3], ct[4], algo[16];
        kn_gemm_key k;
        kn_gemm_pick c;
        memset(&c, 0, sizeof c);
        int v, end = 0;
        if (sscanf(line, "tensor_cores %d %n", &v, &end) == 1 && line[end] == 0 && (v == 0 || v == 1)) {
            tc_known = 1, tc = v;
            continue;
        }
        end = 0;
        if (sscanf(line, "gemm %2s %d %d %d %3s b%d v%d %15s %f %f %f %n", tr, &k.m, &k.n, &k.k, ct, &k.beta1, &k.vec,
                   algo, &c.ms[KN_GEMM_CUBLAS], &c.ms[KN_GEMM_SGEMM], &c.ms[KN_GEMM_SIMT], &end) != 11 ||
            line[end] != 0 || strlen(tr) != 2 || (tr[0] != 'N' && tr[0] != 'T') || (tr[1] != 'N' && tr[1] != 'T') ||
            k.m < 1 || k.n < 1 || k.k < 1 || (strcmp(ct, "f16") && strcmp(ct, "f32")) || (k.beta1 | k.vec) & ~1) {
            ok = 0;
            break;
        }
        k.ta = tr[0] == 'T', k.tb = tr[1] == 'T', k.c_fp32 = !strcmp(ct, "f32");
        c.algo = kn_gemm_algo_parse(algo);
        if (c.algo != KN_GEMM_CUBLAS && c.algo != KN_GEMM_SGEMM && c.algo != KN_GEMM_SIMT) {
            ok = 0;
            break;
        }
        got.push_back({k, c});
    }
    fclose(f);
    if (!ok) {
        fprintf(stderr, "smallcoder: %s: not a GEMM cache this build wrote; ignored, it will be rewritten\n",
                path.c_str());
        return;
    }
    st.gemms = got;
    st.tc_known = tc_known, st.tc = tc;
    fprintf(stderr, "smallcoder: %s: GEMM choices for %zu shapes%s, measured earlier (%s)\n", st.info.name, got.size(),
            tc_known ? (tc ? ", tensor cores yes" : ", tensor cores no") : "", path.c_str());
}

int mkdir_p(const std::string &dir) {
    for (size_t i = 1; i <= dir.size(); i++)
        if (i == dir.size() || dir[i] == '/') {
            std::string p = dir.substr(0, i);
            if (mkdir(p.c_str(), 0755) && errno != EEXIST) return -1;
        }
    return 0;
}

// Writes every entry of the device to a temporary file next to the cache and renames it over: readers see the
// old file or the new one, never half of one.
void save_file(const dev_state &st) {
    std::string path = file_of(st.info);
    if (path.empty()) return;
    static int warned;
    std::string dir = path.substr(0, path.rfind('/')), tmp = path + ".tmp." + std::to_string((long)getpid());
    FILE *f = mkdir_p(dir) ? nullptr : fopen(tmp.c_str(), "w");
    if (!f) {
        if (!warned++) fprintf(stderr, "smallcoder: cannot write %s (%s); GEMM choices are not cached\n", path.c_str(), strerror(errno));
        return;
    }
    fprintf(f, "%s\n# %s: the fastest GEMM per shape, measured by smallcoder; delete to measure again\n", kHeader,
            st.info.name);
    fprintf(f, "# gemm <op(A)op(B)> m n k <C type> b<beta!=0> v<16-byte loads> <choice> <ms cublas sgemm simt>\n");
    if (st.tc_known) fprintf(f, "tensor_cores %d\n", st.tc);
    for (const auto &e : st.gemms) {
        const kn_gemm_key &k = e.first;
        const kn_gemm_pick &c = e.second;
        fprintf(f, "gemm %c%c %d %d %d %s b%d v%d %s %.4f %.4f %.4f\n", k.ta ? 'T' : 'N', k.tb ? 'T' : 'N', k.m, k.n,
                k.k, k.c_fp32 ? "f32" : "f16", k.beta1, k.vec, kn_gemm_algo_name(c.algo), c.ms[KN_GEMM_CUBLAS],
                c.ms[KN_GEMM_SGEMM], c.ms[KN_GEMM_SIMT]);
    }
    int bad = ferror(f);
    bad |= fclose(f);
    if (bad || rename(tmp.c_str(), path.c_str())) {
        if (!warned++) fprintf(stderr, "smallcoder: cannot write %s; GEMM choices are not cached\n", path.c_str());
        unlink(tmp.c_str());
    }
}

dev_state &state_of(const kn_dev_info *d) {
    dev_state *st = g_devs[(size_t)d->ordinal];
    if (!st->loaded) load_file(*st);
    return *st;
}

}  // namespace

const kn_dev_info *kn_dev_current(void) {
    int dev = 0;
    KN_CHECK(cudaGetDevice(&dev));
    std::lock_guard<std::mutex> lock(g_mu);
    if ((size_t)dev >= g_devs.size()) g_devs.resize((size_t)dev + 1, nullptr);
    if (!g_devs[(size_t)dev]) {
        dev_state *st = new dev_state();
        cudaDeviceProp p;
        KN_CHECK(cudaGetDeviceProperties(&p, dev));
        st->info.ordinal = dev, st->info.sm_count = p.multiProcessorCount, st->info.cc = p.major * 10 + p.minor;
        snprintf(st->info.name, sizeof st->info.name, "%s", p.name);
        const unsigned char *u = (const unsigned char *)p.uuid.bytes;
        int any = 0;
        for (int i = 0; i < 16; i++) any |= u[i];
        if (any)  // nvidia-smi's spelling: GPU-8-4-4-4-12 hex digits
            snprintf(st->info.uuid, sizeof st->info.uuid,
                     "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2], u[3],
                     u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
        g_devs[(size_t)dev] = st;
    }
    return &g_devs[(size_t)dev]->info;
}

int kn_cache_get_gemm(const kn_dev_info *d, const kn_gemm_key *key, kn_gemm_pick *out) {
    std::lock_guard<std::mutex> lock(g_mu);
    for (const auto &e : state_of(d).gemms)
        if (key_eq(e.first, *key)) {
            *out = e.second;
            return 1;
        }
    return 0;
}

void kn_cache_put_gemm(const kn_dev_info *d, const kn_gemm_key *key, const kn_gemm_pick *c) {
    std::lock_guard<std::mutex> lock(g_mu);
    dev_state &st = state_of(d);
    for (auto &e : st.gemms)
        if (key_eq(e.first, *key)) {
            e.second = *c;
            save_file(st);
            return;
        }
    st.gemms.push_back({*key, *c});
    save_file(st);
}

int kn_cache_get_tc(const kn_dev_info *d, int *tc) {
    std::lock_guard<std::mutex> lock(g_mu);
    dev_state &st = state_of(d);
    if (st.tc_known) *tc = st.tc;
    return st.tc_known;
}

void kn_cache_put_tc(const kn_dev_info *d, int tc) {
    std::lock_guard<std::mutex> lock(g_mu);
    dev_state &st = state_of(d);
    st.tc_known = 1, st.tc = tc;
    save_file(st);
}

const char *kn_cache_path(const kn_dev_info *d, char *buf, size_t n) {
    snprintf(buf, n, "%s", file_of(*d).c_str());
    return buf;
}

extern "C" void kn_set_fake_timer(double (*fn)(void *ctx, const char *what), void *ctx) {
    std::lock_guard<std::mutex> lock(g_mu);
    g_fake = fn, g_fake_ctx = ctx;
}

int kn_fake_time(const char *what, double *ms) {
    if (!g_fake) return 0;
    *ms = g_fake(g_fake_ctx, what);
    return 1;
}

extern "C" void kn_gemm_cache_reset(void) {
    std::lock_guard<std::mutex> lock(g_mu);
    for (dev_state *st : g_devs)
        if (st) st->loaded = 0, st->tc_known = 0, st->gemms.clear();
}
