/* Fused SRC layer kernels for the CPU: the elementwise part of one layer over all T steps, in one pass.
 *
 * Layout: every array is time-major, (T, M) with M = batch * neurons, neuron index n = m % N.
 * Each OpenMP thread owns chunks of CHUNK columns and walks them through time, keeping the
 * states i, h, h_s of its chunk in registers/L1; the inner loop over the chunk is contiguous,
 * so GCC vectorises it (tanh through glibc's libmvec under -ffast-math).
 *
 * forward:  i[t] = alpha*i[t-1] + u[t];  x = rho*tanh(i/rho);  d = r*h[t-1] + r_s*h_s[t-1];
 *           z = z_dep if h[t-1] >= 0.5 else z_hyp;  h[t] = tanh(x + b + d);
 *           h_s[t] = z*h_s[t-1] + (1-z)*h[t-1];  s[t] = max(h[t], 0);  *active = count of s > 0
 * backward: (the paper's gradient: through i only, ReLU as identity)
 *           g_pre = g_s*(1 - h^2);  g_b += g_pre;  g_i = g_pre*(1 - (x/rho)^2);
 *           g_u[t] = g_i[t] + alpha*g_u[t+1]
 */
#include <math.h>
#include <stdint.h>

#define CHUNK 256

#define DEFINE_KERNELS(T_, SUFFIX, TANH)                                                            \
void src_forward_##SUFFIX(int64_t steps, int64_t M, int64_t N, const T_ *u, const T_ *bias,       \
                          T_ alpha, T_ rho, T_ r, T_ r_s, T_ z_hyp, T_ z_dep,                       \
                          T_ *s, T_ *h_out, T_ *x_out, T_ *i_out, T_ *hs_out, int64_t *active)      \
{                                                                                                   \
    const T_ inv_rho = (T_)1 / rho;                                                                 \
    const int64_t chunks = (M + CHUNK - 1) / CHUNK;                                                 \
    int64_t total = 0;                                                                              \
    _Pragma("omp parallel for schedule(static) reduction(+:total)")                                 \
    for (int64_t c = 0; c < chunks; c++) {                                                          \
        const int64_t m0 = c * CHUNK;                                                               \
        const int64_t len = (M - m0) < CHUNK ? (M - m0) : CHUNK;                                    \
        T_ i[CHUNK], h[CHUNK], hs[CHUNK], b[CHUNK];                                                 \
        for (int64_t k = 0; k < len; k++) {                                                         \
            i[k] = 0; h[k] = 0; hs[k] = 0; b[k] = bias[(m0 + k) % N];                               \
        }                                                                                           \
        for (int64_t t = 0; t < steps; t++) {                                                       \
            const int64_t row = t * M + m0;                                                         \
            for (int64_t k = 0; k < len; k++) {                                                     \
                const T_ ii = alpha * i[k] + u[row + k];                                            \
                const T_ x = rho * TANH(ii * inv_rho);                                              \
                const T_ hp = h[k], hsp = hs[k];                                                    \
                const T_ d = r * hp + r_s * hsp;                                                    \
                const T_ z = hp >= (T_)0.5 ? z_dep : z_hyp;                                         \
                const T_ hn = TANH(x + b[k] + d);                                                   \
                hs[k] = z * hsp + ((T_)1 - z) * hp;                                                 \
                h[k] = hn;                                                                          \
                i[k] = ii;                                                                          \
                s[row + k] = hn > (T_)0 ? hn : (T_)0;                                               \
                total += hn > (T_)0;                                                                \
                h_out[row + k] = hn;                                                                \
                x_out[row + k] = x;                                                                 \
            }                                                                                       \
            if (i_out) for (int64_t k = 0; k < len; k++) i_out[row + k] = i[k];                     \
            if (hs_out) for (int64_t k = 0; k < len; k++) hs_out[row + k] = hs[k];                  \
        }                                                                                           \
    }                                                                                               \
    *active = total;                                                                                \
}                                                                                                   \
                                                                                                    \
void src_backward_##SUFFIX(int64_t steps, int64_t M, const T_ *g_s, const T_ *h, const T_ *x,       \
                           T_ alpha, T_ rho, T_ *g_u, T_ *g_b)                                       \
{                                                                                                   \
    const T_ inv_rho = (T_)1 / rho;                                                                 \
    const int64_t chunks = (M + CHUNK - 1) / CHUNK;                                                 \
    _Pragma("omp parallel for schedule(static)")                                                    \
    for (int64_t c = 0; c < chunks; c++) {                                                          \
        const int64_t m0 = c * CHUNK;                                                               \
        const int64_t len = (M - m0) < CHUNK ? (M - m0) : CHUNK;                                    \
        T_ acc[CHUNK], gb[CHUNK];                                                                   \
        for (int64_t k = 0; k < len; k++) { acc[k] = 0; gb[k] = 0; }                                \
        for (int64_t t = steps - 1; t >= 0; t--) {                                                  \
            const int64_t row = t * M + m0;                                                         \
            for (int64_t k = 0; k < len; k++) {                                                     \
                const T_ hh = h[row + k], xr = x[row + k] * inv_rho;                                \
                const T_ gp = g_s[row + k] * ((T_)1 - hh * hh);                                     \
                gb[k] += gp;                                                                        \
                acc[k] = gp * ((T_)1 - xr * xr) + alpha * acc[k];                                   \
                g_u[row + k] = acc[k];                                                              \
            }                                                                                       \
        }                                                                                           \
        for (int64_t k = 0; k < len; k++) g_b[m0 + k] = gb[k];                                      \
    }                                                                                               \
}

DEFINE_KERNELS(float, f32, tanhf)
DEFINE_KERNELS(double, f64, tanh)

/* Event-driven input projection of a layer whose input is sparse (layer 0: input spikes).
 *
 * S is the input, (R, K) with R = steps * batch rows, K inputs, mostly zeros; W_T is the weight
 * transposed, (K, N). forward:  U[r] = sum over j with S[r, j] != 0 of S[r, j] * W_T[j]
 * backward: G_W_T[j] = sum over r with S[r, j] != 0 of S[r, j] * G_U[r]: each thread accumulates
 * its rows into a private (K, N) buffer (``scratch``, threads * K * N values), then the buffers
 * are summed. The cost is events * N, not R * K * N.
 */
#include <omp.h>
#include <string.h>

/* The caller's thread budget (torch.get_num_threads()), applied before each kernel. */
void src_set_threads(int64_t threads) { if (threads > 0) omp_set_num_threads((int)threads); }

#define DEFINE_EVENT_KERNELS(T_, SUFFIX)                                                            \
void events_forward_##SUFFIX(int64_t R, int64_t K, int64_t N, const T_ *S, const T_ *W_T, T_ *U)   \
{                                                                                                   \
    _Pragma("omp parallel for schedule(static)")                                                    \
    for (int64_t r = 0; r < R; r++) {                                                               \
        T_ *out = U + r * N;                                                                        \
        for (int64_t n = 0; n < N; n++) out[n] = 0;                                                 \
        const T_ *row = S + r * K;                                                                  \
        for (int64_t j = 0; j < K; j++) {                                                           \
            const T_ a = row[j];                                                                    \
            if (a == (T_)0) continue;                                                               \
            const T_ *w = W_T + j * N;                                                              \
            for (int64_t n = 0; n < N; n++) out[n] += a * w[n];                                     \
        }                                                                                           \
    }                                                                                               \
}                                                                                                   \
                                                                                                    \
int64_t events_threads_##SUFFIX(void) { return omp_get_max_threads(); }                             \
                                                                                                    \
void events_backward_##SUFFIX(int64_t R, int64_t K, int64_t N, const T_ *S, const T_ *G_U,         \
                              T_ *G_W_T, T_ *scratch)                                                \
{                                                                                                   \
    const int64_t threads = omp_get_max_threads();                                                  \
    memset(scratch, 0, sizeof(T_) * threads * K * N);                                               \
    _Pragma("omp parallel")                                                                         \
    {                                                                                               \
        T_ *mine = scratch + (int64_t)omp_get_thread_num() * K * N;                                 \
        _Pragma("omp for schedule(static)")                                                         \
        for (int64_t r = 0; r < R; r++) {                                                           \
            const T_ *row = S + r * K, *g = G_U + r * N;                                            \
            for (int64_t j = 0; j < K; j++) {                                                       \
                const T_ a = row[j];                                                                \
                if (a == (T_)0) continue;                                                           \
                T_ *acc = mine + j * N;                                                             \
                for (int64_t n = 0; n < N; n++) acc[n] += a * g[n];                                 \
            }                                                                                       \
        }                                                                                           \
        _Pragma("omp for schedule(static)")                                                         \
        for (int64_t e = 0; e < K * N; e++) {                                                       \
            T_ sum = 0;                                                                             \
            for (int64_t p = 0; p < threads; p++) sum += scratch[p * K * N + e];                    \
            G_W_T[e] = sum;                                                                         \
        }                                                                                           \
    }                                                                                               \
}

DEFINE_EVENT_KERNELS(float, f32)
DEFINE_EVENT_KERNELS(double, f64)

/* The device's rate coder (quant/intencode.py): pixel j of sample b spikes at step t when the top
 * draw_bits of fmix32(fmix32(seed_b) ^ (t << 16 | j)) are below threshold[pixel]. ``out`` (T, B, K)
 * must be zeroed by the caller; only non-zero pixels are drawn. */
static inline uint32_t fmix32(uint32_t x)
{
    x ^= x >> 16; x *= 0x85EBCA6Bu; x ^= x >> 13; x *= 0xC2B2AE35u; return x ^ (x >> 16);
}

#define DEFINE_RATE(T_, SUFFIX)                                                                     \
void rate_encode_##SUFFIX(int64_t steps, int64_t B, int64_t K, const int64_t *pixels,              \
                          const int64_t *seeds, const int64_t *thresholds, int64_t draw_bits, T_ *out) \
{                                                                                                   \
    _Pragma("omp parallel for schedule(static)")                                                    \
    for (int64_t b = 0; b < B; b++) {                                                               \
        const uint32_t key = fmix32((uint32_t)seeds[b]);                                            \
        for (int64_t j = 0; j < K; j++) {                                                           \
            const int64_t p = pixels[b * K + j];                                                    \
            if (p == 0) continue;                                                                   \
            const uint32_t limit = (uint32_t)thresholds[p];                                         \
            for (int64_t t = 0; t < steps; t++) {                                                   \
                const uint32_t draw = fmix32(key ^ (uint32_t)((t << 16) | j)) >> (32 - draw_bits); \
                out[(t * B + b) * K + j] = draw < limit ? (T_)1 : (T_)0;                            \
            }                                                                                       \
        }                                                                                           \
    }                                                                                               \
}

DEFINE_RATE(float, f32)
DEFINE_RATE(double, f64)
