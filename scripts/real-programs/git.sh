#!/usr/bin/env bash
# git under glibc and under the preload.  A repository of ~330 commits (300 on
# main plus merged topic branches, with edits, new files and renames) is made
# by a script with a fixed author and fixed dates, so its hashes are
# deterministic: made under each, the two HEADs must be the same commit.  Then
# log --stat, log --graph, rev-list, log -p, blame, diff, grep, fast-export,
# gc + fsck, and a --no-local clone (pack-objects / index-pack, threaded) are
# compared.  Then the same on a real repository: this project's own (the one
# the script is in, if it is in one), cloned with --no-local under each, and
# log --stat/-p, shortlog, blame of its most-changed files, diff from its
# first commit, grep, fast-export, gc --aggressive + fsck on the clone.
here=$(cd "$(dirname "$0")" && pwd)
. "$(dirname "$0")/common.bash"

command -v git >/dev/null || { echo "git is not installed"; exit 1; }

# No user or system configuration; everything fixed here.
export HOME=$WORK/home GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=$WORK/gitconfig
export GIT_AUTHOR_NAME="A U Thor" GIT_AUTHOR_EMAIL=author@example.com
export GIT_COMMITTER_NAME="C O Mitter" GIT_COMMITTER_EMAIL=committer@example.com
export GIT_PAGER=cat PAGER=cat GIT_TERMINAL_PROMPT=0
mkdir -p "$HOME"
cat >"$GIT_CONFIG_GLOBAL" <<'EOF'
[init]
	defaultBranch = main
[gc]
	auto = 0
[color]
	ui = never
[core]
	pager = cat
[advice]
	detachedHead = false
EOF

cat >make-repo.sh <<'EOF'
# usage: bash make-repo.sh DIR -- makes the repository, prints its HEAD
set -e
dir=$1
rm -rf "$dir"; git init -q "$dir"; cd "$dir"
t=1700000000
commit() { # message (new files must have been added with git add)
  t=$((t + 3600))
  export GIT_AUTHOR_DATE="@$t +0000" GIT_COMMITTER_DATE="@$t +0000"
  git commit -q -a -m "$1" -m "Generated change number $n."
}
mkdir -p src doc
for f in 0 1 2 3 4 5 6 7; do
  for ((l = 0; l < 40; l++)); do echo "line $l of file $f: $((l * 7919 % 1000))"; done >src/file$f.txt
done
echo "# generated repository" >README
git add -A
n=0; commit "initial import"
for ((n = 1; n <= 300; n++)); do
  f=src/file$((n * 5 % 8)).txt
  echo "change $n: value $((n * 104729 % 100003))" >>$f
  # edit a line in the middle of another file
  g=src/file$((n * 3 % 8)).txt
  awk -v n=$n 'NR == (n % 30) + 1 { $0 = $0 " edited-" n } { print }' $g >$g.tmp && mv $g.tmp $g
  if ((n % 25 == 0)); then echo "note $n" >doc/note$n.md; git add doc/note$n.md; fi
  if ((n % 40 == 0)); then git mv -k doc/note$((n - 15)).md doc/renamed$n.md 2>/dev/null || true; fi
  commit "change $n to $(basename $f)"
  if ((n % 60 == 0)); then
    git checkout -q -b topic$n
    for ((k = 1; k <= 6; k++)); do
      echo "topic $n step $k" >>src/topic$n.txt
      ((k == 1)) && git add src/topic$n.txt
      n2=$n; n="$n.$k"; commit "topic $n2 step $k"; n=$n2
    done
    git checkout -q main
    t=$((t + 60))
    export GIT_AUTHOR_DATE="@$t +0000" GIT_COMMITTER_DATE="@$t +0000"
    git merge -q --no-ff -m "merge topic$n" topic$n
  fi
done
git tag -a v1.0 -m "version 1.0" HEAD~100
git tag v2.0
git rev-parse HEAD
git rev-list --count HEAD
EOF

# Made under glibc into repo-glibc, under the preload into repo-preload.
run_both --name "make the repository (330 commits, merges, tags)" \
  bash -c 'bash make-repo.sh repo-$(test -n "${LD_PRELOAD:-}" && echo preload || echo glibc)'
same_file repo-glibc/.git/refs/heads/main repo-preload/.git/refs/heads/main "main branch's head commit"
[ -d repo-glibc/.git ] || { echo "no repository was made under glibc"; finish; }

cd repo-glibc
run_both --name "git log --stat" git log --stat -M
run_both --name "git log --oneline --graph --all" git log --oneline --graph --all --decorate
run_both --name "git rev-list --count HEAD" git rev-list --count HEAD
run_both --name "git rev-list --objects --all" git rev-list --objects --all
run_both --name "git log -p -M (diffs)" git log -p -M --format='%H %s' HEAD~120..HEAD
run_both --name "git blame" git blame -s src/file3.txt
run_both --name "git diff --stat v1.0 HEAD" git diff --stat -M v1.0 HEAD
run_both --name "git diff (first commit to HEAD)" git diff "$(git rev-list --max-parents=0 HEAD)" HEAD
run_both --name "git grep" git grep -n -e 'edited-1[0-9]' -e 'change 2' HEAD~50
run_both --name "git fast-export --all" git fast-export --all --signed-tags=verbatim
run_both --name "git status" git status --porcelain=v2 --branch
cd ..

# Mutating commands work on their own copies.
run_both --name "git gc + fsck + count-objects" bash -c '
  rm -rf gc && cp -a repo-glibc gc && cd gc &&
  git gc --quiet && echo "gc status $?" &&
  git fsck --full --no-progress --strict && echo "fsck ok" &&
  git count-objects -v | grep -v -E "^(size|size-pack|size-garbage):" &&
  git log --oneline | md5sum'
run_both --name "git gc --aggressive (threaded delta search)" bash -c '
  rm -rf gca && cp -a repo-glibc gca && cd gca &&
  git gc --quiet --aggressive && git fsck --no-progress && git rev-list --count --all'
run_both --name "git clone --no-local + log" bash -c '
  rm -rf clone && git clone -q --no-local repo-glibc clone && cd clone &&
  git log --format="%H %ae %s" | md5sum && git rev-list --count --all'
run_both --name "git cherry-pick + rebase (replay the last two topics onto v1.0)" bash -c '
  rm -rf rb && cp -a repo-glibc rb && cd rb &&
  export GIT_COMMITTER_DATE="@1800000000 +0000" &&
  git checkout -q -b picked v1.0 &&
  git cherry-pick topic240~6..topic240 topic300~6..topic300 >/dev/null &&
  git rebase -q --onto v1.0 topic300~6 topic300 &&
  git log --format="%H %s" v1.0..picked && git log --format="%H %s" v1.0..topic300'

# A real repository: this project's own.
src=$(env -u GIT_DIR git -C "$here" rev-parse --show-toplevel 2>/dev/null)
if [ -z "$src" ] || ! git -c safe.directory='*' -C "$src" rev-parse -q --verify HEAD >/dev/null; then
  echo "SKIP real:git/own-repository: $here is not in a git repository with commits"
  finish
fi
printf '[safe]\n\tdirectory = %s\n' "$src" >>"$GIT_CONFIG_GLOBAL"
echo "the project's repository: $src, HEAD $(git -C "$src" rev-parse --short HEAD), $(git -C "$src" rev-list --count HEAD) commits"
run_both --name "git clone --no-local of the project's repository + fsck" bash -c '
  d=own-$(test -n "${LD_PRELOAD:-}" && echo preload || echo glibc)
  rm -rf $d && git clone -q --no-local --no-hardlinks "$0" $d && cd $d &&
  git rev-parse HEAD && git rev-list --count --all && git fsck --full --no-progress --strict && echo "fsck ok" &&
  git count-objects -v | grep -v -E "^(size|size-pack|size-garbage):" && git status --porcelain=v2 --branch' "$src"
[ -d own-glibc/.git ] || { echo "no clone was made under glibc"; finish; }
cd own-glibc
root=$(git rev-list --max-parents=0 HEAD | tail -n 1)
run_both --name "own repo: git log --stat -M --numstat" git log --stat -M --numstat --format='%H %an %ad %s' --date=iso-strict
run_both --name "own repo: git log -p (all commits)" git log -p -M --format='%H %s'
run_both --name "own repo: git shortlog -sne + log --graph" bash -c 'git shortlog -sne HEAD && git log --oneline --graph --all --decorate'
# the three files changed by the most commits (that still exist)
mapfile -t hot < <(git log --format= --name-only HEAD | sort | uniq -c | sort -k1,1nr -k2 |
  awk '{ print $2 }' | while read -r f; do [ -f "$f" ] && echo "$f"; done | head -n 3)
for f in "${hot[@]}"; do
  run_both --name "own repo: git blame -M -C $f" git blame -M -C -s "$f"
done
run_both --name "own repo: git diff --stat first commit..HEAD" git diff --stat -M "$root" HEAD
run_both --name "own repo: git diff first commit..HEAD" git diff -M "$root" HEAD
run_both --name "own repo: git grep" git grep -n -I -e 'malloc' -e 'free(' HEAD
run_both --name "own repo: git fast-export --all" git fast-export --all --signed-tags=verbatim
cd ..
run_both --name "own repo: git gc --aggressive + fsck + rev-list --objects" bash -c '
  rm -rf owngc && cp -a own-glibc owngc && cd owngc &&
  git gc --quiet --aggressive --prune=now && git fsck --full --no-progress --strict && echo "fsck ok" &&
  git rev-list --objects --all | sort | md5sum && git count-objects -v | grep -E "^(count|in-pack|packs):"'
finish
