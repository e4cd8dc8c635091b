// trace_churn.go — the Go twin of trace_churn.c: a program whose
// GODEBUG=gctrace=1 log the analyzer tests read.  It churns the heap at a
// fixed rate for a fixed wall time and, in "leak" mode, keeps a fixed number
// of bytes per tick reachable forever.  Every FORCED_MS it calls
// runtime.GC(), which gives " (forced)" lines, and it prints a line of its
// own to stderr now and then, as real programs do, so the log interleaves
// gctrace lines with foreign ones.
//
//	GODEBUG=gctrace=1 ./trace_churn steady|leak DURATION_MS [FORCED_MS] 2>log
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"time"
)

const (
	tick         = 10 * time.Millisecond
	ring         = 8192
	churnPerTick = 2 << 20
	leakPerTick  = 96 << 10
)

var leaked [][]byte // the leak's root: everything appended stays reachable

func main() {
	if len(os.Args) < 3 || (os.Args[1] != "steady" && os.Args[1] != "leak") {
		fmt.Fprintln(os.Stderr, "usage: trace_churn steady|leak DURATION_MS [FORCED_MS]")
		os.Exit(2)
	}
	leak := os.Args[1] == "leak"
	ms, _ := strconv.Atoi(os.Args[2])
	duration := time.Duration(ms) * time.Millisecond
	var forcedEvery time.Duration
	if len(os.Args) > 3 {
		f, _ := strconv.Atoi(os.Args[3])
		forcedEvery = time.Duration(f) * time.Millisecond
	}

	keep := make([][]byte, ring)
	rng := uint64(88172645463325252)
	start := time.Now()
	nextForced := start.Add(forcedEvery)
	for t := 0; ; t++ {
		now := time.Now()
		if now.Sub(start) >= duration {
			break
		}
		for bytes := 0; bytes < churnPerTick; {
			rng ^= rng << 13
			rng ^= rng >> 7
			rng ^= rng << 17
			n := 16 + int(rng%1009)
			keep[(rng>>20)%ring] = make([]byte, n)
			bytes += n
		}
		if leak {
			for kept := 0; kept < leakPerTick; kept += 4096 {
				leaked = append(leaked, make([]byte, 4096))
			}
		}
		if forcedEvery > 0 && !now.Before(nextForced) {
			runtime.GC()
			nextForced = nextForced.Add(forcedEvery)
		}
		if t%50 == 0 {
			fmt.Fprintf(os.Stderr, "trace_churn: tick %d\n", t)
		}
		time.Sleep(time.Until(start.Add(time.Duration(t+1) * tick)))
	}
	fmt.Printf("trace_churn %s: done, %d leaked blocks\n", os.Args[1], len(leaked))
}
