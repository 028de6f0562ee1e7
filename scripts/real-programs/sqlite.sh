#!/usr/bin/env bash
# sqlite3 under glibc and under the preload: build a 100k-row table with a
# recursive CTE (deterministic pseudo-random values, no random()), index it,
# run aggregate / join / group-by / order-by / window queries, then check the
# database; the outputs, and the database files themselves, must be identical.
. "$(dirname "$0")/common.bash"

command -v sqlite3 >/dev/null || { echo "sqlite3 is not installed (apt-get install sqlite3)"; exit 1; }

cat >build.sql <<'EOF'
PRAGMA journal_mode = DELETE;
CREATE TABLE items(id INTEGER PRIMARY KEY, grp INTEGER, name TEXT, price REAL, qty INTEGER, note TEXT);
CREATE TABLE groups(id INTEGER PRIMARY KEY, label TEXT);
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
INSERT INTO items(id, grp, name, price, qty, note)
SELECT i,
       (i * 7919) % 500,
       'item-' || ((i * 104729) % 100003),
       ((i * 48271) % 100000) / 100.0,
       (i * 16807) % 97,
       substr('lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor', 1 + i % 40, 5 + i % 30)
FROM n;
WITH RECURSIVE g(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM g WHERE i < 499)
INSERT INTO groups SELECT i, 'group-' || printf('%03d', i) || '-' || hex(i * 31) FROM g;
COMMIT;
CREATE INDEX items_grp ON items(grp, price);
CREATE INDEX items_name ON items(name);
SELECT 'rows', count(*) FROM items;
EOF

cat >queries.sql <<'EOF'
.mode list
.headers on
SELECT count(*), sum(qty), round(sum(price), 2), round(avg(price), 4), min(name), max(name) FROM items;
SELECT grp, count(*) AS n, sum(qty) AS q, round(avg(price), 3) AS p FROM items GROUP BY grp ORDER BY q DESC, grp LIMIT 20;
SELECT g.label, count(*), round(max(i.price) - min(i.price), 2)
  FROM items i JOIN groups g ON g.id = i.grp
  WHERE i.qty > 50 GROUP BY g.label HAVING count(*) > 90 ORDER BY 2 DESC, 1 LIMIT 25;
SELECT name, count(*) AS c FROM items GROUP BY name HAVING c > 1 ORDER BY c DESC, name LIMIT 15;
SELECT id, name, price FROM items WHERE grp = 123 ORDER BY price DESC, id LIMIT 10;
SELECT note, count(*), group_concat(DISTINCT qty % 10) FROM items GROUP BY note ORDER BY 2 DESC, 1 LIMIT 10;
SELECT grp, id, price, rank() OVER (PARTITION BY grp ORDER BY price DESC, id) AS r
  FROM items WHERE grp < 3 ORDER BY grp, r LIMIT 30;
SELECT a.id, b.id FROM items a JOIN items b ON a.name = b.name AND a.id < b.id ORDER BY a.id, b.id LIMIT 20;
SELECT length(group_concat(name, ',')) FROM (SELECT name FROM items ORDER BY name);
SELECT upper(substr(note, 1, 3)) AS k, count(*) FROM items GROUP BY k ORDER BY k;
UPDATE items SET note = note || '!' WHERE id % 3 = 0;
DELETE FROM items WHERE id % 7 = 0;
SELECT count(*), sum(length(note)) FROM items;
VACUUM;
PRAGMA integrity_check;
EOF

run_both --name "sqlite3: build 100k rows + indexes (file db)" bash -c 'rm -f test.db && sqlite3 test.db <build.sql && cp test.db built-$(test -n "${LD_PRELOAD:-}" && echo preload || echo glibc).db'
same_file built-glibc.db built-preload.db "database files built under glibc and the preload"
run_both --name "sqlite3: aggregate/join/group/order/window queries, update, vacuum" bash -c 'cp built-glibc.db q.db && sqlite3 q.db <queries.sql'
run_both --name "sqlite3: the same, in memory" bash -c 'cat build.sql queries.sql | sqlite3 :memory:'
run_both --name "sqlite3 .dump" sqlite3 built-glibc.db .dump
finish
