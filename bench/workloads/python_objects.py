"""python: a dict/str/json-heavy CPython workload for scripts/bench.

    python3 python_objects.py SCALE

Builds SCALE records (dicts of strings, numbers and lists), round-trips them
through json, formats and parses strings, counts, sorts and groups, and grows
big strings; prints a checksum that depends only on the work (run with
PYTHONHASHSEED=0).  CPython's own pymalloc serves objects up to 512 bytes, so
malloc sees the bigger objects, the dict and list storage, and the arenas.
"""
import collections
import hashlib
import json
import random
import sys

scale = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
rng = random.Random(1234)
h = hashlib.sha256()


def out(label, value):
    h.update(f"{label}={value};".encode())


letters = "abcdefghijklmnopqrstuvwxyz"
words = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 14))) for _ in range(4000)]

# 1. many dicts, lists and strings
recs = []
for i in range(scale):
    w = words[rng.randrange(len(words))]
    recs.append({
        "id": i,
        "name": w,
        "key": f"{w[:4]}-{i % 1013:04d}",
        "score": rng.random(),
        "tags": [words[rng.randrange(len(words))] for _ in range(i % 6)],
        "attrs": {"a": i % 7, "b": w.upper(), "c": [i, i * 2]} if i % 3 == 0 else None,
    })
out("records", len(recs))

# 2. json, whole and per record
blob = json.dumps(recs, sort_keys=True)
out("json", len(blob))
back = json.loads(blob)
out("equal", back == recs)
del back
lines = [json.dumps(r) for r in recs]
out("lines", sum(len(s) for s in lines))
out("ids", sum(json.loads(s)["id"] for s in lines[::3]))
del lines, blob

# 3. dicts keyed by strings: counting, grouping, inverting
counts = collections.Counter()
index = collections.defaultdict(list)
for r in recs:
    counts[r["name"]] += 1
    for t in r["tags"]:
        index[t].append(r["id"])
out("distinct", len(counts))
out("top", counts.most_common(3))
out("index", sum(len(v) for v in index.values()))
inv = {r["key"] + str(r["id"]): r for r in recs}
out("inv", len(inv))
del inv, index

# 4. strings: formatting, splitting, joining, replacing
text = "\n".join(" ".join(words[rng.randrange(len(words))] for _ in range(10)) for _ in range(scale // 10))
toks = text.split()
out("tokens", len(toks))
s2 = text.replace("a", "AA").replace("\n", " | ")
out("replaced", len(s2))
parts = s2.split(" | ")
out("parts", len(parts))
del s2, parts, toks

# 5. sort and set operations
srt = sorted(recs, key=lambda r: (r["key"], -r["score"]))
out("sorted", [r["id"] for r in srt[:3]])
a = {r["name"] + r["key"] for r in recs[::2]}
b = {r["name"] + r["key"] for r in recs[1::2]}
out("sets", (len(a & b), len(a | b)))
del srt, a, b

# 6. growing strings (realloc of big blocks)
acc = []
for i in range(scale):
    acc.append(str(i) * (i % 5))
    if i % 2000 == 1999:
        joined = "".join(acc)
        acc = [joined[: len(joined) // 4]]
out("grown", len(acc[0]))
del recs
print("checksum", h.hexdigest()[:16])
