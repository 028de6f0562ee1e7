#!/usr/bin/env bash
# perl (built with usemymalloc=n: its SVs, hashes, arrays and string buffers
# all come from malloc/realloc) under glibc and under the preload: a hash- and
# string-heavy script -- 200k-key hashes built, grown, deleted from and
# rebuilt, hashes of arrays and of hashes, a string of several MB grown by
# concatenation and cut up again with split/substr/join, sorts with numeric,
# string and multi-key comparators, regex matching, global substitution with
# /e, tr, sprintf, pack/unpack -- and a threaded one (ithreads: each thread
# clones the interpreter; 4 threads build hashes and pass results through a
# Thread::Queue).  Both print counts and MD5 checksums that must be identical.
# The inputs come from a fixed-seed generator in the script; hash order is
# fixed too (PERL_HASH_SEED=0, PERL_PERTURB_KEYS=0), and every printed list is
# sorted anyway.
. "$(dirname "$0")/common.bash"
export PERL_HASH_SEED=0 PERL_PERTURB_KEYS=0
unset PERL5LIB PERL5OPT PERLLIB

command -v perl >/dev/null || { echo "perl is not installed"; exit 1; }

cat >strings.pl <<'EOF'
use strict;
use warnings;
use Digest::MD5 qw(md5_hex);

my $all = Digest::MD5->new;
sub out { my ($label, $v) = @_; my $s = "$label: $v"; $all->add($s); print "$s\n"; }

# a 32-bit LCG: the same numbers everywhere
my $x = 12345;
sub rnd { $x = ($x * 1103515245 + 12345) & 0xffffffff; return $x >> 8; }
my @letters = ('a' .. 'z');
sub word { my $n = 2 + rnd() % 11; join '', map { $letters[rnd() % 26] } 1 .. $n }

my @words = map { word() } 1 .. 5000;

# 1. a big hash: 200k keys, each a small array; grown, half deleted, refilled
my %h;
for my $i (0 .. 199_999) {
  my $k = $words[rnd() % @words] . '-' . ($i % 7919);
  push @{ $h{$k} }, $i, $words[$i % @words];
}
out('keys', scalar keys %h);
out('values', 0 + (my @v = map { @$_ } values %h));
my $deleted = 0;
for my $k (sort keys %h) { if (length($k) % 2) { delete $h{$k}; $deleted++ } }
out('deleted', $deleted);
$h{"re$_"} = [ ($_) x ($_ % 9) ] for 0 .. 99_999;
out('keys after refill', scalar keys %h);
out('hash md5', md5_hex(join ',', map { "$_=" . scalar @{ $h{$_} } } sort keys %h));
undef %h;

# 2. hash of hashes: word -> letter -> count
my %hoh;
for my $w (@words, map { $words[rnd() % @words] } 1 .. 100_000) {
  $hoh{$w}{$_}++ for split //, $w;
}
out('hoh words', scalar keys %hoh);
out('hoh letters', eval { my $n = 0; $n += keys %{ $hoh{$_} } for keys %hoh; $n });
out('hoh md5', md5_hex(join ';', map { my $w = $_; "$w:" . join(',', map { "$_$hoh{$w}{$_}" } sort keys %{ $hoh{$w} }) } sort keys %hoh));

# 3. a string of several MB grown by concatenation, then cut up again
my $text = '';
for my $i (1 .. 400_000) {
  $text .= $words[rnd() % @words];
  $text .= ($i % 13 == 0) ? "\n" : ($i % 5 == 0 ? sprintf(' %d ', rnd() % 100_000) : ' ');
}
out('text bytes', length $text);
out('text md5', md5_hex($text));
my @lines = split /\n/, $text;
out('lines', scalar @lines);
my @tokens = split ' ', $text;
out('tokens', scalar @tokens);
my $rejoined = join "\n", map { join ' ', reverse split / /, $_ } @lines;
out('rejoined md5', md5_hex($rejoined));
my @pieces;
for (my $o = 0; $o < length $text; $o += 1 + ($o % 977)) { push @pieces, substr($text, $o, 64) }
out('substr pieces', scalar @pieces);
out('pieces md5', md5_hex(join '|', @pieces));
undef @pieces; undef $rejoined;

# 4. regexes: captures, global match, substitution with /e, tr
my $nums = 0; my $sum = 0;
while ($text =~ /\b([a-z]{3,})\s+(\d+)\b/g) { $nums++; $sum += $2 }
out('word-number pairs', "$nums $sum");
my %first;
$first{$1}++ while $text =~ /(?:^|\n)([a-z]+)/g;
out('distinct line starts', scalar keys %first);
(my $t2 = $text) =~ s/([aeiou])([a-z])\1/uc("$1$2$1")/ge;
out('s///e md5', md5_hex($t2));
(my $t3 = $t2) =~ s/(\d+)/sprintf('<%x>', $1)/ge;
out('hex md5', md5_hex($t3), );
my $vowels = ($text =~ tr/aeiou//);
out('vowels', $vowels);
my @caps = ($t2 =~ /([A-Z]{3})/g);
out('capitals', scalar @caps);
undef $t2; undef $t3;

# 5. sorts: numeric, string, multi-key with a comparator, Schwartzian transform
my @recs = map { [ $tokens[$_], rnd() % 1000, $_ ] } 0 .. 99_999;
my @by = sort { $a->[1] <=> $b->[1] or $a->[0] cmp $b->[0] or $b->[2] <=> $a->[2] } @recs;
out('sorted first', join ',', map { $_->[2] } @by[0 .. 4]);
out('sorted last', join ',', map { $_->[2] } @by[-5 .. -1]);
my @st = map { $_->[1] } sort { $a->[0] <=> $b->[0] or $a->[1] cmp $b->[1] }
         map { [ length($_), $_ ] } @tokens[0 .. 149_999];
out('by length md5', md5_hex(join ' ', @st));
my @u = do { my %s; grep { !$s{$_}++ } sort @tokens };
out('unique tokens', scalar @u);
my @n = sort { $a <=> $b } grep { /^\d+$/ } @tokens;
out('numbers', scalar(@n) . " min $n[0] max $n[-1] median $n[@n / 2]");

# 6. pack/unpack, sprintf, join of many small strings
my $bin = pack('N*', map { rnd() } 1 .. 200_000);
out('packed', length $bin);
my @back = unpack('N*', $bin);
my $acc = 0; $acc = ($acc * 31 + $_) % 1_000_000_007 for @back;
out('unpacked', scalar(@back) . " $acc");
my $fmt = join '', map { sprintf('%08x:%-6s;', $back[$_], $words[$_ % @words]) } 0 .. 99_999;
out('sprintf md5', md5_hex($fmt));

# 7. churn: strings that grow and shrink (realloc of big buffers)
my @parts;
for my $i (0 .. 199_999) {
  push @parts, $i x ($i % 7);
  if ($i % 1000 == 999) { my $s = join '', @parts; @parts = (substr($s, 0, length($s) / 3)) }
}
out('churn len', length $parts[0]);
print "checksum: ", $all->hexdigest, "\n";
EOF

cat >threads.pl <<'EOF'
use strict;
use warnings;
use threads;
use Thread::Queue;
use Digest::MD5 qw(md5_hex);

my $q = Thread::Queue->new;
sub work {
  my ($seed) = @_;
  my $x = $seed;
  my %h;
  for my $i (0 .. 59_999) {
    $x = ($x * 1103515245 + 12345) & 0xffffffff;
    my $k = 'k' . ($x >> 8) % 20_000;
    push @{ $h{$k} }, $i . ('x' x ($i % 17));
    if ($i % 10_000 == 9_999) {       # free everything, rebuild from a copy
      my %c = map { $_ => [ @{ $h{$_} } ] } keys %h;
      %h = %c;
      $q->enqueue(join ',', $seed, $i, scalar keys %h);
    }
  }
  my $blob = join ';', map { "$_=" . join(',', @{ $h{$_} }) } sort keys %h;
  return join ' ', $seed, scalar(keys %h), length($blob), md5_hex($blob);
}
my @t = map { threads->create(\&work, $_) } 1 .. 4;
my @res = map { $_->join } @t;
$q->end;
my @msgs;
while (defined(my $m = $q->dequeue)) { push @msgs, $m }
print "$_\n" for @res;
print "queue messages: ", scalar(@msgs), " md5 ", md5_hex(join "\n", sort @msgs), "\n";
EOF

run_both --name "perl strings.pl (hashes, strings, split/join, sort, regex)" perl strings.pl
run_both --name "perl threads.pl (4 ithreads, Thread::Queue)" perl threads.pl
finish
