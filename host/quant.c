/* quant.c — INT8 weight quantization, activation quantization and the matrix-vector drivers of decode (see
 * quant.h; the dot-product kernels are in quant_dot.c). The u8 x s8 VNNI instruction (vpdpbusd) multiplies
 * unsigned activations by signed weights, so activations carry a +128 offset and the precomputed 128 * sum(w) of
 * each group takes it back out exactly (integer arithmetic). */
#include "host/quant.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "host/cpu/par.h"
#include "host/error.h"
#include "host/half.h"
#include "host/threads.h"

int quant_ngroups(int cols, int group) { return group <= 0 || group >= cols ? 1 : (cols + group - 1) / group; }

void quant_rows(const float *w, int rows, int cols, int group, int8_t *q, uint16_t *scale) {
    int G = group <= 0 || group > cols ? cols : group, ng = quant_ngroups(cols, group);
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        for (int g = 0; g < ng; g++) {
            int c0 = g * G, c1 = c0 + G < cols ? c0 + G : cols;
            float amax = 0;
            for (int c = c0; c < c1; c++) amax = fmaxf(amax, fabsf(w[(size_t)r * cols + c]));
            uint16_t h = float_to_half(amax / 127.0f);
            float s = half_to_float(h);
            if (s == 0 && amax > 0) h = 1, s = half_to_float(1); /* tiny groups: smallest subnormal scale */
            scale[(size_t)r * ng + g] = h;
            float inv = s > 0 ? 1.0f / s : 0;
            for (int c = c0; c < c1; c++) {
                float v = rintf(w[(size_t)r * cols + c] * inv);
                q[(size_t)r * cols + c] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
            }
        }
    }
}

void qmat_prepare(sc_qmat *m) {
    m->ngroups = quant_ngroups(m->cols, m->group);
    if (m->group <= 0 || m->group > m->cols) m->group = m->cols;
    size_t n = (size_t)m->rows * m->ngroups;
    m->fscale = sc_malloc(n * sizeof(float));
    m->wsum = sc_malloc(n * sizeof(int32_t));
    for (int r = 0; r < m->rows; r++)
        for (int g = 0; g < m->ngroups; g++) {
            int c0 = g * m->group, c1 = c0 + m->group < m->cols ? c0 + m->group : m->cols, s = 0;
            for (int c = c0; c < c1; c++) s += m->q[(size_t)r * m->cols + c];
            m->wsum[(size_t)r * m->ngroups + g] = 128 * s;
            uint16_t h;
            memcpy(&h, (const uint8_t *)m->scale + 2 * ((size_t)r * m->ngroups + g), 2);
            m->fscale[(size_t)r * m->ngroups + g] = half_to_float(h);
        }
}

void qmat_free(sc_qmat *m) {
    free(m->fscale);
    free(m->wsum);
    m->fscale = NULL;
    m->wsum = NULL;
}

/* a decode step's embedding row comes through here too: one row is not worth waking the team (par.h) */
void qmat_dequant_rows(const sc_qmat *m, int r0, int r1, float *out) {
#pragma omp parallel for schedule(static) if (PAR((int64_t)(r1 - r0) * m->cols))
    for (int r = r0; r < r1; r++)
        for (int g = 0; g < m->ngroups; g++) { /* a group at a time: one scale, a loop the compiler vectorizes */
            int c0 = g * m->group, c1 = c0 + m->group < m->cols ? c0 + m->group : m->cols;
            const int8_t *q = m->q + (size_t)r * m->cols;
            float s = m->fscale[(size_t)r * m->ngroups + g], *o = out + (size_t)(r - r0) * m->cols;
            for (int c = c0; c < c1; c++) o[c] = (float)q[c] * s;
        }
}

void act_quant(const float *x, int cols, int group, uint8_t *xq, float *xs) {
    int G = group <= 0 || group > cols ? cols : group, ng = quant_ngroups(cols, group);
    for (int g = 0; g < ng; g++) {
        int c0 = g * G, c1 = c0 + G < cols ? c0 + G : cols;
        float amax = 0;
        for (int c = c0; c < c1; c++) amax = fabsf(x[c]) > amax ? fabsf(x[c]) : amax;
        float s = amax / 127.0f, inv = s > 0 ? 1.0f / s : 0;
        xs[g] = s;
        for (int c = c0; c < c1; c++) xq[c] = (uint8_t)((int)rintf(x[c] * inv) + 128);
    }
}

void qmat_matvec(const sc_qmat *m, const uint8_t *xq, const float *xs, float *y) {
    float *ys[1] = {y};
    qmat_matvec_multi(&m, 1, xq, xs, ys);
}

/* Decode: the rows of all nm matrices are one list of QCHUNK-row items, in one parallel region per input instead
 * of one per matrix (q, k, v share theirs; gate and up theirs): each region is a wake-up and a join of the team.
 * Items are handed out by sc_split (threads.h): one contiguous run per thread, or a shared queue with
 * SMALLCODER_DECODE_SPLIT=queue (OpenMP's dynamic schedule until 2026-12-05: two threads read alternate blocks,
 * and on the idle machine decoded no faster than one, 304m 110.8 tok/s on one thread, 110.2 on two). Either way a
 * thread the scheduler preempts (2 cores shared with other jobs) holds back one item, the other takes the rest.
 * Every row is computed by the same code whichever thread takes it, so results do not depend on the schedule or
 * the thread count. */
enum { QCHUNK = 64 };
typedef struct {
    const sc_qmat *const *m;
    const uint8_t *xq;
    const float *xs;
    float *const *y;
    int *first, T;
    sc_split split;
} qpar;

static void matvec_part(void *a, int t, int nt) {
    qpar *q = a;
    qrows_fn rows = quant_rows_kernel();
    (void)nt;
    for (int item; (item = sc_split_next(&q->split, t)) >= 0;) {
        int i = 0;
        while (item >= q->first[i + 1]) i++;
        const sc_qmat *m = q->m[i];
        int r0 = (item - q->first[i]) * QCHUNK, r1 = r0 + QCHUNK < m->rows ? r0 + QCHUNK : m->rows;
        rows(m, r0, r1, q->xq, q->xs, q->y[i]);
    }
}

/* sc_par (threads.h): the CPU engine's decode pool when it holds one, else an OpenMP region */
void qmat_matvec_multi(const sc_qmat *const *m, int nm, const uint8_t *xq, const float *xs, float *const *y) {
    int first[QMULTI_MAX + 1];
    first[0] = 0;
    for (int i = 0; i < nm; i++) first[i + 1] = first[i] + (m[i]->rows + QCHUNK - 1) / QCHUNK;
    qpar q = {.m = m, .xq = xq, .xs = xs, .y = y, .first = first};
    sc_split_init(&q.split, first[nm], sc_split_segments(sc_par_threads()));
    sc_par(matvec_part, &q);
}

static void matmul_part(void *a, int t, int nt) {
    qpar *q = a;
    qmm_fn mm = quant_matmul_kernel();
    const sc_qmat *m = q->m[0];
    (void)nt;
    for (int item; (item = sc_split_next(&q->split, t)) >= 0;) {
        int r0 = item * 16;
        mm(m, r0, r0 + 16 < m->rows ? r0 + 16 : m->rows, q->xq, q->xs, q->y[0], q->T);
    }
}

void qmat_matmul(const sc_qmat *m, const uint8_t *xq, const float *xs, float *y, int T) {
    if (T == 1) {
        qmat_matvec(m, xq, xs, y);
        return;
    }
    /* blocks of 16 rows stay in cache while every token passes over them (quant_dot.c's several-token kernels);
     * handed out as in decode (a verification pass of a few tokens reads the weights once, like a decode step) */
    qpar q = {.m = &m, .xq = xq, .xs = xs, .y = &y, .T = T};
    sc_split_init(&q.split, (m->rows + 15) / 16, sc_split_segments(sc_par_threads()));
    sc_par(matmul_part, &q);
}
