"""The layouts of ptmalloc-rs's structs, loaded from layout.txt (next to this
file): the one description that heap-inspect and heap-map read processes
with, and that src/tests_layout.rs checks against the Rust structs.

    from heaplib.layout import L
    L.sizeof["Arena"]        the size of a struct
    L.off["Arena.top"]       the offset of a field ...
    L.width["Arena.top"]     ... and its size in bytes
    L.item(data, "Arena.bins", i, 8)   element i of an array field
    L.c["NFASTBINS"]         a constant
    L.version, L.hash        the descriptor's version, the entries' hash
"""

import os


def layout_hash(text):
    """FNV-1a of the entries: each line without its comment, its blanks
    collapsed to one space, trimmed, plus a newline; empty lines left out
    (src/report/debuginfo.rs's layout_hash, which the library carries)."""
    h = 0xcbf29ce484222325
    for line in text.split("\n"):
        words = line.split("#", 1)[0].split()
        if words:
            for byte in (" ".join(words) + "\n").encode():
                h = ((h ^ byte) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


class Layout:
    def __init__(self, text, where):
        self.sizeof, self.off, self.width, self.c = {}, {}, {}, {}
        self.version = None
        self.hash = layout_hash(text)
        for n, line in enumerate(text.split("\n"), 1):
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            try:
                nums = [int(w, 0) for w in words[2:]]
                if words[0] == "version" and len(words) == 2:
                    self.version = int(words[1], 0)
                elif words[0] == "struct" and len(nums) == 1:
                    self.sizeof[words[1]] = nums[0]
                elif words[0] == "field" and len(nums) == 2:
                    self.off[words[1]], self.width[words[1]] = nums
                elif words[0] == "const" and len(nums) == 1:
                    self.c[words[1]] = nums[0]
                else:
                    raise ValueError
            except ValueError:
                raise SystemExit("heaplib: %s line %d cannot be read: %s" % (where, n, line))
        if self.version is None:
            raise SystemExit("heaplib: %s has no version line" % where)

    def get(self, data, field, base=0):
        """The unsigned field `field` ("Struct.field") of the struct whose
        bytes start at data[base]."""
        off = base + self.off[field]
        return int.from_bytes(data[off:off + self.width[field]], "little")

    def item(self, data, field, i, size):
        """Element i, of `size` bytes, of the array field `field` of the
        struct whose bytes are `data` (unsigned)."""
        if (i + 1) * size > self.width[field]:
            raise IndexError("%s[%d]" % (field, i))
        off = self.off[field] + i * size
        return int.from_bytes(data[off:off + size], "little")


_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "layout.txt")
with open(_PATH) as _f:
    L = Layout(_f.read(), _PATH)
