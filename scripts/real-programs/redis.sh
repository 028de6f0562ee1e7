#!/usr/bin/env bash
# redis-server under glibc and under the preload.  Debian's redis-server is
# linked with jemalloc, whose malloc/calloc/realloc/free/malloc_usable_size
# the preload takes over (redis sizes its buffers by malloc_usable_size); its
# background thread frees what DEL/UNLINK/FLUSHALL ASYNC hand it (lazyfree).
# Only the server is preloaded; redis-cli and redis-benchmark run plainly.
# Each run starts its own server on 127.0.0.1 (a free port, no persistence:
# --save '' --appendonly no, DEBUG allowed) in a directory of its own, and:
#   1. loads a generated, fixed data set through redis-cli --pipe (~84k
#      commands: strings up to 300 KB, APPEND growth, SETRANGE/SETBIT to 1 MB,
#      hashes/sets/sorted sets/lists small and large, so both their compact
#      and their full encodings, streams, HyperLogLogs, DEL/UNLINK, RENAME,
#      COPY, *STORE, far-future expiries), then prints DBSIZE, INFO keyspace
#      (without avg_ttl), DEBUG DIGEST (a hash of the whole data set), the
#      count of keys per type and encoding (a Lua script), and the replies to
#      a fixed list of queries, among them a Lua script that builds and
#      cjson-encodes big tables;
#   2. DEBUG RELOAD (save to an RDB file, empty the data set, load it again)
#      and the digest again;
#   3. redis-benchmark, with fixed keys (no -r, whose keys are seeded by the
#      clock) and request counts that are multiples of the pipeline depth, so
#      the data set it leaves is the same every time: -d 16 (SET, GET, INCR,
#      LPUSH, RPUSH, LPOP, RPOP, SADD, HSET, SPOP, ZADD, ZPOPMIN, LRANGE_100,
#      MSET; 20,000 requests each, 20 clients, pipeline 10), -d 4096 and
#      -d 300000 (values served from mmap'd chunks); its timings are thrown
#      away, its exit status and the digest, DBSIZE and key lengths after it
#      are printed;
#   4. FLUSHALL ASYNC, DBSIZE, then SHUTDOWN NOSAVE: the server must exit with
#      status 0, and its log must have no crash report.
# All that is printed must be the same under glibc and under the preload.
# The servers are killed when the script exits, however it exits.
. "$(dirname "$0")/common.bash"

for t in redis-server redis-cli redis-benchmark; do
  command -v $t >/dev/null || { echo "$t is not installed (apt-get install redis-server redis-tools)"; exit 1; }
done
echo "$(redis-server --version)"

# Whatever happens, no server outlives the script.
stop_servers() {
  local f
  for f in "$WORK"/server-*/pid; do
    [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null
  done
}
trap 'stop_servers; rm -rf "$WORK"' EXIT

# load.resp: the data set, in the Redis protocol, made by a fixed 31-bit LCG.
awk '
function rnd() { seed = (seed * 1103515245 + 12345) % 2147483648; return int(seed / 256) }
function cmd(line,   n, a, i, s) {       # tab-separated arguments -> RESP
  n = split(line, a, "\t")
  s = "*" n "\r\n"
  for (i = 1; i <= n; i++) s = s "$" length(a[i]) "\r\n" a[i] "\r\n"
  printf "%s", s
  ncmd++
}
function str(n,   s, c) {                # n bytes of text
  c = substr("abcdefghijklmnopqrstuvwxyz0123456789", 1 + rnd() % 36, 1)
  s = c "-" n "-"
  while (length(s) < n) s = s s
  return substr(s, 1, n)
}
BEGIN {
  seed = 20240601
  # strings: 20,000, 1 to 2,000 bytes; every 1,000th 300 KB; counters
  for (i = 0; i < 20000; i++) {
    n = (i % 1000 == 999) ? 300000 : 1 + rnd() % 2000
    cmd("SET\tstr:" i "\t" str(n))
    if (i % 10 == 0) cmd("INCRBY\tcnt:" (i % 97) "\t" rnd() % 1000)
  }
  # APPEND growth: 60 keys, 6,000 appends of 100 to 1,000 bytes
  for (i = 0; i < 6000; i++) cmd("APPEND\tapp:" (rnd() % 60) "\t" str(100 + rnd() % 900))
  # SETRANGE and SETBIT: strings up to 1 MB
  for (i = 0; i < 40; i++) cmd("SETRANGE\tbig:" (i % 8) "\t" (rnd() % 1000000) "\t" str(50))
  for (i = 0; i < 3000; i++) cmd("SETBIT\tbits:" (i % 3) "\t" (rnd() % 8000000) "\t1")
  # hashes: 300; a quarter small (listpack), the others up to 304 fields of
  # up to 100 bytes (mostly hash tables); some HINCRBY, HDEL
  for (h = 0; h < 300; h++) {
    nf = 5 + rnd() % (h % 4 ? 300 : 100)
    vl = h % 4 ? 100 : 30
    for (f = 0; f < nf; f += 10) {
      line = "HSET\thash:" h
      for (k = f; k < f + 10 && k < nf; k++) line = line "\tf" k "\t" str(1 + rnd() % vl)
      cmd(line)
    }
    cmd("HINCRBY\thash:" h "\tcount\t" h)
    if (h % 3 == 0) cmd("HDEL\thash:" h "\tf1\tf3\tf5")
  }
  # lists: 200, up to 5,000 elements in pushes of 50; LTRIM, LSET, LINSERT, LREM, pops
  for (l = 0; l < 200; l++) {
    ne = 1 + rnd() % 5000
    for (e = 0; e < ne; e += 50) {
      line = (e % 100 ? "LPUSH" : "RPUSH") "\tlist:" l
      for (k = e; k < e + 50 && k < ne; k++) line = line "\t" str(1 + rnd() % 60)
      cmd(line)
    }
    if (l % 4 == 0) cmd("LTRIM\tlist:" l "\t10\t-10")
    cmd("LSET\tlist:" l "\t0\tfirst-" l)
    cmd("LINSERT\tlist:" l "\tBEFORE\tfirst-" l "\tbefore-" l)
    cmd("LREM\tlist:" l "\t0\tbefore-" l)
    cmd("RPOP\tlist:" l "\t3")
  }
  # sets: 200, integers (intset) or strings (hash table), 20 per SADD; SREM
  for (s = 0; s < 200; s++) {
    ne = 1 + rnd() % 2000
    for (e = 0; e < ne; e += 20) {
      line = "SADD\tset:" s
      for (k = e; k < e + 20 && k < ne; k++) line = line "\t" (s % 2 ? "m" rnd() % 5000 : rnd() % 100000)
      cmd(line)
    }
    cmd("SREM\tset:" s "\t" (s % 2 ? "m1" : "1") "\t" (s % 2 ? "m2" : "2"))
  }
  # sorted sets: 200, up to 1,000 members (over 128: a skip list); ZINCRBY, ZREMRANGEBYRANK
  for (z = 0; z < 200; z++) {
    ne = 1 + rnd() % 1000
    for (e = 0; e < ne; e += 25) {
      line = "ZADD\tzset:" z
      for (k = e; k < e + 25 && k < ne; k++) line = line "\t" (rnd() % 100000) / 100 "\tmember" rnd() % 3000
      cmd(line)
    }
    cmd("ZINCRBY\tzset:" z "\t7.5\tmember" z)
    if (z % 5 == 0) cmd("ZREMRANGEBYRANK\tzset:" z "\t0\t9")
  }
  # streams: 20, explicit IDs, 3 fields each; XTRIM, XDEL
  for (x = 0; x < 20; x++) {
    ne = 100 + rnd() % 1500
    for (e = 1; e <= ne; e++)
      cmd("XADD\tstream:" x "\t" (1000 + x) "-" e "\tname\t" str(5 + rnd() % 30) "\tn\t" e "\tv\t" rnd() % 1000)
    if (x % 2) cmd("XTRIM\tstream:" x "\tMAXLEN\t500")
    cmd("XDEL\tstream:" x "\t" (1000 + x) "-" ne)
  }
  # HyperLogLogs
  for (p = 0; p < 10; p++)
    for (e = 0; e < 3000; e += 100) {
      line = "PFADD\thll:" p
      for (k = e; k < e + 100; k++) line = line "\tel" (rnd() % 50000)
      cmd(line)
    }
  cmd("PFMERGE\thll:all\thll:0\thll:1\thll:2\thll:3\thll:4\thll:5\thll:6\thll:7\thll:8\thll:9")
  # deletions (lists/sets/hashes over 64 elements go to the lazyfree thread)
  for (i = 0; i < 20000; i += 5) cmd("DEL\tstr:" i)
  for (l = 0; l < 200; l += 7) cmd("UNLINK\tlist:" l)
  for (s = 1; s < 200; s += 9) cmd("UNLINK\tset:" s)
  for (h = 0; h < 300; h += 11) cmd("DEL\thash:" h)
  # renames, copies, stores
  for (i = 1; i < 2000; i += 10) cmd("RENAME\tstr:" i "\trenamed:" i)
  for (h = 1; h < 300; h += 13) cmd("COPY\thash:" h "\thashcopy:" h)
  for (s = 2; s < 200; s += 20) cmd("SUNIONSTORE\tunion:" s "\tset:" s "\tset:" (s + 2) "\tset:" (s + 4))
  for (s = 2; s < 200; s += 20) cmd("SINTERSTORE\tinter:" s "\tset:" s "\tset:" (s + 2))
  for (z = 0; z < 200; z += 25) cmd("ZUNIONSTORE\tzunion:" z "\t3\tzset:" z "\tzset:" (z + 1) "\tzset:" (z + 2) "\tWEIGHTS\t1\t2\t3")
  for (l = 1; l < 200; l += 30) cmd("SORT\tlist:" l "\tALPHA\tLIMIT\t0\t500\tSTORE\tsorted:" l)
  # expiries far in the future (the year 2100): counted by INFO keyspace
  for (i = 3; i < 20000; i += 200) cmd("PEXPIREAT\tstr:" i "\t4102444800000")
  print ncmd >"/dev/stderr"
}' >load.resp 2>load.count
echo "load.resp: $(cat load.count) commands, $(wc -c <load.resp) bytes"

# queries.txt: read by redis-cli one command a line; the replies must agree.
cat >queries.txt <<'EOF'
DBSIZE
GET str:17
STRLEN str:999
GETRANGE str:1999 1000 1040
STRLEN app:7
GET cnt:5
STRLEN big:3
BITCOUNT bits:1
BITPOS bits:2 1
HLEN hash:4
HGET hash:4 f3
HMGET hash:5 f0 f1 f2 count
HSTRLEN hash:6 f2
HEXISTS hashcopy:14 f0
LLEN list:5
LRANGE list:5 0 9
LINDEX list:6 -1
LRANGE sorted:1 0 4
SCARD set:7
SISMEMBER set:8 42
SINTERCARD 2 set:2 set:4
SCARD union:42
SCARD inter:42
ZCARD zset:4
ZRANGE zset:4 0 9 WITHSCORES
ZREVRANGE zset:150 0 4 WITHSCORES
ZRANGEBYSCORE zset:9 100 200 LIMIT 0 5
ZSCORE zset:7 member7
ZCARD zunion:50
ZRANGE zunion:50 0 4 WITHSCORES
XLEN stream:3
XRANGE stream:3 - + COUNT 3
XREVRANGE stream:4 + - COUNT 2
PFCOUNT hll:3
PFCOUNT hll:all
TYPE renamed:11
EXISTS str:5 str:6 str:7
PEXPIRETIME str:3
EVAL "local t = {} for i = 1, 50000 do t[i] = string.rep(string.char(97 + i % 26), i % 40) .. i end local s = table.concat(t, ',') local j = cjson.encode(t) local back = cjson.decode(j) redis.call('SET', 'lua:blob', s) return {#t, #s, #j, #back, redis.sha1hex(s), redis.sha1hex(j)}" 0
EVAL "local m = {} for i = 1, 20000 do m['k' .. i] = {i, tostring(i * 7), {x = i % 13}} end local n, sum = 0, 0 for k, v in pairs(m) do n = n + 1 sum = sum + v[1] + v[3].x end local p = cmsgpack.pack(m) local u = cmsgpack.unpack(p) local c = 0 for k, v in pairs(u) do c = c + 1 end return {n, sum, #p, c}" 0
EVAL "local c = {} for _, k in ipairs(redis.call('KEYS', '*')) do local e = redis.call('TYPE', k)['ok'] .. ' ' .. redis.call('OBJECT', 'ENCODING', k) c[e] = (c[e] or 0) + 1 end local r = {} for e, n in pairs(c) do r[#r + 1] = e .. ': ' .. n end table.sort(r) return r" 0
STRLEN lua:blob
EOF

# run-server.sh: one whole run; started by run_both (LD_PRELOAD set or not).
cat >run-server.sh <<'EOF'
preload=${LD_PRELOAD:-}
unset LD_PRELOAD              # the clients run plainly: only the server is tested
tag=$([ -n "$preload" ] && echo preload || echo glibc)
dir=$PWD/server-$tag
rm -rf "$dir" && mkdir -p "$dir"
pid=
trap '[ -n "$pid" ] && kill -9 $pid 2>/dev/null' EXIT

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
started=0
for try in 1 2 3 4 5 6 7 8; do
  port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
  port_in_use $port && continue
  env ${preload:+LD_PRELOAD=$preload} redis-server --port $port --bind 127.0.0.1 \
    --save '' --appendonly no --dir "$dir" --logfile "$dir/log" --daemonize no \
    --enable-debug-command yes --protected-mode yes --databases 1 \
    --lazyfree-lazy-user-del yes --lazyfree-lazy-user-flush yes &
  pid=$!
  echo $pid >"$dir/pid"
  for ((i = 0; i < 100; i++)); do
    # answered by this server, not by another one on the same port
    [ "$(redis-cli -p $port INFO server 2>/dev/null | tr -d '\r' | sed -n 's/^process_id://p')" = "$pid" ] &&
      { started=1; break; }
    kill -0 $pid 2>/dev/null || break
    sleep 0.1
  done
  [ $started = 1 ] && break
  # Not up: a port another program took (redis exits with status 1 and
  # says so in its log) is tried again quietly, with the reason kept in
  # tries.log; a server that died of a signal fails the comparison.
  st=0
  if kill -0 $pid 2>/dev/null; then kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null; st=slow
  else wait $pid 2>/dev/null; st=$?; fi
  pid=
  echo "port $port: server did not start (status $st): $(tail -n 1 "$dir/log" 2>/dev/null)" >>"$dir/tries.log"
  case $st in
    1|slow) ;;
    *) echo "(port $port: the server ended with status $st before it answered)" >&2 ;;
  esac
done
if [ $started = 0 ]; then
  echo "redis-server did not start"; tail -n 20 "$dir/log" >&2; exit 1
fi

# A server that crashed is not asked again, nor is one that did not answer
# within 60 s (hung): the run goes on to its end quickly, and shows it.
running() { local st; st=$(cut -d' ' -f3 /proc/$1/stat 2>/dev/null) && [ -n "$st" ] && [ "$st" != Z ]; }
usable() { running $pid && [ ! -e "$dir/hung" ]; }
cli() {
  usable || { echo "(not asked: the server is gone or hung)"; return 1; }
  timeout 60 redis-cli -p $port "$@"
  local st=$?
  [ $st = 124 ] && { touch "$dir/hung"; echo "(no answer within 60 s)"; }
  return $st
}
keyspace() { cli INFO keyspace | tr -d '\r' | sed -n 's/,avg_ttl=[0-9]*//; /^db/p'; }
state() { # label
  echo "== $1"
  echo "dbsize $(cli DBSIZE)"
  echo "keyspace $(keyspace)"
  echo "digest $(cli DEBUG DIGEST)"
}

echo "== load (redis-cli --pipe)"
if usable; then
  timeout 90 redis-cli -p $port --pipe <load.resp >"$dir/pipe.out" 2>&1
  st=$?
  [ $st = 124 ] && touch "$dir/hung"
  grep -E '^errors:' "$dir/pipe.out" || { echo "redis-cli --pipe: exit status $st"; tail -n 3 "$dir/pipe.out"; }
fi
state "after the load"
echo "== queries"
cli <queries.txt
state "after the queries"
echo "== DEBUG RELOAD"
cli DEBUG RELOAD
state "after DEBUG RELOAD"

bench() { # label, redis-benchmark arguments
  local label=$1 b t=0; shift
  usable || { echo "redis-benchmark $label: not run, the server is gone or hung"; return; }
  redis-benchmark -p $port -q "$@" >"$dir/bench.out" 2>&1 &
  b=$!
  # redis-benchmark retries for ever when the server goes away: watch both
  while running $b; do
    if ! running $pid; then kill $b; break; fi
    if [ $t -ge 900 ]; then kill $b; touch "$dir/hung"; echo "(redis-benchmark $label: still going after 90 s)"; break; fi
    sleep 0.1; t=$((t + 1))
  done
  wait $b
  echo "redis-benchmark $label: exit status $?"
}
echo "== redis-benchmark"
bench "-d 16" -n 20000 -c 20 -P 10 -d 16 \
  -t set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange_100,mset
bench "-d 4096" -n 10000 -c 20 -P 10 -d 4096 -t set,get,lpush,rpush,lpop,hset,sadd,mset
bench "-d 300000" -n 400 -c 8 -d 300000 -t set,get,lpush,rpush,lpop,rpop,mset
state "after redis-benchmark"
# the keys redis-benchmark made (all but the loaded ones), with their sizes
if usable; then
  cli --scan | grep -v -E '^(str|cnt|app|big|bits|hash|hashcopy|list|set|zset|stream|hll|renamed|union|inter|zunion|sorted|lua):' | sort |
  while read -r k; do
    t=$(cli TYPE "$k")
    case $t in
      string) n=$(cli STRLEN "$k") ;; list) n=$(cli LLEN "$k") ;; set) n=$(cli SCARD "$k") ;;
      hash) n=$(cli HLEN "$k") ;; zset) n=$(cli ZCARD "$k") ;; *) n=? ;;
    esac
    echo "$k: $t $n"
  done
fi
echo "str:17 still $(cli STRLEN str:17) bytes, zset:4 $(cli ZCARD zset:4) members"

echo "== FLUSHALL ASYNC"
cli FLUSHALL ASYNC
echo "dbsize $(cli DBSIZE)"
cli SHUTDOWN NOSAVE >/dev/null 2>&1
for ((i = 0; i < 300; i++)); do running $pid || break; sleep 0.1; done
if running $pid; then
  echo "the server did not exit within 30 s of SHUTDOWN NOSAVE: killed"
  kill -9 $pid
fi
wait $pid
echo "server exit status $?"
pid=
if grep -E 'REDIS BUG REPORT|crashed by signal|ASSERTION FAILED|Guru Meditation|Out Of Memory' "$dir/log" >/dev/null; then
  echo "the server's log has a crash report"
else
  echo "no crash report in the server's log"
fi
grep -q 'Redis is now ready to exit, bye bye' "$dir/log" && echo "the server said bye bye"
EOF

show_server_log() { # on a mismatch: the preloaded server's crash report, or its last lines
  local log=server-preload/log
  [ -f "$log" ] || return 0
  if grep -q -E 'REDIS BUG REPORT|crashed by signal|ASSERTION FAILED|Guru Meditation' "$log"; then
    echo "  the preloaded server's crash report (from its log):"
    sed -n '/crashed by signal\|ASSERTION FAILED\|Guru Meditation\|REDIS BUG REPORT START/,$p' "$log" | head -n 60 | sed 's/^/  | /'
  else
    echo "  the preloaded server's log, last lines:"
    tail -n 15 "$log" | sed 's/^/  | /'
  fi
}
run_both --name "redis-server: --pipe load, queries, Lua, DEBUG RELOAD, redis-benchmark, SHUTDOWN" \
  bash run-server.sh || show_server_log
finish
