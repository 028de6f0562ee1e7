// Not under the fast profile: it checks glibc's addresses, which the fast
// profile does not keep.
/* layout_equivalence: the default profile lays out the heap exactly as
 * glibc 2.36 does.  Deterministic sequences of malloc, free, calloc,
 * realloc and the memalign family (sizes across every bin class and past
 * the mmap threshold; many seeds) are run twice, in fresh processes: once on
 * the system glibc's malloc (LD_PRELOAD removed) and once under the
 * library; each prints every returned address as an offset from its heap's
 * start (the brk heap, or a thread heap's 64 MiB-aligned base; a mapping of
 * its own prints as "mmap" and its size, since where the kernel puts it is
 * not the allocator's doing).  The two listings must be equal, line for
 * line.  Variants: a second thread running a sequence after the first, and
 * settings changed with mallopt and GLIBC_TUNABLES (mxfast, the mmap and
 * trim thresholds, tcache_count 0 and 16).
 * Guards against: any difference in where glibc's policies put a block
 * (tcache size, internal frees and splits, calloc and memalign paths).
 * Without LD_PRELOAD (scripts/run-tests --glibc) there is nothing to compare
 * with: skipped (exit 77). */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define TEST_NAME "layout_equivalence"
#include "testlib.h"

/* ---------- the child: one sequence, its listing on stdout ---------- */

static char out[1 << 16];
static size_t out_len;

static int verbose; /* LE_VERBOSE set: mallinfo2 after every line, to find where two runs part */

static void emit_raw(const char *s);
static void emit(const char *s) {
  emit_raw(s);
  if (verbose) {
    struct mallinfo2 m = mallinfo2();
    char line[160];
    snprintf(line, sizeof line, "  arena %zu ordblks %zu smblks %zu fsmblks %zu fordblks %zu keepcost %zu\n", m.arena,
             m.ordblks, m.smblks, m.fsmblks, m.fordblks, m.keepcost);
    emit_raw(line);
  }
}

static void emit_raw(const char *s) {
  size_t n = strlen(s);
  if (out_len + n > sizeof out) {
    if (write(1, out, out_len) < 0) _exit(3);
    out_len = 0;
  }
  memcpy(out + out_len, s, n);
  out_len += n;
}

static void flush_out(void) {
  if (out_len && write(1, out, out_len) < 0) _exit(3);
  out_len = 0;
}

static uint64_t rng;
static uint64_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* Sizes biased to class borders: fastbins, small/large bins, the tcache's
 * last bin, the mmap threshold. */
static size_t pick_size(void) {
  static const size_t edges[] = {0,    1,    24,   25,    40,    120,   128,    129,    200,    1000,
                                 1008, 1024, 1032, 1040,  2000,  4096,  10000,  65536,  131000, 140000};
  uint64_t r = next_rand();
  switch (r % 4) {
    case 0: return edges[(r >> 8) % (sizeof edges / sizeof *edges)];
    case 1: return (r >> 8) % 512;
    case 2: return (r >> 8) % 4096;
    default: return (r >> 8) % 70000;
  }
}

static uintptr_t brk_start;
/* The two-thread variant leaves out the memalign family: see below. */
static int no_memalign;

static void print_addr(const char *op, unsigned i, size_t n, void *p) {
  char line[128];
  uintptr_t a = (uintptr_t)p;
  uintptr_t brk_now = (uintptr_t)sbrk(0);
  if (!p)
    snprintf(line, sizeof line, "%s %u %zu -> null\n", op, i, n);
  else if (((size_t *)p)[-1] & 2) /* IS_MMAPPED in the chunk's size word */
    snprintf(line, sizeof line, "%s %u %zu -> mmap %zu+%#lx\n", op, i, n, malloc_usable_size(p),
             (unsigned long)(a & 0xfff));
  else if (a >= brk_start && a < brk_now)
    snprintf(line, sizeof line, "%s %u %zu -> heap+%#lx\n", op, i, n, (unsigned long)(a - brk_start));
  else
    snprintf(line, sizeof line, "%s %u %zu -> theap+%#lx\n", op, i, n, (unsigned long)(a & ((64UL << 20) - 1)));
  emit(line);
}

enum { SLOTS = 48 };

static void sequence(unsigned steps) {
  void *live[SLOTS] = {0};
  size_t len[SLOTS] = {0};
  for (unsigned s = 0; s < steps; s++) {
    unsigned i = (unsigned)(next_rand() % SLOTS);
    if (live[i]) {
      uint64_t r = next_rand() % 8;
      if (r < 5) {
        free(live[i]);
        live[i] = NULL;
        emit("free\n");
        continue;
      }
      if (r < 7) {
        size_t n = pick_size();
        void *q = realloc(live[i], n);
        if (q || n == 0) live[i] = q, len[i] = n;
        print_addr("realloc", i, n, q);
        continue;
      }
      free(live[i]);
      live[i] = NULL;
    }
    size_t n = pick_size();
    uint64_t how = next_rand() % 10;
    void *p = NULL;
    if (how < 6 || (how >= 8 && no_memalign)) {
      p = malloc(n);
      print_addr("malloc", i, n, p);
    } else if (how < 8) {
      size_t k = 1 + next_rand() % 4;
      p = calloc(k, n / k);
      print_addr("calloc", i, n, p);
    } else {
      size_t align = (size_t)32 << (next_rand() % 6);
      switch (next_rand() % 3) {
        case 0: p = memalign(align, n); break;
        case 1:
          if (posix_memalign(&p, align, n) != 0) p = NULL;
          break;
        default: p = aligned_alloc(align, (n + align - 1) & ~(align - 1)); break;
      }
      print_addr("memalign", i, n, p);
    }
    live[i] = p;
    len[i] = n;
  }
  for (unsigned i = 0; i < SLOTS; i++) free(live[i]);
  (void)len;
}

/* The two-thread variant: the second thread is made by a launcher thread,
 * itself made before the main thread's first block.  pthread_create
 * allocates the new thread's DTV in the creating thread's arena, and under
 * the preload the DTV has one more entry (the library is one more module
 * with TLS): 16 bytes more.  Made first, the launcher's DTV only moves the
 * main heap's base, from which main's offsets are taken; the launcher's
 * arena, which gets the second DTV, is not listed.  Where a block goes
 * after that shift is the same relative to the base, except where it
 * depends on the address itself: the memalign family, which this variant
 * leaves out (README: "What differs on purpose").  Pipes carry the
 * requests: they allocate nothing. */
static unsigned thread_steps;
static int to_launcher[2], from_launcher[2];

static void *second_thread(void *arg) {
  (void)arg;
  emit("thread\n");
  sequence(thread_steps);
  return NULL;
}

static void *launcher(void *arg) {
  (void)arg;
  char c;
  while (read(to_launcher[0], &c, 1) == 1) {
    pthread_t t;
    if (pthread_create(&t, NULL, second_thread, NULL) != 0) _exit(4);
    pthread_join(t, NULL);
    if (write(from_launcher[1], &c, 1) != 1) _exit(5);
  }
  return NULL;
}

/* argv: run SEED STEPS THREADED MALLOPT */
static int child(char **argv) {
  rng = strtoull(argv[2], NULL, 0) * 0x9e3779b97f4a7c15ULL | 1;
  unsigned steps = (unsigned)strtoul(argv[3], NULL, 0);
  int threaded = atoi(argv[4]);
  int opt = atoi(argv[5]);
  verbose = getenv("LE_VERBOSE") != NULL;
  pthread_t l;
  if (threaded) {
    if (pipe(to_launcher) != 0 || pipe(from_launcher) != 0) _exit(4);
    if (pthread_create(&l, NULL, launcher, NULL) != 0) _exit(4);
  }
  brk_start = (uintptr_t)sbrk(0);
  if (threaded) {
    no_memalign = 1;
    /* The main heap's base: the first block after the launcher's DTV. */
    void *base = malloc(1);
    brk_start = (uintptr_t)base;
  }
  switch (opt) {
    case 1: mallopt(M_MXFAST, 0); break;
    case 2: mallopt(M_MXFAST, 160); break;
    case 3: mallopt(M_MMAP_THRESHOLD, 64 * 1024); break;
    case 4: mallopt(M_TRIM_THRESHOLD, 4096); break;
    default: break;
  }
  sequence(steps);
  if (threaded) {
    thread_steps = steps;
    char c = 'g';
    if (write(to_launcher[1], &c, 1) != 1 || read(from_launcher[0], &c, 1) != 1) _exit(4);
    emit("main again\n");
    sequence(steps / 2);
  }
  flush_out();
  return 0;
}

/* ---------- the parent: run both, compare ---------- */

/* Runs this program's child part (testlib's run_self_capture); its stdout
 * into buf.  `preload` NULL runs on glibc's malloc. */
static size_t run(char *buf, size_t cap, const char *preload, const char *tunables, char **args) {
  char lp[4096], tun[256];
  snprintf(lp, sizeof lp, "LD_PRELOAD=%s", preload ? preload : "");
  snprintf(tun, sizeof tun, "GLIBC_TUNABLES=%s", tunables ? tunables : "");
  const char *env[] = {preload ? lp : "LD_PRELOAD", tunables ? tun : "GLIBC_TUNABLES", NULL};
  int st = run_self_capture(1, args, env, buf, cap, 120000);
  if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    FAIL("%s run (seed %s) ended with status %#x", preload ? "preload" : "glibc", args[2], st);
    return 0;
  }
  return strlen(buf);
}

/* The first line where the two listings differ, with its number. */
static void report_difference(const char *what, const char *a, const char *b) {
  unsigned line = 1;
  const char *la = a, *lb = b;
  while (*a && *a == *b) {
    if (*a == '\n') line++, la = a + 1, lb = b + 1;
    a++, b++;
  }
  const char *ea = strchr(la, '\n'), *eb = strchr(lb, '\n');
  int na = ea ? (int)(ea - la) : (int)strlen(la), nb = eb ? (int)(eb - lb) : (int)strlen(lb);
  FAIL("%s: the listings differ at line %u: glibc \"%.*s\", preload \"%.*s\"", what, line, na, la, nb, lb);
}

int main(int argc, char **argv) {
  if (argc == 6 && strcmp(argv[1], "run") == 0) return child(argv);
  test_watchdog(600, "the comparison runs");
  const char *lib = getenv("LD_PRELOAD");
  if (!lib || !*lib) {
    printf(TEST_NAME ": nothing to compare with glibc without LD_PRELOAD: skipped\n");
    return 77;
  }
  static char a[4 << 20], b[4 << 20];
  struct {
    const char *name;
    const char *tunables;
    int opt, threaded, seeds;
    unsigned steps;
  } variants[] = {
      {"default", NULL, 0, 0, 40, 3000},
      {"two threads", NULL, 0, 1, 10, 2000},
      {"mallopt M_MXFAST 0", NULL, 1, 0, 5, 2000},
      {"mallopt M_MXFAST 160", NULL, 2, 0, 5, 2000},
      {"mallopt M_MMAP_THRESHOLD 64 KiB", NULL, 3, 0, 5, 2000},
      {"mallopt M_TRIM_THRESHOLD 4 KiB", NULL, 4, 0, 5, 2000},
      {"tcache_count 0", "glibc.malloc.tcache_count=0", 0, 0, 5, 2000},
      {"tcache_count 16", "glibc.malloc.tcache_count=16", 0, 0, 5, 2000},
  };
  unsigned compared = 0, lines = 0;
  for (size_t v = 0; v < sizeof variants / sizeof *variants; v++) {
    for (int seed = 1; seed <= variants[v].seeds; seed++) {
      char s_seed[16], s_steps[16], s_thr[4], s_opt[4];
      snprintf(s_seed, sizeof s_seed, "%d", seed);
      snprintf(s_steps, sizeof s_steps, "%u", variants[v].steps);
      snprintf(s_thr, sizeof s_thr, "%d", variants[v].threaded);
      snprintf(s_opt, sizeof s_opt, "%d", variants[v].opt);
      char *args[] = {argv[0], "run", s_seed, s_steps, s_thr, s_opt, NULL};
      size_t na = run(a, sizeof a, NULL, variants[v].tunables, args);
      size_t nb = run(b, sizeof b, lib, variants[v].tunables, args);
      if (!na || !nb) continue;
      compared++;
      for (const char *p = a; *p; p++) lines += *p == '\n';
      if (na != nb || memcmp(a, b, na) != 0) {
        char what[96];
        snprintf(what, sizeof what, "%s, seed %d", variants[v].name, seed);
        report_difference(what, a, b);
      }
    }
  }
  printf(TEST_NAME ": %u sequences, %u lines compared with glibc\n", compared, lines);
  test_expect_reuse();
  return test_finish();
}
