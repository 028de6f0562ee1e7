// Not under the fast profile: it checks glibc's figures for a known sequence
// (tcache of 7..16; the fast profile's caches hold freed blocks as in use).
/* malloc_reports: mallinfo2, mallinfo, malloc_stats and malloc_info after a
 * known sequence of allocations, checked against each other and against what
 * the program can see for itself (the break, the [heap] mapping, chunk size
 * words).
 *
 * Single thread (main arena only):
 *  - mallinfo2: arena == sbrk(0) - start of [heap] (the main arena's system
 *    bytes); uordblks + fordblks == arena; usmblks == 0; keepcost == the top
 *    chunk's size (the break minus the end of the last chunk carved from the
 *    top); freeing 20 separated blocks above the tcache range adds exactly
 *    their chunk sizes (max(32, (n + 8 + 15) & ~15)) to fordblks and 20 to
 *    ordblks (free chunks in bins, top counted as 1); freeing 40 small
 *    blocks adds to smblks / fsmblks exactly the chunks that overflow the
 *    tcache (t per size, 7 <= t <= 16), fordblks by the same bytes, ordblks
 *    unchanged; hblks / hblkhd count the live mmap'd chunks and
 *    their mapping sizes (the chunk size word: (n + 8 + 15 & ~15) + 8
 *    page-rounded).
 *  - mallinfo() == mallinfo2() field by field, truncated to int.
 *  - malloc_stats() (fd 2 captured in a memfd): exactly the lines
 *    "Arena 0:", "system bytes     = %10u" (arena), "in use bytes     = %10u"
 *    (uordblks), "Total (incl. mmap):", system bytes (arena + hblkhd), in use
 *    bytes (uordblks + hblkhd), "max mmap regions = %10u" (>= the 3 mmap'd
 *    chunks live at once), "max mmap bytes   = %10lu" (>= their sizes).
 *  - malloc_info(0, fp): the XML below, numbers agreeing with mallinfo2;
 *    malloc_info(1, fp) returns EINVAL and writes nothing.
 * Then 3 threads alive at once (held on a barrier while the reports run), each
 * with blocks freed into its arena's bins and fastbins: malloc_stats has one
 * "Arena N:" block per arena (4), whose sums are mallinfo2's arena and
 * uordblks; malloc_info has 4 <heap nr="0".."3"> whose sums are its totals
 * and mallinfo2's fields.  Neither report allocates (mallinfo2 is the same
 * before and after; the FILE has its own buffer).
 *
 * malloc_info's format, glibc 2.36 (checked with the system libc):
 *   <malloc version="1">
 *   <heap nr="N">            one per arena, main first
 *   <sizes>
 *     <size from= to= total= count=/>   fastbins first: from = to - 15,
 *                                       total = count x to; then one per
 *                                       non-empty bin
 *     <unsorted from= to= total= count=/>   if the unsorted bin is not empty
 *   </sizes>
 *   <total type="fast" count= size=/>   fastbin chunks
 *   <total type="rest" count= size=/>   bin chunks + the top (count + 1)
 *   <system type="current" size=/>  <system type="max" size=/>
 *   <aspace type="total" size=/>    <aspace type="mprotect" size=/>
 *   <aspace type="subheaps" size=/>     thread arenas only
 *   </heap>
 *   <total type="fast" .../> <total type="rest" .../>
 *   <total type="mmap" count= size=/>   hblks, hblkhd
 *   <system .../> x2  <aspace .../> x2  (sums)
 *   </malloc>
 * A glibc quirk asserted here: the bin entries and "rest" use the chunk size
 * word with its PREV_INUSE bit (always set on a binned chunk), so each bin
 * chunk counts 1 byte more than in mallinfo2: fordblks == fast size + rest
 * size - (rest count - number of arenas). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define TEST_NAME "malloc_reports"
#define TEST_MAX_FAILURES 30
#include "testlib.h"

#pragma GCC diagnostic ignored "-Wdeprecated-declarations" /* mallinfo */

#define MiB ((size_t)1024 * 1024)
#define PAGE ((size_t)4096)
#define IS_MMAPPED ((size_t)2)

static size_t size_word(const void *p) { return ((const size_t *)p)[-1]; }
static size_t chunk_size(const void *p) { return size_word(p) & ~(size_t)7; }
static size_t req2size(size_t n) { return n + 8 + 15 < 32 ? 32 : (n + 8 + 15) & ~(size_t)15; }
static size_t mmap_size(size_t n) { return (req2size(n) + 8 + PAGE - 1) & ~(PAGE - 1); }
static uintptr_t brk_now(void) { return (uintptr_t)sbrk(0); }

/* ---------- reading files without malloc ---------- */

static char textbuf[1 << 18];

/* Reads all of fd (from offset 0) into textbuf, NUL-terminated. */
static size_t slurp_fd(int fd) {
  size_t n = 0;
  ssize_t r;
  while (n < sizeof textbuf - 1 && (r = pread(fd, textbuf + n, sizeof textbuf - 1 - n, (off_t)n)) > 0)
    n += (size_t)r;
  textbuf[n] = 0;
  return n;
}

/* The start of the [heap] mapping, or 0. */
static uintptr_t heap_mapping_start(void) {
  int fd = open("/proc/self/maps", O_RDONLY);
  if (fd < 0) return 0;
  size_t n = 0;
  ssize_t r;
  while (n < sizeof textbuf - 1 && (r = read(fd, textbuf + n, sizeof textbuf - 1 - n)) > 0)
    n += (size_t)r;
  close(fd);
  textbuf[n] = 0;
  for (char *line = textbuf; line && *line;) {
    char *nl = strchr(line, '\n');
    if (nl) *nl = 0;
    size_t len = strlen(line);
    if (len >= 6 && strcmp(line + len - 6, "[heap]") == 0) return (uintptr_t)strtoull(line, NULL, 16);
    line = nl ? nl + 1 : NULL;
  }
  return 0;
}

/* ---------- mallinfo2 checks ---------- */

static void check_identity(const struct mallinfo2 *m, const char *when) {
  if (m->uordblks + m->fordblks != m->arena)
    FAIL("%s: uordblks %zu + fordblks %zu != arena %zu", when, m->uordblks, m->fordblks, m->arena);
  if (m->usmblks != 0) FAIL("%s: usmblks is %zu, glibc always reports 0", when, m->usmblks);
  if (m->ordblks < 1) FAIL("%s: ordblks is 0 (the top counts as one)", when);
  if (m->fsmblks > m->fordblks) FAIL("%s: fsmblks %zu > fordblks %zu", when, m->fsmblks, m->fordblks);
  if (m->keepcost > m->fordblks) FAIL("%s: keepcost %zu > fordblks %zu", when, m->keepcost, m->fordblks);
}

static int same_info(const struct mallinfo2 *a, const struct mallinfo2 *b) {
  return a->arena == b->arena && a->ordblks == b->ordblks && a->smblks == b->smblks &&
         a->hblks == b->hblks && a->hblkhd == b->hblkhd && a->usmblks == b->usmblks &&
         a->fsmblks == b->fsmblks && a->uordblks == b->uordblks && a->fordblks == b->fordblks &&
         a->keepcost == b->keepcost;
}

/* ---------- malloc_stats ---------- */

struct stats {
  int narenas;
  size_t sys[64], used[64];
  size_t total_sys, total_used, max_regions, max_bytes;
};

static char stats_text[1 << 16];

/* Runs malloc_stats with fd 2 on a memfd; the text lands in stats_text.
 * m_before / m_after: mallinfo2 right before and after. */
static int capture_stats(struct mallinfo2 *m_before, struct mallinfo2 *m_after) {
  int mfd = memfd_create("malloc_stats", 0);
  if (mfd < 0) {
    FAIL("memfd_create failed: %s", strerror(errno));
    return 0;
  }
  fflush(stderr);
  int saved = dup(2);
  dup2(mfd, 2);
  *m_before = mallinfo2();
  malloc_stats();
  fflush(stderr);
  *m_after = mallinfo2();
  dup2(saved, 2);
  close(saved);
  slurp_fd(mfd);
  close(mfd);
  memcpy(stats_text, textbuf, sizeof stats_text - 1);
  stats_text[sizeof stats_text - 1] = 0;
  return 1;
}

/* Parses stats_text strictly, line by line. */
static int parse_stats(struct stats *s) {
  memset(s, 0, sizeof *s);
  char *lines[512];
  int nl = 0;
  for (char *p = stats_text; *p && nl < 512;) {
    lines[nl++] = p;
    char *e = strchr(p, '\n');
    if (!e) {
      FAIL("malloc_stats: the last line does not end with a newline: \"%s\"", p);
      return 0;
    }
    *e = 0;
    p = e + 1;
  }
  int i = 0;
  char want[128];
  unsigned u;
  unsigned long ul;
  int k;
  while (i < nl && strncmp(lines[i], "Arena ", 6) == 0) {
    snprintf(want, sizeof want, "Arena %d:", s->narenas);
    if (strcmp(lines[i], want) != 0) {
      FAIL("malloc_stats line %d is \"%s\", expected \"%s\"", i + 1, lines[i], want);
      return 0;
    }
    if (i + 2 >= nl) break;
    if (sscanf(lines[i + 1], "system bytes     = %u", &u) != 1 ||
        (snprintf(want, sizeof want, "system bytes     = %10u", u), strcmp(want, lines[i + 1]))) {
      FAIL("malloc_stats line %d is \"%s\", expected \"system bytes     = %%10u\"", i + 2, lines[i + 1]);
      return 0;
    }
    s->sys[s->narenas] = u;
    if (sscanf(lines[i + 2], "in use bytes     = %u", &u) != 1 ||
        (snprintf(want, sizeof want, "in use bytes     = %10u", u), strcmp(want, lines[i + 2]))) {
      FAIL("malloc_stats line %d is \"%s\", expected \"in use bytes     = %%10u\"", i + 3, lines[i + 2]);
      return 0;
    }
    s->used[s->narenas] = u;
    if (s->narenas < 63) s->narenas++;
    i += 3;
  }
  if (s->narenas == 0) {
    FAIL("malloc_stats: no \"Arena 0:\" line; output:\n%s", stats_text);
    return 0;
  }
  /* glibc's five lines; the hardened profile adds "profile: hardened". */
  const char *profile = getenv("PTMALLOC_RS_PROFILE");
  int hardened = profile && strcmp(profile, "hardened") == 0;
  if (hardened) {
    if (nl - i != 6 || strcmp(lines[nl - 1], "profile: hardened") != 0) {
      FAIL("malloc_stats: expected 5 lines after the arenas and \"profile: hardened\", got %d lines", nl - i);
      return 0;
    }
    nl--;
  }
  if (nl - i != 5) {
    FAIL("malloc_stats: %d lines after the arenas, expected 5 (Total, two byte counts, two max "
         "lines)",
         nl - i);
    return 0;
  }
  if (strcmp(lines[i], "Total (incl. mmap):") != 0) {
    FAIL("malloc_stats line %d is \"%s\", expected \"Total (incl. mmap):\"", i + 1, lines[i]);
    return 0;
  }
  const char *fmts[4] = {"system bytes     = %10u", "in use bytes     = %10u",
                         "max mmap regions = %10u", "max mmap bytes   = %10lu"};
  size_t *dst[4] = {&s->total_sys, &s->total_used, &s->max_regions, &s->max_bytes};
  for (k = 0; k < 4; k++) {
    const char *line = lines[i + 1 + k];
    int ok;
    if (k < 3) {
      ok = sscanf(line + 19, "%u", &u) == 1;
      if (ok) snprintf(want, sizeof want, fmts[k], u), *dst[k] = u;
    } else {
      ok = sscanf(line + 19, "%lu", &ul) == 1;
      if (ok) snprintf(want, sizeof want, fmts[k], ul), *dst[k] = ul;
    }
    if (strlen(line) < 19 || !ok || strcmp(want, line) != 0) {
      FAIL("malloc_stats line %d is \"%s\", expected the format \"%s\"", i + 2 + k, line, fmts[k]);
      return 0;
    }
  }
  return 1;
}

static void check_stats(int want_arenas) {
  struct mallinfo2 before, after;
  if (!capture_stats(&before, &after)) return;
  if (!same_info(&before, &after)) FAIL("malloc_stats changed the heap (mallinfo2 differs before and after)");
  struct stats s;
  if (!parse_stats(&s)) return;
  if (s.narenas != want_arenas)
    FAIL("malloc_stats lists %d arenas, expected %d; output:\n%s", s.narenas, want_arenas, stats_text);
  size_t sys = 0, used = 0;
  for (int a = 0; a < s.narenas; a++) {
    sys += s.sys[a];
    used += s.used[a];
    if (s.used[a] > s.sys[a]) FAIL("malloc_stats arena %d: in use %zu > system %zu", a, s.used[a], s.sys[a]);
    if (s.sys[a] == 0) FAIL("malloc_stats arena %d: 0 system bytes", a);
  }
  if (sys != (unsigned)before.arena || used != (unsigned)before.uordblks)
    FAIL("malloc_stats: arenas' system bytes sum to %zu, in use to %zu; mallinfo2 says arena %zu, "
         "uordblks %zu",
         sys, used, before.arena, before.uordblks);
  if (s.total_sys != (unsigned)(before.arena + before.hblkhd))
    FAIL("malloc_stats: total system bytes %zu, expected arena + hblkhd = %zu", s.total_sys,
         before.arena + before.hblkhd);
  if (s.total_used != (unsigned)(before.uordblks + before.hblkhd))
    FAIL("malloc_stats: total in use bytes %zu, expected uordblks + hblkhd = %zu", s.total_used,
         before.uordblks + before.hblkhd);
  if (s.max_regions < 3 || s.max_regions < before.hblks)
    FAIL("malloc_stats: max mmap regions %zu, but 3 mmap'd chunks were live at once", s.max_regions);
  if (s.max_bytes < before.hblkhd || s.max_bytes < mmap_size(MiB) + mmap_size(2 * MiB) + mmap_size(300 * 1024))
    FAIL("malloc_stats: max mmap bytes %zu is below the mmap'd bytes that were live at once", s.max_bytes);
}

/* ---------- malloc_info ---------- */

struct heap_rep {
  size_t fast_count, fast_size, rest_count, rest_size, sys_cur, sys_max, as_total, as_mprotect;
  int has_subheaps;
  size_t subheaps;
  size_t sizes_fast_count, sizes_fast_total; /* sums of the fastbin <size> entries */
  size_t sizes_bin_count, sizes_bin_total;   /* of the other <size> and <unsorted> */
};
struct info_rep {
  int nheaps;
  struct heap_rep h[64];
  size_t t_fast_count, t_fast_size, t_rest_count, t_rest_size, t_mmap_count, t_mmap_size;
  size_t t_sys_cur, t_sys_max, t_as_total, t_as_mprotect;
};

/* sscanf of a whole line: the format must consume it all. */
#define LINE_IS(line, fmt, ...)                                                                    \
  ({                                                                                               \
    int n_ = -1;                                                                                   \
    sscanf(line, fmt "%n", __VA_ARGS__, &n_);                                                      \
    n_ >= 0 && (line)[n_] == 0;                                                                    \
  })

static char info_text[1 << 18];

static int parse_info(struct info_rep *r) {
  memset(r, 0, sizeof *r);
  char *lines[4096];
  int nl = 0;
  for (char *p = info_text; *p && nl < 4096;) {
    lines[nl++] = p;
    char *e = strchr(p, '\n');
    if (!e) {
      FAIL("malloc_info: the last line does not end with a newline");
      return 0;
    }
    *e = 0;
    p = e + 1;
  }
  int i = 0;
#define BAD(what)                                                                                  \
  do {                                                                                             \
    FAIL("malloc_info line %d: \"%s\": expected %s", i + 1, i < nl ? lines[i] : "(end)", what);  \
    return 0;                                                                                      \
  } while (0)
#define NEXT(fmt, ...)                                                                             \
  do {                                                                                             \
    if (i >= nl || !LINE_IS(lines[i], fmt, __VA_ARGS__)) BAD("'" fmt "'");                       \
    i++;                                                                                           \
  } while (0)
  if (i >= nl || strcmp(lines[i], "<malloc version=\"1\">") != 0) BAD("<malloc version=\"1\">");
  i++;
  int nr;
  while (i < nl && strncmp(lines[i], "<heap ", 6) == 0) {
    struct heap_rep *h = &r->h[r->nheaps < 63 ? r->nheaps : 63];
    NEXT("<heap nr=\"%d\">", &nr);
    if (nr != r->nheaps) {
      i--;
      BAD("the next heap number");
    }
    if (i >= nl || strcmp(lines[i], "<sizes>") != 0) BAD("<sizes>");
    i++;
    size_t from, to, total, count;
    int in_bins = 0, seen_unsorted = 0;
    while (i < nl && strcmp(lines[i], "</sizes>") != 0) {
      if (LINE_IS(lines[i], "  <size from=\"%zu\" to=\"%zu\" total=\"%zu\" count=\"%zu\"/>", &from,
                  &to, &total, &count)) {
        if (seen_unsorted) BAD("<unsorted> to be the last entry");
        if (count == 0) BAD("no entry for an empty bin");
        /* fastbin entries first: from = to - 15, total = count x to */
        if (!in_bins && to % 16 == 0 && from == to - 15 && total == count * to) {
          h->sizes_fast_count += count;
          h->sizes_fast_total += total;
        } else {
          in_bins = 1;
          if (from > to || total < count * from || total > count * to) BAD("from <= to, count x from <= total <= count x to");
          h->sizes_bin_count += count;
          h->sizes_bin_total += total;
        }
      } else if (LINE_IS(lines[i], "  <unsorted from=\"%zu\" to=\"%zu\" total=\"%zu\" count=\"%zu\"/>",
                         &from, &to, &total, &count)) {
        if (seen_unsorted || count == 0) BAD("one non-empty <unsorted> entry at most");
        seen_unsorted = 1;
        if (from > to || total < count * from || total > count * to) BAD("from <= to, count x from <= total <= count x to");
        h->sizes_bin_count += count;
        h->sizes_bin_total += total;
      } else {
        BAD("<size .../>, <unsorted .../> or </sizes>");
      }
      i++;
    }
    if (i >= nl) BAD("</sizes>");
    i++;
    NEXT("<total type=\"fast\" count=\"%zu\" size=\"%zu\"/>", &h->fast_count, &h->fast_size);
    NEXT("<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>", &h->rest_count, &h->rest_size);
    NEXT("<system type=\"current\" size=\"%zu\"/>", &h->sys_cur);
    NEXT("<system type=\"max\" size=\"%zu\"/>", &h->sys_max);
    NEXT("<aspace type=\"total\" size=\"%zu\"/>", &h->as_total);
    NEXT("<aspace type=\"mprotect\" size=\"%zu\"/>", &h->as_mprotect);
    if (i < nl && LINE_IS(lines[i], "<aspace type=\"subheaps\" size=\"%zu\"/>", &h->subheaps)) {
      h->has_subheaps = 1;
      i++;
    }
    if (i >= nl || strcmp(lines[i], "</heap>") != 0) BAD("</heap>");
    i++;
    if (r->nheaps < 63) r->nheaps++;
  }
  if (r->nheaps == 0) BAD("<heap nr=\"0\">");
  NEXT("<total type=\"fast\" count=\"%zu\" size=\"%zu\"/>", &r->t_fast_count, &r->t_fast_size);
  NEXT("<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>", &r->t_rest_count, &r->t_rest_size);
  NEXT("<total type=\"mmap\" count=\"%zu\" size=\"%zu\"/>", &r->t_mmap_count, &r->t_mmap_size);
  NEXT("<system type=\"current\" size=\"%zu\"/>", &r->t_sys_cur);
  NEXT("<system type=\"max\" size=\"%zu\"/>", &r->t_sys_max);
  NEXT("<aspace type=\"total\" size=\"%zu\"/>", &r->t_as_total);
  NEXT("<aspace type=\"mprotect\" size=\"%zu\"/>", &r->t_as_mprotect);
  if (i >= nl || strcmp(lines[i], "</malloc>") != 0) BAD("</malloc>");
  i++;
  if (i != nl) BAD("nothing after </malloc>");
#undef NEXT
#undef BAD
  return 1;
}

static char info_buf[1 << 17]; /* the FILE's own buffer: writes do not allocate */

static void check_info(int want_heaps) {
  int mfd = memfd_create("malloc_info", 0);
  FILE *fp = mfd >= 0 ? fdopen(mfd, "w+") : NULL;
  if (!fp) {
    FAIL("memfd_create/fdopen failed: %s", strerror(errno));
    return;
  }
  setvbuf(fp, info_buf, _IOFBF, sizeof info_buf);
  /* options != 0: EINVAL, nothing written */
  int rc = malloc_info(1, fp);
  if (rc != EINVAL) FAIL("malloc_info(1, fp) returned %d, glibc returns EINVAL (%d)", rc, EINVAL);
  fflush(fp);
  if (slurp_fd(mfd) != 0) FAIL("malloc_info(1, fp) wrote \"%.80s\"", textbuf);
  struct mallinfo2 m = mallinfo2();
  rc = malloc_info(0, fp);
  struct mallinfo2 after = mallinfo2();
  fflush(fp);
  if (rc != 0) FAIL("malloc_info(0, fp) returned %d", rc);
  if (!same_info(&m, &after)) FAIL("malloc_info changed the heap (mallinfo2 differs before and after)");
  slurp_fd(mfd);
  fclose(fp);
  memcpy(info_text, textbuf, sizeof info_text - 1);
  info_text[sizeof info_text - 1] = 0;
  static struct info_rep r;
  if (!parse_info(&r)) {
    fprintf(stderr, "%s", info_text);
    return;
  }
  if (r.nheaps != want_heaps)
    FAIL("malloc_info has %d <heap> elements, expected %d (one per arena)", r.nheaps, want_heaps);
  size_t s_fc = 0, s_fs = 0, s_rc = 0, s_rs = 0, s_sc = 0, s_sm = 0, s_at = 0, s_am = 0;
  for (int k = 0; k < r.nheaps; k++) {
    struct heap_rep *h = &r.h[k];
    if (h->has_subheaps != (k != 0))
      FAIL("malloc_info heap %d: <aspace type=\"subheaps\"> %s; glibc prints it for thread arenas only",
           k, h->has_subheaps ? "present" : "missing");
    if (k != 0 && h->subheaps < 1) FAIL("malloc_info heap %d: %zu subheaps", k, h->subheaps);
    if (h->sizes_fast_count != h->fast_count || h->sizes_fast_total != h->fast_size)
      FAIL("malloc_info heap %d: fastbin <size> entries sum to %zu chunks / %zu bytes, <total "
           "type=\"fast\"> says %zu / %zu",
           k, h->sizes_fast_count, h->sizes_fast_total, h->fast_count, h->fast_size);
    if (h->sizes_bin_count + 1 != h->rest_count)
      FAIL("malloc_info heap %d: bin entries count %zu chunks, rest count is %zu (expected + 1 for "
           "the top)",
           k, h->sizes_bin_count, h->rest_count);
    if (h->sizes_bin_total >= h->rest_size)
      FAIL("malloc_info heap %d: bin entries total %zu >= rest size %zu (which includes the top)", k,
           h->sizes_bin_total, h->rest_size);
    if (k == 0 && h->rest_size - h->sizes_bin_total != m.keepcost)
      FAIL("malloc_info heap 0: rest size %zu - bin entries %zu = %zu, expected the top chunk "
           "(keepcost %zu)",
           h->rest_size, h->sizes_bin_total, h->rest_size - h->sizes_bin_total, m.keepcost);
    if (h->sys_max < h->sys_cur) FAIL("malloc_info heap %d: system max %zu < current %zu", k, h->sys_max, h->sys_cur);
    if (h->as_total != h->sys_cur)
      FAIL("malloc_info heap %d: aspace total %zu != system current %zu", k, h->as_total, h->sys_cur);
    if (k == 0 ? h->as_mprotect != h->sys_cur : h->as_mprotect < h->as_total)
      FAIL("malloc_info heap %d: aspace mprotect %zu (total %zu)", k, h->as_mprotect, h->as_total);
    s_fc += h->fast_count;
    s_fs += h->fast_size;
    s_rc += h->rest_count;
    s_rs += h->rest_size;
    s_sc += h->sys_cur;
    s_sm += h->sys_max;
    s_at += h->as_total;
    s_am += h->as_mprotect;
  }
  if (s_fc != r.t_fast_count || s_fs != r.t_fast_size || s_rc != r.t_rest_count || s_rs != r.t_rest_size ||
      s_sc != r.t_sys_cur || s_sm != r.t_sys_max || s_at != r.t_as_total || s_am != r.t_as_mprotect)
    FAIL("malloc_info: the totals are not the sums of the heaps");
  /* ...and agree with mallinfo2. */
  if (r.t_fast_count != m.smblks || r.t_fast_size != m.fsmblks)
    FAIL("malloc_info fast %zu/%zu, mallinfo2 smblks/fsmblks %zu/%zu", r.t_fast_count, r.t_fast_size,
         m.smblks, m.fsmblks);
  if (r.t_rest_count != m.ordblks)
    FAIL("malloc_info rest count %zu, mallinfo2 ordblks %zu", r.t_rest_count, m.ordblks);
  if (r.t_mmap_count != m.hblks || r.t_mmap_size != m.hblkhd)
    FAIL("malloc_info mmap %zu/%zu, mallinfo2 hblks/hblkhd %zu/%zu", r.t_mmap_count, r.t_mmap_size,
         m.hblks, m.hblkhd);
  if (r.t_sys_cur != m.arena) FAIL("malloc_info system current %zu, mallinfo2 arena %zu", r.t_sys_cur, m.arena);
  /* glibc's quirk: bin chunks counted with their PREV_INUSE bit. */
  size_t bin_chunks = r.t_rest_count - (size_t)r.nheaps;
  if (r.t_fast_size + r.t_rest_size - bin_chunks != m.fordblks)
    FAIL("malloc_info fast size %zu + rest size %zu - %zu bin chunks (glibc adds each one's "
         "PREV_INUSE bit) = %zu, mallinfo2 fordblks %zu",
         r.t_fast_size, r.t_rest_size, bin_chunks, r.t_fast_size + r.t_rest_size - bin_chunks,
         m.fordblks);
}

/* ---------- mallinfo() ---------- */

static void check_mallinfo_int(void) {
  struct mallinfo2 m2 = mallinfo2();
  struct mallinfo m = mallinfo();
  if (m.arena != (int)m2.arena || m.ordblks != (int)m2.ordblks || m.smblks != (int)m2.smblks ||
      m.hblks != (int)m2.hblks || m.hblkhd != (int)m2.hblkhd || m.usmblks != (int)m2.usmblks ||
      m.fsmblks != (int)m2.fsmblks || m.uordblks != (int)m2.uordblks ||
      m.fordblks != (int)m2.fordblks || m.keepcost != (int)m2.keepcost)
    FAIL("mallinfo() {%d %d %d %d %d %d %d %d %d %d} is not mallinfo2() {%zu %zu %zu %zu %zu %zu "
         "%zu %zu %zu %zu} as int",
         m.arena, m.ordblks, m.smblks, m.hblks, m.hblkhd, m.usmblks, m.fsmblks, m.uordblks,
         m.fordblks, m.keepcost, m2.arena, m2.ordblks, m2.smblks, m2.hblks, m2.hblkhd, m2.usmblks,
         m2.fsmblks, m2.uordblks, m2.fordblks, m2.keepcost);
}

/* ---------- threads ---------- */

#define NT 3
static pthread_barrier_t ready, done;

static void *thread_fn(void *arg) {
  long t = (long)arg;
  void *big[12], *small[40];
  for (int i = 0; i < 12; i++) {
    big[i] = malloc(1500 + 100 * t + 16 * i);
    memset(big[i], (int)t, 1500);
  }
  for (int i = 0; i < 40; i++) small[i] = malloc(50);
  for (int i = 0; i < 12; i += 2) free(big[i]); /* into the bins */
  for (int i = 0; i < 40; i++) free(small[i]);  /* past the tcache into fastbins */
  pthread_barrier_wait(&ready);
  pthread_barrier_wait(&done); /* the main thread reports meanwhile */
  for (int i = 1; i < 12; i += 2) free(big[i]);
  return NULL;
}

int main(void) {
  uintptr_t heap_start = 0;
  /* ---- a known sequence in the main arena ---- */
  enum { N = 40 };
  void *blk[N];
  size_t sz[N];
  for (int i = 0; i < N; i++) {
    sz[i] = 1100 + 37 * (size_t)i; /* above the tcache range */
    blk[i] = malloc(sz[i]);
    if (!blk[i]) {
      FAIL("malloc(%zu) failed", sz[i]);
      return test_finish();
    }
    memset(blk[i], i, sz[i]);
    if (chunk_size(blk[i]) != req2size(sz[i]))
      FAIL("malloc(%zu): chunk size %zu, expected %zu", sz[i], chunk_size(blk[i]), req2size(sz[i]));
  }
  void *guard = malloc(3000); /* the last chunk carved from the top */
  heap_start = heap_mapping_start();
  struct mallinfo2 m0 = mallinfo2();
  check_identity(&m0, "after the allocations");
  uintptr_t guard_end = (uintptr_t)guard - 16 + chunk_size(guard);
  if (m0.keepcost != brk_now() - guard_end)
    FAIL("keepcost %zu, but the top chunk (break %#lx - end of the last block %#lx) is %zu bytes",
         m0.keepcost, (unsigned long)brk_now(), (unsigned long)guard_end, (size_t)(brk_now() - guard_end));
  if (heap_start && m0.arena != brk_now() - heap_start)
    FAIL("mallinfo2().arena %zu, but the heap spans %zu bytes ([heap] start %#lx to the break)",
         m0.arena, (size_t)(brk_now() - heap_start), (unsigned long)heap_start);
  if (m0.hblks != 0 || m0.hblkhd != 0) FAIL("hblks %zu hblkhd %zu before any mmap'd block", m0.hblks, m0.hblkhd);

  /* free every other block: 20 separated free chunks */
  size_t freed = 0;
  for (int i = 0; i < N; i += 2) {
    freed += req2size(sz[i]);
    free(blk[i]);
  }
  struct mallinfo2 m1 = mallinfo2();
  check_identity(&m1, "after 20 frees");
  if (m1.fordblks - m0.fordblks != freed)
    FAIL("fordblks grew by %zu after freeing 20 chunks of %zu bytes in all", m1.fordblks - m0.fordblks, freed);
  if (m1.uordblks != m0.uordblks - freed)
    FAIL("uordblks went from %zu to %zu after freeing %zu bytes", m0.uordblks, m1.uordblks, freed);
  if (m1.ordblks != m0.ordblks + 20)
    FAIL("ordblks went from %zu to %zu after freeing 20 separated chunks", m0.ordblks, m1.ordblks);
  if (m1.arena != m0.arena || m1.keepcost != m0.keepcost || m1.smblks != m0.smblks)
    FAIL("arena, keepcost or smblks changed by frees in the middle of the heap");

  /* fastbins: 40 x 40 bytes (chunk 48, though a split may hand out a
   * slightly bigger chunk), freed past the tcache: with a tcache of t per
   * bin (7 in glibc, 16 in ptmalloc-rs), the chunks of size s beyond the
   * first t freed go to fastbins. */
  void *sm[40];
  size_t smsz[40];
  for (int i = 0; i < 40; i++) {
    sm[i] = malloc(40);
    smsz[i] = chunk_size(sm[i]);
  }
  struct mallinfo2 m2 = mallinfo2();
  for (int i = 0; i < 40; i++) free(sm[i]);
  struct mallinfo2 m3 = mallinfo2();
  check_identity(&m3, "after the small frees");
  size_t d = m3.smblks - m2.smblks, dbytes = m3.fsmblks - m2.fsmblks;
  int matched = 0;
  for (int t = 7; t <= 16 && !matched; t++) {
    size_t n = 0, bytes = 0;
    for (int i = 0; i < 40; i++) {
      int before = 0; /* chunks of the same size freed earlier */
      for (int j = 0; j < i; j++) before += smsz[j] == smsz[i];
      if (before >= t && smsz[i] <= 128) n++, bytes += smsz[i];
    }
    matched = n == d && bytes == dbytes;
  }
  if (!matched)
    FAIL("freeing 40 chunks of about 48 bytes added %zu fastbin chunks of %zu bytes in all "
         "(smblks/fsmblks); no tcache count from 7 to 16 gives that",
         d, dbytes);
  if (m3.fordblks - m2.fordblks != dbytes)
    FAIL("fordblks grew by %zu for %zu bytes of fastbin chunks", m3.fordblks - m2.fordblks, dbytes);
  if (m3.ordblks != m2.ordblks) FAIL("ordblks changed (%zu -> %zu) by fastbin frees", m2.ordblks, m3.ordblks);

  /* mmap'd blocks: three at once, one freed later */
  size_t msz[3] = {300 * 1024, 1 * MiB, 2 * MiB};
  void *mm[3];
  size_t msum = 0;
  for (int i = 0; i < 3; i++) {
    mm[i] = malloc(msz[i]);
    if (!mm[i] || !(size_word(mm[i]) & IS_MMAPPED)) {
      FAIL("malloc(%zu) failed or was not mmap'd", msz[i]);
      return test_finish();
    }
    if (chunk_size(mm[i]) != mmap_size(msz[i]))
      FAIL("mmap'd block of %zu: chunk size %zu, expected %zu", msz[i], chunk_size(mm[i]), mmap_size(msz[i]));
    msum += chunk_size(mm[i]);
  }
  struct mallinfo2 m4 = mallinfo2();
  check_identity(&m4, "with 3 mmap'd blocks");
  if (m4.hblks != 3 || m4.hblkhd != msum)
    FAIL("with 3 mmap'd blocks of %zu bytes in all: hblks %zu, hblkhd %zu", msum, m4.hblks, m4.hblkhd);
  if (m4.arena != m3.arena || m4.uordblks != m3.uordblks)
    FAIL("mmap'd blocks changed arena/uordblks (%zu/%zu -> %zu/%zu)", m3.arena, m3.uordblks, m4.arena,
         m4.uordblks);
  free(mm[0]);
  struct mallinfo2 m5 = mallinfo2();
  if (m5.hblks != 2 || m5.hblkhd != msum - mmap_size(msz[0]))
    FAIL("after freeing one mmap'd block: hblks %zu, hblkhd %zu (expected 2, %zu)", m5.hblks, m5.hblkhd,
         msum - mmap_size(msz[0]));

  check_mallinfo_int();
  check_stats(1);
  check_info(1);

  /* ---- threads: 4 arenas ---- */
  pthread_barrier_init(&ready, NULL, NT + 1);
  pthread_barrier_init(&done, NULL, NT + 1);
  pthread_t th[NT];
  for (long t = 0; t < NT; t++)
    if (pthread_create(&th[t], NULL, thread_fn, (void *)t) != 0) {
      FAIL("pthread_create failed");
      return test_finish();
    }
  pthread_barrier_wait(&ready);
  struct mallinfo2 m6 = mallinfo2();
  check_identity(&m6, "with 3 thread arenas");
  if (m6.smblks < 3 * (40 - 16)) FAIL("with 3 threads' fastbin frees, smblks is %zu", m6.smblks);
  if (m6.ordblks < 4 + 3 * 6) FAIL("ordblks %zu: expected at least 4 tops and 18 bin chunks", m6.ordblks);
  check_mallinfo_int();
  check_stats(4);
  check_info(4);
  pthread_barrier_wait(&done);
  for (int t = 0; t < NT; t++) pthread_join(th[t], NULL);

  /* the live blocks are intact */
  for (int i = 1; i < N; i += 2)
    if (first_byte_not(blk[i], sz[i], (unsigned char)i) != ALL_GOOD) FAIL("block %d changed", i);
  for (int i = 1; i < N; i += 2) free(blk[i]);
  free(guard);
  free(mm[1]);
  free(mm[2]);
  printf(TEST_NAME ": arena %zu, %zu free chunks, %zu fastbin chunks, %zu mmap'd\n", m5.arena, m5.ordblks,
         m5.smblks, m5.hblks);
  test_expect_reuse();
  return test_finish();
}
