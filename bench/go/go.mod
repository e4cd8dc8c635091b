module gcmalloc/bench/go

go 1.19
