# Allocation-heavy Python for the preload tests: dicts, lists, strings and
# objects churned, with a result that does not depend on the allocator.
import hashlib

class Node:
    __slots__ = ("key", "value", "children")
    def __init__(self, key, value):
        self.key = key
        self.value = value
        self.children = []

def build(depth, width, seed):
    root = Node(seed, str(seed) * 3)
    frontier = [root]
    for d in range(depth):
        nxt = []
        for n in frontier:
            for w in range(width):
                c = Node((n.key * 31 + w) % 1000003, {"d": d, "w": w, "s": "x" * (w % 50)})
                n.children.append(c)
                nxt.append(c)
        frontier = nxt
    return root

def walk(n):
    total = n.key
    for c in n.children:
        total += walk(c)
    return total

h = hashlib.sha256()
for i in range(30):
    tree = build(5, 5, i)
    h.update(str(walk(tree)).encode())
    words = {}
    for j in range(20000):
        k = "w%d" % ((j * 7919 + i) % 5000)
        words[k] = words.get(k, 0) + j
    h.update(str(sorted(words.items())[:50]).encode())
    big = [list(range(k % 100)) for k in range(5000)]
    h.update(str(sum(len(x) for x in big)).encode())
print(h.hexdigest())
