# Threaded Python for the preload tests: threads build and exchange objects
# through queues; the final digest does not depend on scheduling.
import hashlib
import queue
import threading

N_WORKERS = 4
N_ITEMS = 20000

def worker(inq, outq):
    while True:
        item = inq.get()
        if item is None:
            outq.put(None)
            return
        i, payload = item
        data = {"i": i, "words": [w.upper() for w in payload.split()], "sq": [k * k for k in range(i % 64)]}
        outq.put((i, repr(data)))

inq, outq = queue.Queue(maxsize=512), queue.Queue()
threads = [threading.Thread(target=worker, args=(inq, outq)) for _ in range(N_WORKERS)]
for t in threads:
    t.start()

def feed():
    for i in range(N_ITEMS):
        inq.put((i, " ".join("tok%d" % ((i + k) % 97) for k in range(i % 20 + 1))))
    for _ in threads:
        inq.put(None)

feeder = threading.Thread(target=feed)
feeder.start()
results = {}
done = 0
while done < N_WORKERS:
    r = outq.get()
    if r is None:
        done += 1
        continue
    results[r[0]] = r[1]
feeder.join()
for t in threads:
    t.join()
h = hashlib.sha256()
for i in range(N_ITEMS):
    h.update(results[i].encode())
print(len(results), h.hexdigest())
