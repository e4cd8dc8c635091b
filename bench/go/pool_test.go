// Package pool benchmarks Go's sync.Pool on the workloads of
// bench/bench_pool.c, so that bench/run_pool.sh can show them side by side:
// Get+Put of a 128-byte object (the hit path), and buffer pools, one
// sync.Pool per size, for 64 B to 32 KiB.  Run with -cpu 1,2 as the C
// benchmarks run with -cpu 1 and -cpu 2: each runs b.RunParallel.
package pool

import (
	"strconv"
	"sync"
	"testing"
)

type obj [128]byte

var objPool = sync.Pool{New: func() any { return new(obj) }}

func BenchmarkPoolGetPut(b *testing.B) {
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			x := objPool.Get().(*obj)
			objPool.Put(x)
		}
	})
}

// Allocation of the same object, for reference: what the pool saves.
var sink *obj

func BenchmarkNew(b *testing.B) {
	b.RunParallel(func(pb *testing.PB) {
		var s *obj
		for pb.Next() {
			s = new(obj)
		}
		sink = s
	})
}

// Buffer pools as Go programs write them: a sync.Pool per size holding
// *[]byte (a pointer, so Put does not allocate).
var bufSizes = []int{64, 256, 1024, 4096, 16384, 32768}

func BenchmarkBufGetPut(b *testing.B) {
	for _, size := range bufSizes {
		size := size
		p := &sync.Pool{New: func() any { s := make([]byte, size); return &s }}
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					bp := p.Get().(*[]byte)
					(*bp)[0] = 1
					p.Put(bp)
				}
			})
		})
	}
}
