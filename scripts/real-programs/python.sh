#!/usr/bin/env bash
# python3 under glibc and under the preload: a dict/str/json/regex-heavy
# script (hundreds of thousands of small objects, big strings, sorting, sets)
# and a threaded one (4 threads allocating at once), each printing counts and
# checksums that must be identical.  Inputs come from a fixed seed.
. "$(dirname "$0")/common.bash"
export PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1

command -v python3 >/dev/null || { echo "python3 is not installed"; exit 1; }

cat >objects.py <<'EOF'
import json, re, random, hashlib, collections

rng = random.Random(12345)
h = hashlib.sha256()
def out(label, value):
    s = f"{label}: {value}"
    h.update(s.encode())
    print(s)

words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 12)))
         for _ in range(5000)]

# 1. many small dicts, lists and strings
recs = []
for i in range(300_000):
    w = words[rng.randrange(len(words))]
    recs.append({"id": i, "name": w, "tag": w[:3] + str(i % 97), "score": rng.random(),
                 "tags": [words[rng.randrange(len(words))] for _ in range(i % 5)]})
out("records", len(recs))
out("distinct names", len({r["name"] for r in recs}))

# 2. json round trip, whole and in pieces
blob = json.dumps(recs[:150_000], sort_keys=True)
back = json.loads(blob)
out("json bytes", len(blob))
out("json round trip equal", back == recs[:150_000])
out("json sha", hashlib.sha256(blob.encode()).hexdigest()[:16])
pieces = [json.dumps(r) for r in recs[150_000:]]
out("pieces bytes", sum(map(len, pieces)))
out("pieces back", sum(json.loads(p)["id"] for p in pieces))
del back, blob, pieces

# 3. regex over generated text
text = "\n".join(" ".join(words[rng.randrange(len(words))]
                          + ("%d" % rng.randrange(1000) if rng.random() < 0.2 else "")
                          for _ in range(12)) for _ in range(40_000))
out("text bytes", len(text))
found = re.findall(r"\b([a-z]{3,})(\d+)\b", text)
out("findall", len(found))
out("findall digits sum", sum(int(d) for _, d in found))
sub = re.sub(r"([aeiou])([a-z])\1", lambda m: m.group(0).upper(), text)
out("sub sha", hashlib.sha256(sub.encode()).hexdigest()[:16])
out("split lines", len(re.split(r"\n", sub)))
del sub

# 4. counting, sorting, sets, grouping
counts = collections.Counter(text.split())
out("distinct tokens", len(counts))
out("top 5", counts.most_common(5))
srt = sorted(recs, key=lambda r: (r["tag"], -r["score"], r["id"]))
out("sorted first ids", [r["id"] for r in srt[:5]])
out("sorted last ids", [r["id"] for r in srt[-5:]])
a = {r["name"] + r["tag"] for r in recs[::2]}
b = {r["name"] + r["tag"] for r in recs[1::2]}
out("set sizes", (len(a), len(b), len(a & b), len(a | b), len(a ^ b)))
groups = collections.defaultdict(list)
for r in recs:
    groups[r["name"][0]].append(r["score"])
out("group means", sorted((k, round(sum(v) / len(v), 6)) for k, v in groups.items())[:5])

# 5. strings that grow and shrink (realloc of big blocks)
parts = []
for i in range(200_000):
    parts.append(str(i) * (i % 7))
    if i % 1000 == 999:
        s = "".join(parts); parts = [s[: len(s) // 3]]
out("churn len", len(parts[0]))
out("checksum", h.hexdigest())
EOF

cat >threads.py <<'EOF'
import json, random, threading, hashlib

def work(seed, results):
    rng = random.Random(seed)
    d = {}
    for i in range(60_000):
        k = "k%d" % rng.randrange(20_000)
        d.setdefault(k, []).append([rng.random(), str(i) * (i % 5)])
        if i % 5000 == 4999:
            d = json.loads(json.dumps(d))       # free everything, rebuild
    blob = json.dumps(d, sort_keys=True)
    results[seed] = (len(d), len(blob), hashlib.sha256(blob.encode()).hexdigest()[:16])

results = {}
threads = [threading.Thread(target=work, args=(s, results)) for s in range(4)]
for t in threads: t.start()
for t in threads: t.join()
for s in sorted(results):
    print(s, *results[s])
EOF

run_both --name "python3 objects.py (dicts, json, regex, sort, sets)" python3 objects.py
run_both --name "python3 threads.py (4 threads)" python3 threads.py
finish
