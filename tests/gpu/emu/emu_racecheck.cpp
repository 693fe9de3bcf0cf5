// emu_racecheck.cpp — the emulator as a shared-memory race detector, as compute-sanitizer racecheck: the
// translated kernels are compiled with GCC's -fsanitize=thread instrumentation (a call before every load and
// store) but linked without its runtime; these functions are that runtime. An access to shared memory (the block's
// dynamic buffer, or the program's thread-local block where cuda_emu.h puts every static __shared__) is checked
// against the last writer and the last two readers of each 2-byte granule: two different threads with no
// __syncthreads between them (nor a __syncwarp, for two lanes of one warp), at least one writing, is a hazard.
// Warp shuffles carry values in registers and never appear here. The check follows the order barriers impose, not
// the order the fibers happened to run in, so it finds a race even when the run gives the right numbers.
// SC_EMU_RACECHECK: unset or 1 = the first hazard aborts with the kernel, block, threads and offset; 0 = off;
// "count" = hazards are counted (emu_racecheck_hazards) and the first of each launch printed: the planted-bug tests.
#include "tests/gpu/emu/emu_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlfcn.h>
#include <elf.h>
#include <link.h>

#include <vector>

namespace {

struct Access {
    uint64_t stamp;  // block serial << 32 | block barriers completed: differs = ordered (or another block)
    int32_t tid;
    uint32_t wsync;  // its warp's __syncwarp count at the access
    const void *pc;  // the instruction (reports give it as file offset for addr2line)
};
struct Granule {
    Access w, r1, r2;
};

int g_mode = -1;  // 0 off, 1 abort, 2 count
long g_hazards = 0, g_launch_hazards = 0;
const char *g_name = "";
uint64_t g_block_serial = 0;
dim3 g_bid;
uintptr_t g_dyn = 0, g_dyn_len = 0, g_st = 0, g_st_len = 0;
std::vector<Granule> g_sh_dyn, g_sh_st;
std::vector<bool> g_guard;  // granules of the TLS block that hold a C++ initialisation guard, not shared memory
bool g_active = false;

int mode() {
    if (g_mode < 0) {
        const char *e = getenv("SC_EMU_RACECHECK");
        g_mode = !e || !*e ? 1 : !strcmp(e, "count") ? 2 : atoi(e) ? 1 : 0;
    }
    return g_mode;
}

// an earlier access a and the current one by thread t are not ordered by any barrier
bool conflict(const Access &a, uint64_t stamp, const EmuThread &t) {
    if (a.stamp != stamp || a.tid == t.tid) return false;
    if (a.tid / 32 == t.warp && a.wsync != t.warp_sync_gen) return false;
    return true;
}

uintptr_t code_offset(const void *pc) {
    Dl_info info;
    return dladdr(pc, &info) && info.dli_fbase ? (uintptr_t)pc - (uintptr_t)info.dli_fbase : (uintptr_t)pc;
}

void report(const char *kind, const Access &a, const EmuThread &t, const void *pc, bool dyn, uintptr_t off) {
    g_hazards++;
    if (g_launch_hazards++ == 0 || g_mode == 1)
        fprintf(stderr,
                "CUDA emulator racecheck: %s hazard in %s block (%u,%u,%u): thread %d and thread %d, %s shared "
                "memory offset %zu, no __syncthreads%s between them (code at 0x%zx and 0x%zx: addr2line -f -C -e "
                "the program)\n",
                kind, g_name, g_bid.x, g_bid.y, g_bid.z, a.tid, t.tid, dyn ? "dynamic" : "static", (size_t)off,
                a.tid / 32 == t.warp ? "/__syncwarp" : "", (size_t)code_offset(a.pc), (size_t)code_offset(pc));
    if (g_mode == 1) abort();
}

void access(uintptr_t p, size_t n, bool write, const void *pc) {
    bool dyn;
    uintptr_t off;
    if (p - g_dyn < g_dyn_len) dyn = true, off = p - g_dyn;
    else if (p - g_st < g_st_len) dyn = false, off = p - g_st;
    else return;
    EmuThread t;
    if (!emu_current_thread(&t)) return;
    uint64_t stamp = g_block_serial << 32 | t.bar_gen;
    std::vector<Granule> &sh = dyn ? g_sh_dyn : g_sh_st;
    Access me{stamp, t.tid, t.warp_sync_gen, pc};
    for (uintptr_t g = off / 2, e = (off + (n ? n : 1) + 1) / 2; g < e && g < sh.size(); g++) {
        if (!dyn && g_guard[g]) continue;
        Granule &s = sh[g];
        if (conflict(s.w, stamp, t)) report(write ? "write-after-write" : "read-after-write", s.w, t, pc, dyn, off);
        if (write) {
            if (conflict(s.r1, stamp, t)) report("write-after-read", s.r1, t, pc, dyn, off);
            else if (conflict(s.r2, stamp, t)) report("write-after-read", s.r2, t, pc, dyn, off);
            s.w = me;
        } else if (s.r1.stamp != stamp || s.r1.tid == t.tid) {
            s.r1 = me;
        } else {
            s.r2 = me;
        }
    }
}

#define on_access(p, n, write) \
    if (g_active) access((uintptr_t)(p), n, write, __builtin_return_address(0))

// The executable's static TLS block: x86-64 (TLS variant II) puts it right below the thread pointer, rounded up to
// its alignment. Kernels are linked into the executable, so their static __shared__ variables are there.
int find_tls(struct dl_phdr_info *info, size_t, void *) {
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_TLS) {
            uintptr_t align = info->dlpi_phdr[i].p_align ? info->dlpi_phdr[i].p_align : 1;
            uintptr_t size = (info->dlpi_phdr[i].p_memsz + align - 1) / align * align;
            g_st = (uintptr_t)__builtin_thread_pointer() - size, g_st_len = info->dlpi_phdr[i].p_memsz;
        }
    return 1;  // the first entry is the executable
}

// GCC guards the thread-local statics of template kernels with a byte each thread reads (and the first one sets)
// on entry: benign, and not shared memory. Their places come from the program's symbol table (_ZGV names).
void find_guards() {
    FILE *f = fopen("/proc/self/exe", "rb");
    Elf64_Ehdr eh;
    if (!f || fread(&eh, sizeof eh, 1, f) != 1 || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
        eh.e_ident[EI_CLASS] != ELFCLASS64) {
        if (f) fclose(f);
        return;
    }
    std::vector<Elf64_Shdr> sh(eh.e_shnum);
    if (fseek(f, (long)eh.e_shoff, SEEK_SET) || fread(sh.data(), sizeof(Elf64_Shdr), sh.size(), f) != sh.size()) {
        fclose(f);
        return;
    }
    for (const Elf64_Shdr &s : sh) {
        if (s.sh_type != SHT_SYMTAB || s.sh_link >= sh.size()) continue;
        std::vector<Elf64_Sym> syms(s.sh_size / sizeof(Elf64_Sym));
        std::vector<char> names(sh[s.sh_link].sh_size + 1, 0);
        if (fseek(f, (long)s.sh_offset, SEEK_SET) ||
            fread(syms.data(), sizeof(Elf64_Sym), syms.size(), f) != syms.size() ||
            fseek(f, (long)sh[s.sh_link].sh_offset, SEEK_SET) ||
            fread(names.data(), 1, names.size() - 1, f) != names.size() - 1)
            break;
        for (const Elf64_Sym &y : syms)  // a TLS symbol's value is its offset in the TLS block
            if (ELF64_ST_TYPE(y.st_info) == STT_TLS && y.st_name < names.size() - 1 &&
                !strncmp(&names[y.st_name], "_ZGV", 4) && y.st_value / 2 < g_guard.size())
                g_guard[y.st_value / 2] = true;
    }
    fclose(f);
}

}  // namespace

void emu_race_launch(const char *name) {
    g_name = name;
    g_launch_hazards = 0;
}

void emu_race_block(dim3 bid, void *dyn, size_t dyn_bytes) {
    if (!mode()) return;
    g_bid = bid;
    g_block_serial++;  // every earlier access now belongs to another block
    g_dyn = (uintptr_t)dyn, g_dyn_len = dyn_bytes;
    if (g_sh_dyn.size() < dyn_bytes / 2 + 1) g_sh_dyn.resize(dyn_bytes / 2 + 1, Granule{});
    if (g_sh_st.empty()) {
        dl_iterate_phdr(find_tls, nullptr);
        g_sh_st.assign(g_st_len / 2 + 1, Granule{});
        g_guard.assign(g_st_len / 2 + 1, false);
        find_guards();
    }
    g_active = true;
}

void emu_race_block_end() { g_active = false; }

extern "C" {
long emu_racecheck_hazards(void) { return g_hazards; }

// GCC's ThreadSanitizer entry points (what -fsanitize=thread calls; its runtime is not linked)
void __tsan_init(void) {}
void __tsan_func_entry(void *) {}
void __tsan_func_exit(void) {}
void __tsan_vptr_read(void **) {}
void __tsan_vptr_update(void **, void *) {}
#define EMU_TSAN(n)                                                                                                \
    void __tsan_read##n(void *p) { on_access(p, n, false); }                                                      \
    void __tsan_write##n(void *p) { on_access(p, n, true); }                                                      \
    void __tsan_unaligned_read##n(void *p) { on_access(p, n, false); }                                            \
    void __tsan_unaligned_write##n(void *p) { on_access(p, n, true); }                                            \
    void __tsan_volatile_read##n(void *p) { on_access(p, n, false); }                                             \
    void __tsan_volatile_write##n(void *p) { on_access(p, n, true); }
EMU_TSAN(1)
EMU_TSAN(2)
EMU_TSAN(4)
EMU_TSAN(8)
EMU_TSAN(16)
void __tsan_read_range(void *p, unsigned long n) { on_access(p, n, false); }
void __tsan_write_range(void *p, unsigned long n) { on_access(p, n, true); }
}
