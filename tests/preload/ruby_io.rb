# Ruby under the preload library (run_programs.sh), with collections along
# the way (GCMALLOC_GOGC=5).  Ruby 3.1 keeps each IO's buffers in packed
# structs: the pointer to an open file's read buffer sits at byte 68 of its
# rb_io_t, off the 8-byte boundaries bdwgc reads, so gc mode reclaimed the
# buffer of this very script while Ruby parsed it, and of the files it
# reads (src/gc_scan.c).  The output does not depend on the allocator.
dir = ARGV.fetch(0)
path = File.join(dir, "ruby_io.txt")
File.open(path, "w") do |f|
  20_000.times { |i| f.puts "line #{i} #{'abcdefghij' * (i % 7)} #{i * 7919 % 10_007}" }
end

# Read it back line by line, several files open at once, with garbage in
# between so collections come while the read buffers are in use.
counts = Hash.new(0)
sum = 0
files = (0...4).map { File.open(path) }
20_000.times do |i|
  files.each_with_index do |f, k|
    line = f.gets
    counts[line.size % 13] += 1 if k.zero?
    sum += line.split.last.to_i
  end
  (0...20).map { |j| "garbage #{i} #{j}" * 3 } if i % 10 == 0
end
files.each(&:close)

# Fibers keep their data on stacks of Ruby's own while others allocate.
fibers = (0...4).map do |k|
  Fiber.new do
    keep = (0...100).map { |i| "fiber #{k} item #{i} " * 4 }
    50.times do
      Fiber.yield (0...100).map { |i| [i, "x" * (i % 60)] }.size
      raise "fiber #{k} lost its data" unless keep.each_with_index.all? { |s, i| s == "fiber #{k} item #{i} " * 4 }
    end
    :done
  end
end
resumed = 0
51.times { fibers.each { |f| resumed += 1 if f.alive? && f.resume } }

puts "lines=#{counts.values.sum} buckets=#{counts.sort.map { |k, v| "#{k}:#{v}" }.join(',')}"
puts "sum=#{sum} resumed=#{resumed}"
