#!/usr/bin/env bash
# Not under the fast profile: it sets the profile itself.
# Our own settings (PTMALLOC_RS_*, and ptmalloc_rs.profile in
# GLIBC_TUNABLES), malformed, are said once on stderr, in one line naming
# the setting and what is done instead; well-formed ones, and glibc's own
# MALLOC_* and GLIBC_TUNABLES entries however malformed, print nothing (as
# glibc keeps them silent).
. "$(dirname "$0")/common.bash"

quiet() { # setting...
  local out
  out=$(env "$@" LD_PRELOAD="$LIB" /bin/true 2>&1 >/dev/null)
  if [ -z "$out" ]; then pass "silent: $*"; else fail "$* printed:"; printf '%s\n' "$out" | sed 's/^/  | /'; fi
}
one_line() { # ERE setting...
  local want=$1 out
  shift
  out=$(env "$@" LD_PRELOAD="$LIB" /bin/true 2>&1 >/dev/null | grep -v '^ptmalloc-rs heap dump' )
  if [ "$(printf '%s\n' "$out" | grep -c '^ptmalloc-rs: ')" = 1 ] && printf '%s\n' "$out" | grep -Eq "$want"; then
    pass "$*: $(printf '%s\n' "$out" | grep '^ptmalloc-rs: ')"
  else
    fail "$*: want one line matching /$want/, got:"; printf '%s\n' "$out" | sed 's/^/  | /'
  fi
}

quiet PTMALLOC_RS_PROFILE=hardened
quiet PTMALLOC_RS_PROFILE= PTMALLOC_RS_RECORD=
quiet GLIBC_TUNABLES=ptmalloc_rs.profile=fast
quiet PTMALLOC_RS_TRACE=0 PTMALLOC_RS_CHECK_HEAP=1 PTMALLOC_RS_DUMP_SIGNAL=USR1
quiet PTMALLOC_RS_DUMP_SIGNAL=12
quiet MALLOC_ARENA_MAX=lots MALLOC_TOP_PAD_=-5
quiet GLIBC_TUNABLES=glibc.malloc.nonsense=1:glibc.malloc.tcache_count=x

one_line '^ptmalloc-rs: PTMALLOC_RS_PROFILE=bogus: not a profile' PTMALLOC_RS_PROFILE=bogus
one_line '^ptmalloc-rs: GLIBC_TUNABLES=ptmalloc_rs.profile=quick: not a profile' GLIBC_TUNABLES=ptmalloc_rs.profile=quick
one_line '^ptmalloc-rs: PTMALLOC_RS_DUMP_SIGNAL=FOO: not a signal' PTMALLOC_RS_DUMP_SIGNAL=FOO
one_line '^ptmalloc-rs: PTMALLOC_RS_DUMP_SIGNAL=99: not a signal' PTMALLOC_RS_DUMP_SIGNAL=99
one_line '^ptmalloc-rs: PTMALLOC_RS_CHECK_HEAP=yes: expected 0 or 1; taken as 1' PTMALLOC_RS_CHECK_HEAP=yes
one_line '^ptmalloc-rs: PTMALLOC_RS_DUMP_AT_EXIT=true: expected 0 or 1; taken as 1' PTMALLOC_RS_DUMP_AT_EXIT=true
one_line '^ptmalloc-rs: PTMALLOC_RS_RECORD: a file name of at most 511 bytes' PTMALLOC_RS_RECORD="/tmp/$(printf 'x%.0s' {1..600})"
one_line '^ptmalloc-rs: PTMALLOC_RS_RECORD: cannot open /nonexistent/x.rec' PTMALLOC_RS_RECORD=/nonexistent/x.rec
finish
