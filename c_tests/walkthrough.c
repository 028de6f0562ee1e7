/*
 * walkthrough.c -- the classic per-thread arena walkthrough of ptmalloc2.
 *
 * The program pauses at six points (plus two extra ones for the mmap
 * threshold) so that a person can read /proc/PID/maps in another terminal:
 *
 *   stage 1  main thread, before any malloc          no [heap] yet
 *   stage 2  main thread, after malloc(1000)         [heap] appears, rw-p, 0x21000 bytes
 *   stage 3  main thread, after free                 unchanged: the chunk goes to a bin
 *   stage 4  second thread, before its malloc(1000)  an 8 MiB thread stack + 4 KiB guard
 *   stage 5  second thread, after malloc(1000)       a 64 MiB-aligned thread heap:
 *                                                    0x21000 rw-p + the rest ---p = 64 MiB
 *   stage 6  second thread, after free               unchanged
 *   stage 7  main thread, after malloc(200000)       its own mmap (>= 128 KiB mmap threshold)
 *   stage 8  main thread, after that free            the mapping is gone (munmap)
 *
 * Two modes:
 *
 *   walkthrough --interactive
 *       prints its PID and one "[stage N] ..." line per stage on stdout, then
 *       waits for a line on stdin (EOF: does not wait).  scripts/walkthrough
 *       drives it and prints the maps and strace of each stage.
 *
 *   walkthrough            (the test; scripts/run-tests runs it with stdin = /dev/null)
 *       reads /proc/self/maps at each stage and checks the shapes above that
 *       glibc 2.36 shows on x86_64.  Exit 0 when they all hold; otherwise it
 *       says what it expected and prints the relevant maps lines.
 *
 * Why no stdio anywhere: the first printf/fgets on a stream mallocs the
 * stream's buffer, which would create [heap] before stage 1 (or move the
 * numbers of stage 2).  Every line is formatted with snprintf into a stack
 * buffer and written with write(2); stdin is read with read(2); the maps are
 * read with open/read into a static buffer.  snprintf with these simple
 * conversions does not allocate in glibc.
 *
 * Why the pointers are stored in volatile globals: GCC may delete a
 * malloc/free pair whose result is never used.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SMALL_REQUEST 1000
#define MMAP_REQUEST 200000        /* above the 128 KiB initial mmap threshold */
#define FIRST_HEAP_GROWTH 0x21000UL /* request + 128 KiB top pad, page-rounded */
#define HEAP_MAX_SIZE (64UL << 20)  /* a thread heap: 64 MiB, 64 MiB-aligned */

static int interactive;
static int failures;

static void *volatile main_ptr;
static void *volatile thread_ptr;
static void *volatile big_ptr;

/* ---------- output without stdio ---------- */

static void write_all(int fd, const char *s, size_t n)
{
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return;
    }
    s += w;
    n -= (size_t)w;
  }
}

/* Formats into a stack buffer (vsnprintf with these conversions does not
 * allocate) and writes prefix and the text to fd. */
__attribute__((format(printf, 3, 0))) static void vsay_fd(int fd, const char *prefix,
                                                         const char *fmt, va_list ap)
{
  char buf[1024];
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  if (n < 0)
    return;
  if ((size_t)n >= sizeof buf)
    n = sizeof buf - 1;
  write_all(fd, prefix, strlen(prefix));
  write_all(fd, buf, (size_t)n);
}

__attribute__((format(printf, 2, 3))) static void say_fd(int fd, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsay_fd(fd, "", fmt, ap);
  va_end(ap);
}

#define say(...) say_fd(1, __VA_ARGS__)

__attribute__((format(printf, 1, 2))) static void fail(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsay_fd(1, "FAIL: ", fmt, ap);
  va_end(ap);
  failures++;
}

/* ---------- /proc/self/maps without malloc ---------- */

static char maps_buf[64 * 1024];
static size_t maps_len;

static void read_maps(void)
{
  maps_len = 0;
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    fail("cannot open /proc/self/maps: errno %d\n", errno);
    return;
  }
  for (;;) {
    if (maps_len >= sizeof maps_buf - 1) {
      fail("/proc/self/maps is larger than %zu bytes\n", sizeof maps_buf);
      break;
    }
    ssize_t r = read(fd, maps_buf + maps_len, sizeof maps_buf - 1 - maps_len);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    maps_len += (size_t)r;
  }
  close(fd);
  maps_buf[maps_len] = '\0';
}

struct mapping {
  int found;
  uintptr_t start, end;
  char perms[5];
  char line[256]; /* the whole line, without the newline */
};

/* Parse one maps line starting at s (ending at '\n' or '\0'). */
static void parse_line(const char *s, struct mapping *m)
{
  const char *eol = strchr(s, '\n');
  size_t n = eol ? (size_t)(eol - s) : strlen(s);
  if (n >= sizeof m->line)
    n = sizeof m->line - 1;
  while (n > 0 && s[n - 1] == ' ')
    n--;
  memcpy(m->line, s, n);
  m->line[n] = '\0';
  char *p;
  m->start = (uintptr_t)strtoull(m->line, &p, 16);
  m->end = (uintptr_t)strtoull(p + 1, &p, 16);
  memcpy(m->perms, p + 1, 4);
  m->perms[4] = '\0';
  m->found = 1;
}

/* Iterate the lines of maps_buf: returns the next line start or NULL. */
static const char *next_line(const char *s)
{
  if (s == NULL)
    return maps_len ? maps_buf : NULL;
  const char *eol = strchr(s, '\n');
  if (eol == NULL || eol[1] == '\0')
    return NULL;
  return eol + 1;
}

static int line_has(const char *line, const char *needle)
{
  const char *eol = strchr(line, '\n');
  size_t n = eol ? (size_t)(eol - line) : strlen(line);
  size_t k = strlen(needle);
  for (size_t i = 0; i + k <= n; i++)
    if (memcmp(line + i, needle, k) == 0)
      return 1;
  return 0;
}

static struct mapping find_named(const char *name)
{
  struct mapping m = {0};
  for (const char *l = next_line(NULL); l; l = next_line(l))
    if (line_has(l, name)) {
      parse_line(l, &m);
      break;
    }
  return m;
}

static struct mapping find_containing(uintptr_t addr)
{
  struct mapping m = {0};
  for (const char *l = next_line(NULL); l; l = next_line(l)) {
    struct mapping t;
    parse_line(l, &t);
    if (t.start <= addr && addr < t.end) {
      m = t;
      break;
    }
  }
  return m;
}

__attribute__((unused)) static struct mapping find_starting_at(uintptr_t addr)
{
  struct mapping m = {0};
  for (const char *l = next_line(NULL); l; l = next_line(l)) {
    struct mapping t;
    parse_line(l, &t);
    if (t.start == addr) {
      m = t;
      break;
    }
  }
  return m;
}

/* Is the mapping anonymous (no path, not [heap]/[stack]/...)? */
static int is_anonymous(const struct mapping *m)
{
  /* fields: range perms offset dev inode [path] */
  const char *p = m->line;
  for (int field = 0; field < 5; field++) {
    while (*p && *p != ' ')
      p++;
    while (*p == ' ')
      p++;
  }
  return *p == '\0';
}

static void print_maps_lines_around(uintptr_t addr)
{
  say("  maps lines ([heap], anonymous, and the one holding %#lx):\n", (unsigned long)addr);
  for (const char *l = next_line(NULL); l; l = next_line(l)) {
    struct mapping t;
    parse_line(l, &t);
    if (line_has(l, "[heap]") || is_anonymous(&t) || (t.start <= addr && addr < t.end))
      say("    %s\n", t.line);
  }
}

static void print_all_maps(void)
{
  say("  /proc/self/maps:\n");
  for (const char *l = next_line(NULL); l; l = next_line(l)) {
    struct mapping t;
    parse_line(l, &t);
    say("    %s\n", t.line);
  }
}

/* ---------- stages ---------- */

static void stage(int n, const char *what)
{
  say("[stage %d] %s\n", n, what);
  if (!interactive)
    return;
  if (isatty(0))
    say_fd(2, "(press Enter to continue)\n");
  /* One read(2) per stage: a terminal in canonical mode returns one line, and
   * scripts/walkthrough sends one "\n" per stage.  EOF: do not wait. */
  char buf[64];
  ssize_t r;
  do
    r = read(0, buf, sizeof buf);
  while (r < 0 && errno == EINTR);
}

static size_t heap_size_at_stage1;
static int heap_at_stage1;
static struct mapping heap_at_stage2;

static void check_stage1(void)
{
  read_maps();
  struct mapping h = find_named("[heap]");
  if (h.found) {
    heap_at_stage1 = 1;
    heap_size_at_stage1 = h.end - h.start;
    say("  stage 1: a [heap] already exists before the first malloc (%#zx bytes): %s\n",
        heap_size_at_stage1, h.line);
  } else {
    say("  stage 1: no [heap] yet: ok\n");
  }
  const char *expect = getenv("PTMALLOC_RS_EXPECT_PRELOAD"); /* getenv does not allocate */
  if (expect && *expect && strcmp(expect, "0") != 0) {
    if (!find_named("libptmalloc_rs.so").found) {
      fail("PTMALLOC_RS_EXPECT_PRELOAD is set but libptmalloc_rs.so is not mapped\n");
      print_all_maps();
    } else {
      say("  libptmalloc_rs.so is mapped: the preload is active\n");
    }
  }
}

static void check_stage2(void)
{
  uintptr_t p = (uintptr_t)main_ptr;
  read_maps();
  struct mapping h = find_named("[heap]");
  heap_at_stage2 = h;
  if (p == 0) {
    fail("stage 2: malloc(%d) returned NULL\n", SMALL_REQUEST);
    return;
  }
  if (p % 16 != 0)
    fail("stage 2: malloc(%d) = %#lx is not 16-byte aligned\n", SMALL_REQUEST, (unsigned long)p);
  if (!h.found) {
    fail("stage 2: expected a [heap] mapping after malloc(%d) (the main arena grows the "
         "program break with brk), found none; p = %#lx\n",
         SMALL_REQUEST, (unsigned long)p);
    print_maps_lines_around(p);
    return;
  }
  size_t size = h.end - h.start;
  size_t before = heap_at_stage1 ? heap_size_at_stage1 : 0;
  int ok = 1;
  if (strcmp(h.perms, "rw-p") != 0) {
    fail("stage 2: expected [heap] to be rw-p, it is %s\n", h.perms);
    ok = 0;
  }
  if (!(h.start <= p && p + SMALL_REQUEST <= h.end)) {
    fail("stage 2: expected malloc(%d) = %#lx to lie inside [heap] %#lx-%#lx\n", SMALL_REQUEST,
         (unsigned long)p, (unsigned long)h.start, (unsigned long)h.end);
    ok = 0;
  }
  if (size - before != FIRST_HEAP_GROWTH) {
    fail("stage 2: expected [heap] to grow by exactly %#lx bytes (1000 bytes + 128 KiB top pad, "
         "page-rounded), it grew by %#zx (size %#zx at stage 1, %#zx now)\n",
         FIRST_HEAP_GROWTH, size - before, before, size);
    ok = 0;
  }
  if (ok)
    say("  stage 2: %s\n  stage 2: [heap] is rw-p, %#zx bytes (grew by %#lx), holds p = %#lx: ok\n",
        h.line, size, FIRST_HEAP_GROWTH, (unsigned long)p);
  else
    print_maps_lines_around(p);
}

static void check_stage3(void)
{
  read_maps();
  struct mapping h = find_named("[heap]");
  if (!heap_at_stage2.found)
    return; /* already reported */
  if (!h.found || strcmp(h.line, heap_at_stage2.line) != 0) {
    fail("stage 3: expected [heap] unchanged by free (the chunk goes to a bin, nothing goes back "
         "to the kernel)\n    stage 2: %s\n    stage 3: %s\n",
         heap_at_stage2.line, h.found ? h.line : "(no [heap])");
    print_maps_lines_around((uintptr_t)heap_at_stage2.start);
  } else {
    say("  stage 3: [heap] unchanged by free: ok\n");
  }
}

/* ---------- the thread's stages ---------- */

/*
 * The thread heap assertions (glibc 2.36, x86_64): the thread's first malloc
 * creates an arena in a new heap of HEAP_MAX_SIZE = 64 MiB, aligned to 64 MiB
 * (reserved PROT_NONE, trimmed to the aligned half), of which the first
 * 0x21000 bytes are made read-write; the chunk carries NON_MAIN_ARENA.
 */
static struct mapping thread_heap_rw, thread_heap_none;

static void check_thread_heap_stage5(uintptr_t p)
{
  read_maps();
  struct mapping rw = find_containing(p);
  uintptr_t base = p & ~(HEAP_MAX_SIZE - 1);
  int ok = 1;
  if (!rw.found) {
    fail("stage 5: no mapping holds the thread's pointer %#lx\n", (unsigned long)p);
    print_maps_lines_around(p);
    return;
  }
  if (!is_anonymous(&rw) || strcmp(rw.perms, "rw-p") != 0) {
    fail("stage 5: expected the thread's chunk in an anonymous rw-p mapping: %s\n", rw.line);
    ok = 0;
  }
  if (rw.start != base) {
    fail("stage 5: expected the thread heap to start on a 64 MiB boundary (%#lx), it starts at "
         "%#lx\n",
         (unsigned long)base, (unsigned long)rw.start);
    ok = 0;
  }
  if (rw.end - rw.start != FIRST_HEAP_GROWTH) {
    fail("stage 5: expected the read-write part of the thread heap to be %#lx bytes, it is %#lx\n",
         FIRST_HEAP_GROWTH, (unsigned long)(rw.end - rw.start));
    ok = 0;
  }
  struct mapping none = find_starting_at(rw.end);
  if (!none.found || !is_anonymous(&none) || strcmp(none.perms, "---p") != 0 ||
      none.end != rw.start + HEAP_MAX_SIZE) {
    fail("stage 5: expected an anonymous ---p mapping from %#lx to %#lx (the rest of the 64 MiB "
         "heap), found: %s\n",
         (unsigned long)rw.end, (unsigned long)(rw.start + HEAP_MAX_SIZE),
         none.found ? none.line : "(nothing)");
    ok = 0;
  }
  size_t size_word = ((size_t *)p)[-1];
  if (!(size_word & 0x4)) {
    fail("stage 5: expected the thread's chunk to have NON_MAIN_ARENA (0x4) in its size word "
         "%#zx\n",
         size_word);
    ok = 0;
  }
  if (ok)
    say("  stage 5: thread heap %#lx-%#lx rw-p + %#lx-%#lx ---p = 64 MiB, 64 MiB-aligned, "
        "NON_MAIN_ARENA set: ok\n",
        (unsigned long)rw.start, (unsigned long)rw.end, (unsigned long)none.start,
        (unsigned long)none.end);
  else
    print_maps_lines_around(p);
  thread_heap_rw = rw;
  thread_heap_none = none;
}

static void check_thread_heap_stage6(void)
{
  if (!thread_heap_rw.found)
    return;
  read_maps();
  struct mapping rw = find_starting_at(thread_heap_rw.start);
  struct mapping none = find_starting_at(thread_heap_none.start);
  if (!rw.found || strcmp(rw.line, thread_heap_rw.line) != 0 || !none.found ||
      strcmp(none.line, thread_heap_none.line) != 0) {
    fail("stage 6: expected the thread heap unchanged by free\n    stage 5: %s\n             %s\n"
         "    stage 6: %s\n             %s\n",
         thread_heap_rw.line, thread_heap_none.line, rw.found ? rw.line : "(gone)",
         none.found ? none.line : "(gone)");
  } else {
    say("  stage 6: thread heap unchanged by free: ok\n");
  }
}

static void *thread_main(void *arg)
{
  (void)arg;
  stage(4, "In a second thread, before its malloc");
  void *p = malloc(SMALL_REQUEST);
  thread_ptr = p;
  say("    thread: malloc(%d) = %p\n", SMALL_REQUEST, p);
  if (!interactive) {
    if (p == NULL) {
      fail("stage 5: the thread's malloc(%d) returned NULL\n", SMALL_REQUEST);
    } else if ((uintptr_t)p % 16 != 0) {
      fail("stage 5: the thread's malloc(%d) = %p is not 16-byte aligned\n", SMALL_REQUEST, p);
    } else {
      /* usable: write every byte, read it back */
      memset(p, 0x5a, SMALL_REQUEST);
      const volatile unsigned char *c = p;
      int bad = 0;
      for (int i = 0; i < SMALL_REQUEST; i++)
        bad |= c[i] != 0x5a;
      if (bad)
        fail("stage 5: the thread's block %p does not hold what was written\n", p);
      else
        say("  stage 5: the thread's malloc(%d) = %p is 16-byte aligned and usable: ok\n",
            SMALL_REQUEST, p);
    }
    /* Per-thread arena: the chunk must lie in a new anonymous 64 MiB-aligned
     * heap, 0x21000 bytes rw-p followed by ---p up to 64 MiB, and carry
     * NON_MAIN_ARENA. */
    if (p != NULL)
      check_thread_heap_stage5((uintptr_t)p);
  }
  stage(5, "In the second thread, after malloc(1000)");
  free(p);
  if (!interactive)
    say("  stage 6: the thread's free returned\n");
  if (!interactive)
    check_thread_heap_stage6();
  stage(6, "In the second thread, after free");
  return NULL;
}

/* ---------- the mmap threshold ---------- */

static struct mapping big_mapping;

static void check_stage7(void)
{
  uintptr_t q = (uintptr_t)big_ptr;
  if (q == 0) {
    fail("stage 7: malloc(%d) returned NULL\n", MMAP_REQUEST);
    return;
  }
  read_maps();
  struct mapping m = find_containing(q);
  /* chunk = request + 8 rounded to 16; mapping = chunk + 8 rounded to pages;
   * the pointer is 16 bytes into the mapping (prev_size and size words). */
  size_t chunk = ((size_t)MMAP_REQUEST + 8 + 15) & ~(size_t)15;
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  size_t expect = (chunk + 8 + page - 1) & ~(page - 1);
  int ok = 1;
  if (!m.found) {
    fail("stage 7: no mapping holds malloc(%d) = %#lx\n", MMAP_REQUEST, (unsigned long)q);
    print_maps_lines_around(q);
    return;
  }
  if (line_has(m.line, "[heap]")) {
    fail("stage 7: expected malloc(%d) (>= the 128 KiB mmap threshold) outside [heap], got "
         "%#lx in %s\n",
         MMAP_REQUEST, (unsigned long)q, m.line);
    ok = 0;
  } else {
    /* The kernel may merge the new mapping with an adjacent anonymous one, so
     * only check that the chunk starts 16 bytes into a page, spans the
     * expected length, and carries IS_MMAPPED. */
    if (strcmp(m.perms, "rw-p") != 0 || !is_anonymous(&m)) {
      fail("stage 7: expected an anonymous rw-p mapping for the mmap'd chunk: %s\n", m.line);
      ok = 0;
    }
    if ((q & (page - 1)) != 16 || q - 16 + expect > m.end) {
      fail("stage 7: expected malloc(%d) = %#lx to be 16 bytes into its own %#zx-byte mapping\n",
           MMAP_REQUEST, (unsigned long)q, expect);
      ok = 0;
    }
    size_t size_word = ((size_t *)q)[-1];
    if ((size_word & ~(size_t)7) != expect || !(size_word & 0x2)) {
      fail("stage 7: expected the mmap'd chunk's size word to be %#zx|IS_MMAPPED, it is %#zx\n",
           expect, size_word);
      ok = 0;
    }
  }
  if (ok)
    say("  stage 7: malloc(%d) = %#lx is in its own mapping (%s), %#zx bytes, IS_MMAPPED: ok\n",
        MMAP_REQUEST, (unsigned long)q, m.line, expect);
  else
    print_maps_lines_around(q);
  big_mapping = m;
}

static void check_stage8(uintptr_t q)
{
  if (!big_mapping.found)
    return;
  read_maps();
  /* munmap leaves nothing at the chunk's address (an adjacent anonymous
   * mapping the kernel had merged it with shrinks back). */
  struct mapping m = find_containing(q - 16);
  if (m.found) {
    fail("stage 8: expected free to munmap the mmap'd chunk at %#lx, the address is still "
         "mapped: %s\n",
         (unsigned long)q, m.line);
    print_maps_lines_around(q);
  } else {
    say("  stage 8: the mmap'd chunk was unmapped by free: ok\n");
  }
}

/* ---------- main ---------- */

/* That free works is shown at stage 8 (the mapping it must unmap is gone),
 * which a free that does nothing fails: the part testlib.h's
 * test_expect_reuse plays in the other tests (this program uses no stdio
 * and no testlib; see above). */
int main(int argc, char **argv)
{
  if (argc > 1 && strcmp(argv[1], "--interactive") == 0) {
    interactive = 1;
  } else if (argc > 1) {
    say_fd(2, "usage: %s [--interactive]\n", argv[0]);
    return 2;
  }

  say("PID: %d\n", (int)getpid());
  if (!interactive)
    check_stage1();
  stage(1, "Before malloc in main thread");

  void *p = malloc(SMALL_REQUEST);
  main_ptr = p;
  say("    main: malloc(%d) = %p\n", SMALL_REQUEST, p);
  if (!interactive)
    check_stage2();
  stage(2, "After malloc(1000) in main thread, before free");

  free(p);
  if (!interactive)
    check_stage3();
  stage(3, "After free in main thread");

  pthread_t t;
  int e = pthread_create(&t, NULL, thread_main, NULL);
  if (e != 0) {
    fail("pthread_create failed: %s\n", strerror(e));
    return 1;
  }
  pthread_join(t, NULL);

  void *q = malloc(MMAP_REQUEST);
  big_ptr = q;
  say("    main: malloc(%d) = %p\n", MMAP_REQUEST, q);
  if (!interactive)
    check_stage7();
  stage(7, "After malloc(200000) in main thread (above the 128 KiB mmap threshold)");

  free(q);
  if (!interactive)
    check_stage8((uintptr_t)big_ptr); /* a volatile read: the address only */
  stage(8, "After free of the 200000-byte block in main thread");

  if (interactive)
    return 0;
  if (failures) {
    say("walkthrough: %d check(s) failed\n", failures);
    return 1;
  }
  say("walkthrough: all checks passed\n");
  return 0;
}
